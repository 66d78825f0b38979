"""A host's side of registered access: ask its gateway to register it, or to re-bind it.

Runs inside the host. The gateway is the host's default route; the request is a small JSON
datagram to its registration service (UDP 7401), the only thing an unregistered host can
reach. On success the identity and credential are kept in a state file, so the host can
``bind`` again later (after moving to another address, say) without registering anew.

    python -m protocols.hostclient register NATIONAL_ID "REAL NAME" STATE.json
    python -m protocols.hostclient bind STATE.json
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path

from protocols.codec import SERVICE_PORT


def gateway_address() -> str:
    out = subprocess.run(["ip", "-4", "route", "show", "default"], capture_output=True,
                         text=True).stdout.split()
    return out[out.index("via") + 1]


def ask(request: dict, timeout: float = 2.0, attempts: int = 3) -> dict:
    gateway = (gateway_address(), SERVICE_PORT)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(timeout)
        for _ in range(attempts):
            s.sendto(json.dumps(request).encode(), gateway)
            try:
                return json.loads(s.recv(2048))
            except TimeoutError:
                continue
    return {"ok": False, "reason": "no answer from the gateway"}


def main(argv: list[str]) -> int:
    if argv[:1] == ["register"] and len(argv) == 4:
        _, national_id, real_name, state = argv
        answer = ask({"op": "register", "national_id": national_id, "real_name": real_name})
        if answer.get("ok"):
            Path(state).write_text(json.dumps({**answer, "national_id": national_id,
                                               "real_name": real_name}))
    elif argv[:1] == ["bind"] and len(argv) == 2:
        saved = json.loads(Path(argv[1]).read_text())
        answer = ask({"op": "bind", "identity": saved["identity"],
                      "credential": saved["credential"]})
    else:
        print("usage: hostclient register NATIONAL_ID 'REAL NAME' STATE.json | "
              "hostclient bind STATE.json", file=sys.stderr)
        return 2
    print(json.dumps(answer))
    return 0 if answer.get("ok") else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
