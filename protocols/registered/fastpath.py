"""The compiled decision path's Python side: a copy of the authority's policy in C
(``admitcore.c``), changed with the same operations that change ``admission.Policy``, and
``admit`` answered there; and a FLOW_REQUEST checked, decided, logged and answered there
(``flowcore.c``, ``FlowServer``), as ``Authority.flow`` does. Bench admission measures how far
the Python path is from the bare limit; ``tests/test_fastpath.py`` holds every answer to the
Python reference.

Keys 0 and 0xFFFFFFFF are never stored (no address, identity or gateway is either).
"""

from __future__ import annotations

import ctypes
from functools import cache

from .admission import Decision, FlowRequest, Policy
from .messages import Reason

LIBRARY = "libsplinterlab-admit.so"
RESERVED = {0, 0xFFFFFFFF}  # the C tables' empty and removed marks: no address, no identity
U32 = ctypes.c_uint32


@cache
def _lib() -> ctypes.CDLL:
    from topologies.programs import built  # here: the authority does not import the graphs

    lib = ctypes.CDLL(str(built(LIBRARY)))
    lib.sl_policy_new.restype = ctypes.c_void_p
    lib.sl_policy_new.argtypes = [U32]
    lib.sl_policy_free.argtypes = [ctypes.c_void_p]
    lib.sl_ttl.argtypes = [ctypes.c_void_p, U32]
    lib.sl_bind.argtypes = [ctypes.c_void_p, U32, U32, U32]
    lib.sl_unbind.argtypes = [ctypes.c_void_p, U32]
    lib.sl_revoke.argtypes = [ctypes.c_void_p, U32, ctypes.c_int]
    lib.sl_region.argtypes = [ctypes.c_void_p, U32, U32]
    prefix_list = [ctypes.c_void_p, ctypes.POINTER(U32), ctypes.POINTER(ctypes.c_uint8), U32]
    lib.sl_blocked.argtypes = prefix_list
    lib.sl_infrastructure.argtypes = prefix_list
    lib.sl_shutdown.argtypes = [ctypes.c_void_p, U32, ctypes.c_int, *prefix_list[1:]]
    lib.sl_admit.argtypes = [ctypes.c_void_p, U32, U32, U32, U32, ctypes.c_int,
                             ctypes.POINTER(U32), ctypes.POINTER(U32)]
    lib.sl_server_new.restype = ctypes.c_void_p
    lib.sl_server_new.argtypes = [ctypes.c_void_p, ctypes.c_uint64, ctypes.c_uint64]
    lib.sl_server_free.argtypes = [ctypes.c_void_p]
    lib.sl_gateway.argtypes = [ctypes.c_void_p, U32, ctypes.c_char_p, U32, U32]
    lib.sl_counts.restype = ctypes.POINTER(ctypes.c_uint64)
    lib.sl_counts.argtypes = [ctypes.c_void_p]
    lib.sl_serve.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_int, ctypes.c_int,
                             ctypes.c_char_p, U32, ctypes.POINTER(U32)]
    lib.sl_devices.argtypes = prefix_list
    lib.sl_next.restype = ctypes.c_uint64
    lib.sl_next.argtypes = [ctypes.c_void_p, U32, ctypes.POINTER(U32)]
    lib.sl_last_seen.restype = ctypes.c_double
    lib.sl_last_seen.argtypes = [ctypes.c_void_p, U32]
    lib.sl_flow.argtypes = [ctypes.c_void_p, ctypes.c_char_p, U32, ctypes.c_double,
                            ctypes.c_uint64, ctypes.c_char_p, ctypes.c_char_p]
    lib.sl_authenticate.argtypes = [ctypes.c_void_p, ctypes.c_char_p, U32, ctypes.c_uint64]
    return lib


def _arrays(prefixes: list[tuple[int, int]]):
    n = len(prefixes)
    return ((U32 * n)(*(a for a, _ in prefixes)), (ctypes.c_uint8 * n)(*(k for _, k in prefixes)),
            n)


class CompiledPolicy:
    """A policy in C. ``of(policy)`` copies one whole; the methods change it as the operator's
    commands change ``Policy`` (``bind`` as ``Policy.bind`` does, the lists whole)."""

    def __init__(self, ttl_ms: int):
        self.lib = _lib()
        self.handle = self.lib.sl_policy_new(ttl_ms)
        if not self.handle:
            raise MemoryError("no memory for a compiled policy")
        self.address_of: dict[int, int] = {}  # identity -> address, to unbind as Policy does
        self.holder: dict[int, int] = {}      # address -> identity
        self.regions: dict[str, int] = {}
        self.revoked: set[int] = set()  # as last told, for ``sync``
        self.shut: set[str] = set()

    def __del__(self):
        if getattr(self, "handle", None):
            self.lib.sl_policy_free(self.handle)
            self.handle = None

    def _check(self, status: int) -> None:
        if status:
            raise MemoryError("the compiled policy could not grow")

    @classmethod
    def of(cls, policy: Policy) -> CompiledPolicy:
        compiled = cls(policy.ttl_ms)
        for gateway, region in policy.region_of.items():
            compiled.region(gateway, region)
        for address, identity in policy.identity_at.items():
            compiled.address_of[identity], compiled.holder[address] = address, identity
            compiled._check(compiled.lib.sl_bind(compiled.handle, address, identity,
                                                 policy.gateway_of.get(identity, 0)))
        compiled.sync(policy)
        return compiled

    def ttl(self, ms: int) -> None:
        self.lib.sl_ttl(self.handle, ms)

    def bind(self, identity: int, address: int, gateway: int) -> None:
        """One binding per identity and per address, as ``Policy.bind``."""
        if {identity, address} & RESERVED:
            raise ValueError(f"{identity}, {address}: 0 and 0xFFFFFFFF are never bound")
        old = self.address_of.pop(identity, None)
        if old is not None:
            self.lib.sl_unbind(self.handle, old)
            del self.holder[old]
        holder = self.holder.pop(address, None)
        if holder is not None:
            del self.address_of[holder]
        self.address_of[identity], self.holder[address] = address, identity
        self._check(self.lib.sl_bind(self.handle, address, identity, gateway))

    def revoke(self, identity: int, revoked: bool) -> None:
        self._check(self.lib.sl_revoke(self.handle, identity, int(revoked)))

    def sync(self, policy: Policy) -> None:
        """Take over what an operator's command may have changed in ``policy`` (everything
        but the bindings, which change one at a time through ``bind``)."""
        self.ttl(policy.ttl_ms)
        for identity in policy.revoked ^ self.revoked:
            self.revoke(identity, identity in policy.revoked)
        self.revoked = set(policy.revoked)
        self.blocked(policy.blocked)
        self.infrastructure(policy.infrastructure)
        for region in self.shut - set(policy.shutdowns):
            self.shutdown(region, None)
        for region, essential in policy.shutdowns.items():
            self.shutdown(region, essential)

    def region(self, gateway: int, name: str) -> None:
        self._check(self.lib.sl_region(self.handle, gateway, self._region(name)))

    def _region(self, name: str) -> int:
        return self.regions.setdefault(name, len(self.regions))

    def blocked(self, prefixes: list[tuple[int, int]]) -> None:
        self._check(self.lib.sl_blocked(self.handle, *_arrays(prefixes)))

    def infrastructure(self, prefixes: list[tuple[int, int]]) -> None:
        self._check(self.lib.sl_infrastructure(self.handle, *_arrays(prefixes)))

    def shutdown(self, region: str, essential: list[tuple[int, int]] | None) -> None:
        """Shut ``region`` down but for ``essential``; None lifts it."""
        self._check(self.lib.sl_shutdown(self.handle, self._region(region),
                                         int(essential is not None), *_arrays(essential or [])))
        (self.shut.add if essential is not None else self.shut.discard)(region)

    def admit(self, request: FlowRequest) -> Decision:
        identity, ttl = U32(), U32()
        reason = self.lib.sl_admit(self.handle, request.gateway, request.src, request.dst,
                                   request.proto, int(request.inbound), ctypes.byref(identity),
                                   ctypes.byref(ttl))
        return Decision(Reason(reason), identity.value, ttl.value)


# what FlowServer.flow did, by flowcore.c's number: an answer, codec.Rejected's reasons, or
# a datagram left to the Python path (any other message, a flow from a device block); then
# what FlowServer.serve counts besides, under the names the authority's counters use
VERDICTS = ("answered", "malformed", "unknown sender", "bad hmac", "stale",
            "sent before this receiver started", "old session", "replay", "to python",
            "not from its gateway's address", "granted", "denied", "answer unsent")
FLOW_SIZE = 102
RECORD_SIZE = 39
BATCH, DATAGRAM = 256, 2048  # flowcore.c's: one serve reads at most BATCH datagrams


class FlowServer:
    """The hot path of ``Authority.flow`` in C over a ``CompiledPolicy``: keys and replay
    windows per gateway, and the authority's session with one counter per gateway."""

    def __init__(self, policy: CompiledPolicy, session: int, started_us: int,
                 keys: dict[int, bytes], sources: dict[int, int],
                 devices: list[tuple[int, int]] = ()):
        self.lib, self.policy = policy.lib, policy  # the policy outlives the server
        self.handle = self.lib.sl_server_new(policy.handle, session, started_us)
        if not self.handle:
            raise MemoryError("no memory for a flow server")
        for gateway, secret in keys.items():
            if self.lib.sl_gateway(self.handle, gateway, secret, len(secret),
                                   sources[gateway]):
                raise ValueError(f"gateway {gateway}: ids must be below 4096")
        self.lib.sl_devices(self.handle, *_arrays(list(devices)))
        self.answer = ctypes.create_string_buffer(FLOW_SIZE)
        self.record = ctypes.create_string_buffer(RECORD_SIZE)
        self.rest = ctypes.create_string_buffer(BATCH * (DATAGRAM + 8))
        self.rest_len = U32()

    def __del__(self):
        if getattr(self, "handle", None):
            self.lib.sl_server_free(self.handle)
            self.handle = None

    def flow(self, data: bytes, now: float, now_us: int) -> tuple[str, bytes, bytes]:
        """(verdict, answer, journal record); the last two empty unless answered."""
        verdict = VERDICTS[self.lib.sl_flow(self.handle, data, len(data), now, now_us,
                                            self.answer, self.record)]
        if verdict != "answered":
            return verdict, b"", b""
        return verdict, self.answer.raw, self.record.raw

    def serve(self, sock, journal_fd: int, power: bool) -> tuple[int, list]:
        """One batch from ``sock`` (``flowcore.sl_serve``): how many datagrams were read, and
        those left to the Python path as (bytes, (address, port))."""
        got = self.lib.sl_serve(self.handle, sock.fileno(), journal_fd, int(power), self.rest,
                                len(self.rest), ctypes.byref(self.rest_len))
        if got < 0:
            raise OSError("the journal refused a batch of records")
        rest, at = [], 0
        raw = ctypes.string_at(self.rest, self.rest_len.value) if self.rest_len.value else b""
        while at < len(raw):
            n = int.from_bytes(raw[at:at + 2], "big")
            address = ".".join(str(b) for b in raw[at + 2:at + 6])
            port = int.from_bytes(raw[at + 6:at + 8], "big")
            rest.append((raw[at + 8:at + 8 + n], (address, port)))
            at += 8 + n
        return got, rest

    def next(self, gateway: int) -> tuple[int, int]:
        """The session and counter of the next message to ``gateway`` (as ``codec.Sender``):
        the C path's answers and the Python path's messages share one numbering."""
        counter = U32()
        session = self.lib.sl_next(self.handle, gateway, ctypes.byref(counter))
        if not session:
            raise OverflowError("four billion messages to one gateway: start anew")
        return session, counter.value

    def counts(self) -> dict[str, int]:
        counted = self.lib.sl_counts(self.handle)
        return {name: counted[k] for k, name in enumerate(VERDICTS) if counted[k]}

    def authenticate(self, data: bytes, now_us: int) -> str:
        """``codec.authenticate`` for a well-formed message of any type, with this server's
        keys and replay windows: "answered" if it holds, else why not."""
        return VERDICTS[self.lib.sl_authenticate(self.handle, data, len(data), now_us)]

    def last_seen(self, gateway: int) -> float:
        return self.lib.sl_last_seen(self.handle, gateway)

