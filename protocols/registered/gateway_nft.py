"""The gateway's writer of grant and denial elements: a thread of its own, so that the loop is
never held in libnftables, with what queued up written in transactions of ``ELEMENT_BATCH``;
anything else run on nft comes after every change queued before it."""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable

from .gateway_flows import Flow, element
from .ruleset import TABLE

ELEMENT_BATCH = 100  # flows per transaction of grant and denial changes


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

    def _element_change(self, commands: Callable[[], str]) -> None:
        """Queue a grant's or denial's set change, written when it is applied (a timeout then
        counts from its deadline, not from the queueing). The writer takes what queued up
        while it was busy in transactions of up to ``ELEMENT_BATCH``: a fifth of the cost of
        one per flow, which is what a burst of first connections needs. ``_nft`` writes
        what is still queued itself, before it goes on."""
        self.element_changes.append(commands)
        self.changes_queued.set()

    def apply_elements(self) -> None:
        """The queued element changes, in order, in transactions of ``ELEMENT_BATCH`` flows;
        a transaction the kernel refuses is retried change by change (one bad change must
        not cost the others). Taken from the queue under the lock, so a command run by
        ``_nft`` comes after every change queued before it."""
        with self.nft_lock:
            while self.element_changes:
                batch = []
                while self.element_changes and len(batch) < ELEMENT_BATCH:
                    batch.append(self.element_changes.popleft()())
                if len(batch) == 1 or self._nft_now("\n".join(batch), quiet=True)[0] != 0:
                    for change in batch:
                        self._nft_now(change)

    def _withdraw(self, flows: list[Flow]) -> None:
        """Remove these flows' grant elements: both directions stop. Their conntrack entries
        stay, so that the next packet of either side is still known as the flow its
        initiator started, and asked about as that flow (dropping them made a server's next
        packet look like a new flow it started towards the host)."""
        if not flows:
            return
        self._nft("\n".join(f"add element inet {TABLE} {element(f, 'grants')} }}\n"
                            f"delete element inet {TABLE} {element(f, 'grants')} }}"
                            for f in flows))

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
