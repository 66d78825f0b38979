"""A running ``Lab``'s state and actions over HTTP, on 127.0.0.1 only (one design's panel of
``splinterlab lab``; ``front`` serves the page that shows the panels side by side).

Every request must carry the lab's token (in the address, as Jupyter does): the panel holds
operator powers over a root process. Any other is refused with 403. Routes:

    GET  /state?token=T    the state now (``state.LiveState.snapshot``), JSON
    GET  /round?token=T    {"round": N} alone: what waiting for rounds polls (the bench)
    GET  /events?token=T   the state again after every change (server-sent events)
    POST /do?token=T       {"call": NAME, "args": [...]}: one of the lab's actions (CALLS);
                           {"result": ...} or {"error": one sentence}

The front's page is another origin (another port): answers allow that origin only.
"""

from __future__ import annotations

import hmac
import json
import secrets
import sys
import threading
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

from experiments.lab import Lab
from experiments.web.state import LiveState

CALLS = ("act", "undo", "fail", "restore", "central", "probe", "ping")  # what the page may do
LOOKS = ("probe", "ping")  # of those, what changes nothing: taken beside the actions
MAX_BODY = 64 * 1024  # bytes a request to /do may carry
EVENT_WAIT_S = 1.0  # a state is sent at least this often, a change or not


class Guarded(BaseHTTPRequestHandler):
    """Answers only requests carrying the server's ``token``; a GET by ``routes`` (path -> the
    name of the method answering it), which each server's handler declares."""

    timeout = 10  # a connection that never asks holds no thread for longer
    routes: dict[str, str] = {}

    def do_GET(self) -> None:
        if not self.allowed():
            return
        answer = self.routes.get(urlparse(self.path).path)
        if answer is None:
            self.send(HTTPStatus.NOT_FOUND, "text/plain", b"no such page\n")
        else:
            getattr(self, answer)()

    def log_message(self, *args) -> None:  # the console stays the lab's
        pass

    def allowed(self) -> bool:
        given = parse_qs(urlparse(self.path).query).get("token", [""])[0]
        if hmac.compare_digest(given.encode(), self.server.token.encode()):
            return True
        self.send(HTTPStatus.FORBIDDEN, "text/plain",
                  b"forbidden: open the address splinterlab lab printed, token and all\n")
        return False

    def head(self, status: HTTPStatus, kind: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Cache-Control", "no-store")
        self.send_header("Referrer-Policy", "no-referrer")  # the token is in the address
        origin = getattr(self.server, "origin", None)
        if origin:
            self.send_header("Access-Control-Allow-Origin", origin)

    def send(self, status: HTTPStatus, kind: str, body: bytes) -> None:
        self.head(status, kind)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def json(self, status: HTTPStatus, value: object) -> None:
        self.send(status, "application/json", json.dumps(value, default=str).encode())


class Quiet(ThreadingHTTPServer):
    """A server whose threads end with the process, and for which a page going away
    mid-answer (a browser closed) is no error."""

    daemon_threads = True

    def handle_error(self, request, client_address) -> None:
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


class LabServer(Quiet):
    """``lab``'s panel: ``token`` (a new one if not given) opens it; ``origin`` (the front's
    page) may read its answers."""

    def __init__(self, lab: Lab, port: int = 0, token: str | None = None,
                 origin: str | None = None):
        super().__init__(("127.0.0.1", port), Handler)
        self.lab, self.token, self.origin = lab, token or secrets.token_urlsafe(24), origin
        self.live = LiveState(lab)
        self.serving = threading.Thread(target=self.serve_forever, daemon=True)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.server_port}"

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
        if name in LOOKS:  # a slow ping holds up no action, and no round is thrown away
            return getattr(self.lab, name)(*args)
        with self.live.acting:  # one action at a time: a double click acts once
            try:
                return getattr(self.lab, name)(*args)
            finally:
                self.live.acted()


class Handler(Guarded):
    server: LabServer
    routes = {"/state": "_state", "/round": "_round", "/events": "_events"}

    def _state(self) -> None:
        self.json(HTTPStatus.OK, self.server.live.snapshot())

    def _round(self) -> None:
        self.json(HTTPStatus.OK, {"round": self.server.live.round})

    def _events(self) -> None:
        self.head(HTTPStatus.OK, "text/event-stream")
        self.end_headers()
        live, seen = self.server.live, -1
        try:
            while not live.stopping.is_set():
                live.wait(seen, EVENT_WAIT_S)
                state = live.snapshot()
                seen = state["version"]
                self.wfile.write(f"data: {json.dumps(state)}\n\n".encode())
                self.wfile.flush()
        except ConnectionError:
            pass  # the page went away

    def do_POST(self) -> None:
        if not self.allowed():
            return
        if urlparse(self.path).path != "/do":
            self.send(HTTPStatus.NOT_FOUND, "text/plain", b"no such action\n")
            return
        try:
            size = int(self.headers.get("Content-Length", 0))
            if not 0 < size <= MAX_BODY:
                raise ValueError(f"a request carries 1 to {MAX_BODY} bytes")
            asked = json.loads(self.rfile.read(size))
            result = self.server.call(asked.get("call"), asked.get("args", []))
        except Exception as e:  # noqa: BLE001 - any refusal, lab's or design's: one sentence
            self.json(HTTPStatus.BAD_REQUEST, {"error": str(e) or type(e).__name__})
            return
        self.json(HTTPStatus.OK, {"result": result})
