"""A host's side of registered access: prove who you are to your gateway, with your card.

Runs inside the host, as the host's own user. The gateway is the host's default route; its
registration service (UDP 7401) is the only thing an unregistered host can reach. Two rounds
of small JSON datagrams: ask for a challenge for the card's national id, then send the proof
(``identity.proof``); the card's secret never leaves the host. ``register`` creates the
person's identity and binds it to this address; ``bind`` moves an existing identity here
(after an address change, say). The answer is printed as JSON and kept in STATE (the identity
number, for the operator's eyes; it is no credential).

    python -m protocols.registered.hostclient register CARD.json STATE.json
    python -m protocols.registered.hostclient bind CARD.json STATE.json
"""

from __future__ import annotations

import ipaddress
import json
import socket
import subprocess
import sys
from pathlib import Path

from .identity import Card, proof
from .messages import SERVICE_PORT, Enrol

OPS = {"register": Enrol.REGISTER, "bind": Enrol.BIND}


def gateway_address() -> str:
    out = subprocess.run(["ip", "-4", "route", "show", "default"], capture_output=True,
                         text=True).stdout.split()
    return out[out.index("via") + 1]


def ask(sock: socket.socket, request: dict, attempts: int = 3) -> dict:
    gateway = (gateway_address(), SERVICE_PORT)
    for _ in range(attempts):
        sock.sendto(json.dumps(request).encode(), gateway)
        try:
            return json.loads(sock.recv(2048))
        except TimeoutError:
            continue
    return {"ok": False, "reason": "no answer from the gateway"}


def enrol(op: str, card: Card, timeout: float = 2.0) -> dict:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(timeout)
        challenge = ask(sock, {"op": "challenge", "national_id": card.national_id})
        if not challenge.get("ok"):
            return challenge
        address = int(ipaddress.IPv4Address(challenge["address"]))
        answer = proof(card.secret, OPS[op], card.national_id, address,
                       int(challenge["gateway"]), bytes.fromhex(challenge["challenge"]))
        return ask(sock, {"op": op, "national_id": card.national_id,
                          "challenge": challenge["challenge"], "proof": answer.hex()}, 1)


def main(argv: list[str]) -> int:
    if len(argv) != 3 or argv[0] not in OPS:
        print("usage: hostclient register|bind CARD.json STATE.json", file=sys.stderr)
        return 2
    op, card_path, state = argv
    try:
        card = Card.load(Path(card_path))
    except (OSError, ValueError, KeyError) as e:
        print(json.dumps({"ok": False, "reason": f"no card to show ({e})"}))
        return 1
    answer = enrol(op, card)
    if answer.get("ok"):
        Path(state).write_text(json.dumps({**answer, "national_id": card.national_id,
                                           "real_name": card.real_name}))
    print(json.dumps(answer))
    return 0 if answer.get("ok") else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
