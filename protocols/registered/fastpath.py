"""The compiled decision path's Python side: a copy of the authority's policy in C
(``admitcore.c``), changed with the same operations that change ``admission.Policy``, and
``admit`` answered there. The first part of a decision path in C (bench admission measures
how far the Python one is from the bare limit); ``tests/test_fastpath.py`` holds every
answer to ``admission.admit`` on random policies and requests.

Keys 0 and 0xFFFFFFFF are never stored (no address, identity or gateway is either).
"""

from __future__ import annotations

import ctypes
from functools import cache

from topologies.programs import built

from .admission import Decision, FlowRequest, Policy
from .messages import Reason

LIBRARY = "libsplinterlab-admit.so"
U32 = ctypes.c_uint32


@cache
def _lib() -> ctypes.CDLL:
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
        self.regions: dict[str, int] = {}

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
            compiled.address_of[identity] = address
            compiled._check(compiled.lib.sl_bind(compiled.handle, address, identity,
                                                 policy.gateway_of.get(identity, 0)))
        for identity in policy.revoked:
            compiled.revoke(identity, True)
        compiled.blocked(policy.blocked)
        compiled.infrastructure(policy.infrastructure)
        for region, essential in policy.shutdowns.items():
            compiled.shutdown(region, essential)
        return compiled

    def ttl(self, ms: int) -> None:
        self.lib.sl_ttl(self.handle, ms)

    def bind(self, identity: int, address: int, gateway: int) -> None:
        """One binding per identity and per address, as ``Policy.bind``."""
        old = self.address_of.pop(identity, None)
        if old is not None:
            self.lib.sl_unbind(self.handle, old)
        holder = next((i for i, a in self.address_of.items() if a == address), None)
        if holder is not None:
            del self.address_of[holder]
        self.address_of[identity] = address
        self._check(self.lib.sl_bind(self.handle, address, identity, gateway))

    def revoke(self, identity: int, revoked: bool) -> None:
        self._check(self.lib.sl_revoke(self.handle, identity, int(revoked)))

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

    def admit(self, request: FlowRequest) -> Decision:
        identity, ttl = U32(), U32()
        reason = self.lib.sl_admit(self.handle, request.gateway, request.src, request.dst,
                                   request.proto, int(request.inbound), ctypes.byref(identity),
                                   ctypes.byref(ttl))
        return Decision(Reason(reason), identity.value, ttl.value)
