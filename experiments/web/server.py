"""``splinterlab lab``: a running ``Lab`` served to a browser on 127.0.0.1 only.

The page holds operator powers over a root process, so every request must carry the token
printed at start (in the address, as Jupyter does); any other is refused with 403. Routes:

    GET  /?token=T         the page (page.html)
    GET  /state?token=T    the state now (``state.LiveState.snapshot``), JSON
    GET  /events?token=T   the state again after every round of flows (server-sent events)
    POST /do?token=T       {"call": NAME, "args": [...]}: one of the lab's actions (CALLS);
                           {"result": ...} or {"error": one sentence}
"""

from __future__ import annotations

import contextlib
import hmac
import json
import secrets
import threading
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlparse

from experiments.lab import Lab
from experiments.web.state import LiveState

PAGE = Path(__file__).with_name("page.html")
CALLS = ("act", "undo", "fail", "restore", "central", "probe", "ping")  # what the page may do
EVENT_WAIT_S = 1.0  # a state is sent at least this often, a round or not


class LabServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, lab: Lab, port: int = 0):
        super().__init__(("127.0.0.1", port), Handler)
        self.lab, self.token = lab, secrets.token_urlsafe(24)
        self.acting = threading.Lock()  # one action at a time: a double click acts once
        self.live = LiveState(lab)
        self.serving = threading.Thread(target=self.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_port}/?token={self.token}"

    def __enter__(self) -> LabServer:
        self.live.start()
        self.serving.start()
        return self

    def __exit__(self, *exc) -> None:
        self.shutdown()
        self.live.stop()
        self.server_close()

    def call(self, name: str, args: list) -> object:
        """One of the lab's actions, by name (only those in CALLS)."""
        if name not in CALLS or not isinstance(args, list):
            raise ValueError(f"the page may call {', '.join(CALLS)}, with a list of arguments")
        if name == "central":
            if args not in (["up"], ["down"]):
                raise ValueError('central takes "up" or "down"')
            args = [args == ["up"]]
        with self.acting:
            try:
                return getattr(self.lab, name)(*args)
            finally:
                self.live.acted()


class Handler(BaseHTTPRequestHandler):
    server: LabServer
    timeout = 10  # a connection that never asks holds no thread for longer

    def log_message(self, *args) -> None:  # the console stays the lab's
        pass

    def _allowed(self) -> bool:
        given = parse_qs(urlparse(self.path).query).get("token", [""])[0]
        if hmac.compare_digest(given.encode(), self.server.token.encode()):
            return True
        self._send(HTTPStatus.FORBIDDEN, "text/plain",
                   b"forbidden: open the address splinterlab lab printed, token and all\n")
        return False

    def _send(self, status: HTTPStatus, kind: str, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(body)

    def _json(self, status: HTTPStatus, value: object) -> None:
        self._send(status, "application/json", json.dumps(value, default=str).encode())

    def do_GET(self) -> None:
        if not self._allowed():
            return
        route = urlparse(self.path).path
        if route == "/":
            self._send(HTTPStatus.OK, "text/html; charset=utf-8", PAGE.read_bytes())
        elif route == "/state":
            self._json(HTTPStatus.OK, self.server.live.snapshot())
        elif route == "/events":
            self._events()
        else:
            self._send(HTTPStatus.NOT_FOUND, "text/plain", b"no such page\n")

    def _events(self) -> None:
        self.send_response(HTTPStatus.OK)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        live, seen = self.server.live, -1
        try:
            while not live.stopping.is_set():
                live.wait(seen, EVENT_WAIT_S)
                state = live.snapshot()
                seen = state["version"]
                self.wfile.write(f"data: {json.dumps(state)}\n\n".encode())
                self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):
            pass  # the page went away

    def do_POST(self) -> None:
        if not self._allowed():
            return
        if urlparse(self.path).path != "/do":
            self._send(HTTPStatus.NOT_FOUND, "text/plain", b"no such action\n")
            return
        try:
            asked = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))
            result = self.server.call(asked.get("call"), asked.get("args", []))
        except Exception as e:  # noqa: BLE001 - any refusal, lab's or design's: one sentence
            self._json(HTTPStatus.BAD_REQUEST, {"error": str(e) or type(e).__name__})
            return
        self._json(HTTPStatus.OK, {"result": result})


def serve(spec: str, arch: str, port: int, backend: str, options: dict) -> int:
    """``splinterlab lab``: the network up, the page served until Ctrl-C."""
    with Lab(spec, arch, backend=backend, **options) as lab, LabServer(lab, port) as server:
        print(f"*** {spec} is up under {arch}; the lab is at\n    {server.url}\n"
              "*** (127.0.0.1 only; the token is its key. Ctrl-C ends it.)", flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            threading.Event().wait()
    return 0
