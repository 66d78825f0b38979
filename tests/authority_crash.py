"""Helper for test_durability: kill -9 the authority in the middle of 1,000 registrations.

Runs inside its own network namespace (``unshare --net``), plays a gateway whose hosts hold
the civil register's cards, and prints JSON: the national ids whose registration was
acknowledged before the crash, and which of them the restarted authority's registry holds
(identity and binding).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

from protocols.registered import codec
from protocols.registered.codec import Key, Sender
from protocols.registered.identity import issue, national_id_field, proof
from protocols.registered.messages import GATEWAY_PORT, PORT, Enrol, Reason, Type
from protocols.registered.registry import Gateway, Registry

PEOPLE = 1000
KILL_AFTER = 300
WINDOW = 40
GATEWAY = 1


def start(config: Path) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-m", "protocols.registered.authority",
                             str(config)], stdout=subprocess.PIPE, text=True)
    proc.stdout.readline()
    return proc


class Gateway1:
    """Registers people, two messages each: a challenge, then the proof."""

    def __init__(self, key: Key, cards):
        self.key, self.cards, self.sender = key, cards, Sender()
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", GATEWAY_PORT))
        self.sock.settimeout(0.5)

    def send(self, msg_type: Type, body: tuple) -> None:
        session, counter = self.sender.next(0)
        self.sock.sendto(codec.encode(msg_type, GATEWAY, session, counter, body, self.key),
                         ("127.0.0.1", PORT))

    def ask(self, k: int) -> None:
        self.send(Type.CHALLENGE_REQUEST, (k, 0xC6130000 + k,
                                           national_id_field(self.cards[k].national_id)))

    def receive(self) -> tuple[int, int, int] | None:
        """Answer a challenge with its proof; return (person, reason, identity) of an
        enrolment answer, None otherwise."""
        data = self.sock.recv(4096)
        if data[3] == Type.CHALLENGE:
            k, challenge = codec.body(Type.CHALLENGE, data)
            card = self.cards[k]
            self.send(Type.ENROL, (k, Enrol.REGISTER, 0xC6130000 + k,
                                   national_id_field(card.national_id), challenge,
                                   proof(card.secret, Enrol.REGISTER, card.national_id,
                                         0xC6130000 + k, GATEWAY, challenge)))
        elif data[3] == Type.ENROL_ACK:
            return codec.body(Type.ENROL_ACK, data)
        return None

    def register_all(self, todo: list[int], answers: dict[int, tuple]) -> None:
        """Everyone in ``todo``, WINDOW at a time, asking again for what goes unanswered."""
        for start_at in range(0, len(todo), WINDOW):
            chunk = todo[start_at:start_at + WINDOW]
            while any(k not in answers for k in chunk):
                for k in (k for k in chunk if k not in answers):
                    self.ask(k)
                try:
                    while any(k not in answers for k in chunk):
                        got = self.receive()
                        if got:
                            answers[got[0]] = got[1:]
                except TimeoutError:
                    continue


def main() -> None:
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
    workdir = Path(sys.argv[1])
    secret = os.urandom(32)
    cards = [issue(f"NID-{k:05d}", f"Person {k}") for k in range(PEOPLE)]
    Registry.create(workdir / "r.db", [Gateway(GATEWAY, "gw", "all", secret, 0x7F000001)],
                    cards, 30_000).close()
    config = workdir / "authority.json"
    config.write_text(json.dumps({"db": str(workdir / "r.db"), "address": "127.0.0.1",
                                  "admin": str(workdir / "admin.sock")}))
    gateway = Gateway1(Key(secret), cards)
    authority = start(config)
    acked: dict[str, int] = {}
    sent = 0
    while len(acked) < KILL_AFTER:
        while sent < PEOPLE and sent - len(acked) < WINDOW:
            gateway.ask(sent)
            sent += 1
        try:
            got = gateway.receive()
        except TimeoutError:
            continue
        if got and got[1] == Reason.OK:
            acked[cards[got[0]].national_id] = got[2]
    os.kill(authority.pid, signal.SIGKILL)  # with up to WINDOW registrations in flight
    authority.wait()
    in_flight = sent - len(acked)
    authority = start(config)  # recovers from the same files
    registry = Registry(workdir / "r.db")
    bound = {i: a for i, a, _ in registry.bindings()}
    found = [nid for nid, identity in acked.items()
             if registry.identity_of_person(nid) and identity in bound]
    registry.close()
    # finish the run: a registration committed but not acknowledged before the crash now
    # answers "already registered"; nobody may end up with two identities or none
    rest = [k for k in range(PEOPLE) if cards[k].national_id not in acked]
    answers: dict[int, tuple] = {}
    gateway.register_all(rest, answers)
    authority.kill()
    authority.wait()
    registry = Registry(workdir / "r.db")
    identities = registry.db.execute("SELECT COUNT(*), COUNT(DISTINCT national_id) "
                                     "FROM identities").fetchone()
    print(json.dumps({"acknowledged": len(acked), "in_flight_at_kill": in_flight,
                      "found_after_restart": len(found),
                      "missing": sorted(set(acked) - set(found)),
                      "already_registered_after_restart": sum(
                          1 for r, _ in answers.values() if r == Reason.ALREADY_REGISTERED),
                      "identities_at_end": identities[0],
                      "people_with_identity_at_end": identities[1]}))


if __name__ == "__main__":
    main()
