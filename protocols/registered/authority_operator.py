"""The authority's operator desk: JSON lines over a Unix socket, each client read on a thread
of its own (one that never finishes its line stalls only itself), each request carried out by
the loop between two batches, committed before it is answered and before any gateway hears.

A mixin of ``authority.Authority``, whose ``admin`` socket, ``jobs`` queue, wake-up pair,
``registry``, ``policy`` and ``commit_and_push`` it uses.
"""

from __future__ import annotations

import contextlib
import json
import queue
import socket
import sys
import threading
import time
from dataclasses import dataclass, field

from .ops import OPS, READ_ONLY, OperatorRefusal

OPERATOR_TIMEOUT_S = 5.0


@dataclass
class Job:
    request: dict
    done: threading.Event = field(default_factory=threading.Event)
    answer: dict = field(default_factory=dict)


class OperatorDesk:
    def _serve_operators(self) -> None:
        while True:
            conn, _ = self.admin.accept()
            threading.Thread(target=self._operator, args=(conn,), daemon=True).start()

    def _operator(self, conn: socket.socket) -> None:
        """One client, on a thread of its own: reading its request may take as long as it
        likes; carrying it out happens in the loop."""
        with conn:
            conn.settimeout(OPERATOR_TIMEOUT_S)
            try:
                request = json.loads(conn.makefile().readline())
                if not isinstance(request, dict):
                    raise ValueError("a request is a JSON object")
            except (OSError, ValueError) as e:
                answer = {"ok": False, "error": f"unreadable request ({e})"}
            else:
                job = Job(request)
                self.jobs.put(job)
                self.wake_w.send(b"x")
                answer = job.answer if job.done.wait(30) else {
                    "ok": False, "error": "the authority did not get to it in 30 s"}
            with contextlib.suppress(OSError):
                conn.sendall((json.dumps(answer) + "\n").encode())

    def run_jobs(self) -> None:
        with contextlib.suppress(BlockingIOError):
            self.wake_r.recv(4096)
        while True:
            try:
                job = self.jobs.get_nowait()
            except queue.Empty:
                return
            job.answer = self.operate(job.request)
            self.policy_changed()  # the compiled decisions' copy too, before anyone asks
            job.done.set()

    def operate(self, request: dict) -> dict:
        """Carry out one operator request. A change is committed before it is answered, and
        before any gateway hears of it."""
        op = request.get("op")
        handler = OPS.get(op)
        if handler is None:
            return {"ok": False, "error": f"unknown operation {op!r}"}
        now = time.time()
        try:
            outcome = handler(self, request, now)
        except Exception as e:  # noqa: BLE001 - a refusal, or a bug: never the authority's end
            if not isinstance(e, OperatorRefusal | KeyError | TypeError | ValueError):
                self.counters["internal error"] += 1
                print(f"error in operation {op}: {e!r}", file=sys.stderr, flush=True)
            self.registry.rollback()
            self.policy = self._load_policy()
            return {"ok": False, "error": str(e) or type(e).__name__}
        if op not in READ_ONLY or outcome.flush:
            self.commit_and_push(flush=outcome.flush)
        return {"ok": True, "time": time.time(), **outcome.answer}
