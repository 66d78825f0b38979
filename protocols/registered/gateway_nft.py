"""The gateway's writer of grant and denial elements: a thread of its own, so that the loop is
never held by the kernel, with what queued up written in transactions of ``ELEMENT_BATCH``
over nf_tables' netlink (``setelements``: a tenth of libnftables' cost for a few elements);
anything else run on nft comes after every change queued before it."""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable

from .gateway_flows import Flow, entry
from .ruleset import TABLE
from .setelements import Change, SetWriter

ELEMENT_BATCH = 100  # flows per transaction of grant and denial changes (3 changes at most)


class ElementWriter:
    """Part of ``gateway.Gateway``: its kernel table's writer."""

    def _nft(self, command: str) -> tuple[int, str]:
        """Run ``command`` now, after the element changes still queued (order is kept)."""
        with self.nft_lock:
            self.apply_elements()
            return self._nft_now(command)

    def _nft_now(self, command: str, quiet: bool = False) -> tuple[int, str]:
        """``quiet``: a refusal is the caller's to handle (a batch retried change by change)."""
        try:
            rc, out, err = self.nft.cmd(command)
        except Exception as e:  # noqa: BLE001 - libnftables reports errors by code, but
            rc, out, err = 1, "", repr(e)  # a change must never be lost to an exception
        if rc != 0 and not quiet:
            self.counters["nft error"] += 1
            print(f"nft: {err.strip()} in: {command[:200]}", file=sys.stderr, flush=True)
        return rc, out

    def _open_sets(self) -> None:
        """The netlink writer, and whether this kernel changes an element's timeout when it
        is added again (Linux 6.10 on): then a grant is held with one change, not three.
        Found out on a probe element no flow has (every address 0), removed after."""
        self.sets, self.in_place = SetWriter(TABLE), False
        probe = (0, 0, 0, 0, 0)
        name, key = entry(probe, "grants")
        listed = []
        for timeout_ms in (60000, 1000):  # quiet: before the counters exist
            if self._elements_now([Change(True, name, key, timeout_ms)], quiet=True):
                listed.append(self._nft_now(f"list set inet {TABLE} {name}", True)[1])
        self.in_place = (len(listed) == 2 and "timeout 1m " in listed[0]
                         and "timeout 1s " in listed[1])
        self._elements_now(replaced(probe, "grants", None), quiet=True)

    def _elements_now(self, changes: list[Change], quiet: bool = False) -> bool:
        """Write ``changes`` in one transaction; ``quiet``: a refusal is the caller's to
        handle (a batch retried change by change)."""
        try:
            refused = [f"{c.set} {c.key.hex()}: errno {e}" for c, e in self.sets.apply(changes)]
        except OSError as e:  # a change must never be lost to an exception
            refused = [repr(e)]
        if refused and not quiet:
            self.counters["nft error"] += 1
            print(f"nft: refused {'; '.join(refused[:3])}", file=sys.stderr, flush=True)
        return not refused

    def _element_change(self, changes: Callable[[], list[Change]]) -> None:
        """Queue a grant's or denial's set changes, made when they are applied (a timeout then
        counts from its deadline, not from the queueing). The writer takes what queued up
        while it was busy in transactions of up to ``ELEMENT_BATCH`` flows. ``_nft`` writes
        what is still queued itself, before it goes on."""
        self.element_changes.append(changes)
        self.changes_queued.set()

    def apply_elements(self) -> None:
        """The queued element changes, in order, in transactions of ``ELEMENT_BATCH`` flows;
        a transaction the kernel refuses is retried flow by flow (one bad change must not
        cost the others). Taken from the queue under the lock, so a command run by ``_nft``
        comes after every change queued before it."""
        with self.nft_lock:
            while self.element_changes:
                batch = []
                while self.element_changes and len(batch) < ELEMENT_BATCH:
                    batch.append(self.element_changes.popleft())
                # each flow's changes made again for a retry: its timeouts count from now
                if len(batch) == 1 or not self._elements_now(
                        [c for changes in batch for c in changes()], quiet=True):
                    for changes in batch:
                        self._elements_now(changes())

    def _withdraw(self, flows: list[Flow]) -> None:
        """Remove these flows' grant elements now: both directions stop. Their conntrack
        entries stay, so that the next packet of either side is still known as the flow its
        initiator started, and asked about as that flow (dropping them made a server's next
        packet look like a new flow it started towards the host)."""
        if not flows:
            return
        with self.nft_lock:
            self.apply_elements()
            for at in range(0, len(flows), ELEMENT_BATCH):  # a batch must fit the socket
                self._elements_now([c for f in flows[at:at + ELEMENT_BATCH]
                                    for c in replaced(f, "grants", None)])

    def _held(self, flow: Flow, timeout_ms: int) -> list[Change]:
        """The flow's grant element, there for ``timeout_ms`` from now."""
        return replaced(flow, "grants", timeout_ms, self.in_place)

    def _start_writer(self) -> None:
        self.writer = threading.Thread(target=self.write_elements, name="elements", daemon=True)
        self.writer.start()
        self.changes_queued.set()

    def _keep_writer(self) -> None:
        """A writer that died is started again: elements would wait for the next policy
        change, and every packet of an admitted flow would come to the queue meanwhile."""
        if not self.writer.is_alive():
            self.counters["element writer restarted"] += 1
            self._start_writer()

    def write_elements(self) -> None:
        """The element writer's thread: applies changes as they are queued."""
        while True:
            self.changes_queued.wait()
            self.changes_queued.clear()
            try:
                self.apply_elements()
            except Exception as e:  # noqa: BLE001 - nothing may stop the writer
                self.counters["internal error"] += 1
                print(f"error in write_elements: {e!r}", file=sys.stderr, flush=True)
                time.sleep(0.01)
                self.changes_queued.set()  # what is left is tried again


def replaced(flow: Flow, kind: str, timeout_ms: int | None,
             in_place: bool = False) -> list[Change]:
    """The flow's element removed whether or not it is there (added first: deleting what is
    not there is refused), then added with ``timeout_ms`` unless that is None; ``in_place``:
    the kernel changes a timeout when the element is added again, so that alone will do."""
    name, key = entry(flow, kind)
    if in_place and timeout_ms is not None:
        return [Change(True, name, key, timeout_ms)]
    again = [Change(True, name, key, timeout_ms)] if timeout_ms is not None else []
    return [Change(True, name, key), Change(False, name, key), *again]
