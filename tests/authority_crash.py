"""Helper for test_durability: kill -9 the authority in the middle of 1,000 registrations.

Runs inside its own network namespace (``unshare --net``), plays a gateway, and prints JSON:
the national ids whose registration was acknowledged before the crash, and which of them the
restarted authority's registry holds (identity and binding).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

from protocols import codec
from protocols.codec import GATEWAY_PORT, PORT, Key, Nonces
from protocols.registry import Gateway, Registry

PEOPLE = 1000
KILL_AFTER = 300
WINDOW = 40


def start(config: Path) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-m", "protocols.authority", str(config)],
                            stdout=subprocess.PIPE, text=True)
    proc.stdout.readline()
    return proc


def register(sock, key, nonces, people, todo: list[int], answers: dict[int, tuple]) -> None:
    """REGISTER everyone in ``todo`` (indexes into people), WINDOW at a time, resending what
    goes unanswered; answers[index] = (status, identity)."""
    for start_at in range(0, len(todo), WINDOW):
        chunk = todo[start_at:start_at + WINDOW]
        while any(k not in answers for k in chunk):
            for k in (k for k in chunk if k not in answers):
                nid, name = people[k]
                sock.sendto(codec.encode(codec.REGISTER, 1, nonces.next(),
                                         (k, 0xC6130000 + k, nid.encode(), name.encode()),
                                         key), ("127.0.0.1", PORT))
            try:
                while any(k not in answers for k in chunk):
                    data = sock.recv(4096)
                    if data[3] == codec.REGISTER_ACK:
                        request_id, status, identity, _ = codec.body(codec.REGISTER_ACK, data)
                        answers[request_id] = (status, identity)
            except TimeoutError:
                continue


def main() -> None:
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
    workdir = Path(sys.argv[1])
    secret = os.urandom(32)
    people = [(f"NID-{k:05d}", f"Person {k}") for k in range(PEOPLE)]
    Registry.create(workdir / "r.db", [Gateway(1, "gw", "all", secret, 0x7F000001)], people,
                    30_000).close()
    config = workdir / "authority.json"
    config.write_text(json.dumps({"db": str(workdir / "r.db"), "address": "127.0.0.1",
                                  "admin": str(workdir / "admin.sock")}))
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", GATEWAY_PORT))
    sock.settimeout(0.5)
    key, nonces = Key(secret), Nonces()
    authority = start(config)
    acked: dict[str, int] = {}
    sent = 0
    while len(acked) < KILL_AFTER:
        while sent < PEOPLE and sent - len(acked) < WINDOW:
            nid, name = people[sent]
            sock.sendto(codec.encode(codec.REGISTER, 1, nonces.next(),
                                     (sent, 0xC6130000 + sent, nid.encode(), name.encode()),
                                     key), ("127.0.0.1", PORT))
            sent += 1
        data = sock.recv(4096)
        if data[3] == codec.REGISTER_ACK:
            request_id, status, identity, _ = codec.body(codec.REGISTER_ACK, data)
            if status == codec.OK:
                acked[people[request_id][0]] = identity
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
    rest = [k for k in range(PEOPLE) if people[k][0] not in acked]
    answers: dict[int, tuple] = {}
    register(sock, key, nonces, people, rest, answers)
    authority.kill()
    authority.wait()
    registry = Registry(workdir / "r.db")
    identities = registry.db.execute("SELECT COUNT(*), COUNT(DISTINCT national_id) "
                                     "FROM identities").fetchone()
    print(json.dumps({"acknowledged": len(acked), "in_flight_at_kill": in_flight,
                      "found_after_restart": len(found),
                      "missing": sorted(set(acked) - set(found)),
                      "already_registered_after_restart": sum(
                          1 for s_, _ in answers.values() if s_ == codec.ALREADY_REGISTERED),
                      "identities_at_end": identities[0],
                      "people_with_identity_at_end": identities[1]}))


if __name__ == "__main__":
    main()
