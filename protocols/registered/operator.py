"""The operator's console to the authority: a Python API over the authority's Unix socket.

Every call returns the authority's answer, with ``time``: when the change was committed (and
sent to the gateways). Experiments use this class; ``splinterlab operator`` and the ``up`` CLI are
thin wrappers around it.
"""

from __future__ import annotations

import json
import socket
from pathlib import Path

from topologies.machines import Machine, MachineError
from topologies.polling import STARTUP_S, wait_until


class OperatorError(RuntimeError):
    """The authority refused; the message is its one sentence."""


class Operator:
    """``via``: the server where the socket is, when the authority runs on another (the
    request then goes through socat there)."""

    def __init__(self, admin_socket: Path, timeout: float = 10.0, via: Machine | None = None):
        self.path = admin_socket
        self.timeout = timeout
        self.via = via

    def _ask(self, request: str) -> str:
        if self.via is not None:
            said = self.via.run(["socat", "-t", str(self.timeout), "-",
                                 f"UNIX-CONNECT:{self.path}"], input=request,
                                timeout=self.timeout + 5)
            return said.stdout.splitlines()[0]
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(self.timeout)
            s.connect(str(self.path))
            s.sendall(request.encode())
            return s.makefile().readline()

    def call(self, op: str, **arguments) -> dict:
        try:
            answer = json.loads(self._ask(json.dumps({"op": op, **arguments}) + "\n"))
        except (OSError, ValueError, IndexError, MachineError) as e:
            raise OperatorError(f"the authority does not answer ({e})") from None
        if not answer.get("ok"):
            raise OperatorError(answer.get("error", "refused"))
        return answer

    def add_person(self, national_id: str, real_name: str) -> dict:
        """The civil register adds a person; the answer carries their card's secret."""
        return self.call("add_person", national_id=national_id, real_name=real_name)

    def revoke(self, identity: int) -> dict:
        return self.call("revoke", identity=identity)

    def reinstate(self, identity: int) -> dict:
        return self.call("reinstate", identity=identity)

    def block(self, destination: str) -> dict:
        return self.call("block", destination=destination)

    def unblock(self, destination: str) -> dict:
        return self.call("unblock", destination=destination)

    def shutdown(self, region: str, allow: list[str]) -> dict:
        return self.call("shutdown", region=region, allow=allow)

    def lift(self, region: str) -> dict:
        return self.call("lift", region=region)

    def restore(self) -> dict:
        """Lift every shutdown and every block (revocations stay)."""
        return self.call("restore")

    def log(self, limit: int = 50, identity: int | None = None, since: float = 0.0) -> dict:
        return self.call("log", limit=limit, identity=identity, since=since)

    def who(self, address: str | None = None, identity: int | None = None) -> dict:
        return self.call("who", address=address, identity=identity)

    def status(self) -> dict:
        return self.call("status")

    def ttl(self, ms: int) -> dict:
        """The TTL of grants from now on (grants already given keep theirs)."""
        return self.call("ttl", ms=ms)

    def flush(self) -> dict:
        """Every gateway forgets its grants; the next packet of every flow is asked about."""
        return self.call("flush")

    def in_force(self) -> None:
        """Return once every gateway has acknowledged every change sent to it: a change goes
        out at once, but a lost datagram is resent later, so a fixed pause after a change
        does not make sure what is measured next is under it."""
        if not wait_until(lambda: self.status()["changes_unacknowledged"] == 0, STARTUP_S):
            raise OperatorError(f"the gateways did not acknowledge every change within "
                                f"{STARTUP_S:g} s")

    def checkpoint(self) -> dict:
        """Everything journaled into the registry, committed (before a copy is taken)."""
        return self.call("checkpoint")
