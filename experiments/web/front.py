"""``splinterlab lab``: one network per design on the same graph, side by side on one page.

Each design's network runs in a process of its own (a panel: ``Lab`` and ``LabServer``),
since a run is marked through its process's environment (``topologies.runstate``) and one
process builds one network. The front serves the page and the list of panels; the page then
talks to every panel directly, with the same token (each panel allows the front's origin):

    GET /?token=T          the page (page.html)
    GET /panels?token=T    [{"design": ..., "base": "http://127.0.0.1:PORT"}, ...]

A panel stops when the front says so or goes away (even killed): it reads its pipe until then.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import secrets
import signal
import sys
import threading
import time
from http import HTTPStatus
from multiprocessing.connection import wait
from pathlib import Path

from experiments.web.server import Guarded, Quiet
from topologies.errors import NetworkError

PAGE = Path(__file__).with_name("page.html")
UP_TIMEOUT_S = 600  # a network of the zoo's largest takes minutes to come up


class PanelError(NetworkError):
    """A panel did not come up: the design's own sentence."""


def _panel(spec: str, arch: str, backend: str, options: dict, token: str, origin: str,
           pipe) -> None:
    """A panel's process: the network up, its server on, until the front hangs up or
    SIGTERMs it. Ctrl-C and a closed terminal reach the front, which stops the panels: here
    they do nothing (a handler, not SIG_IGN, which the network's processes would inherit)."""
    from experiments.lab import Lab
    from experiments.web.server import LabServer

    def stop(*_):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)
    for sig in (signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, lambda *_: None)
    up = False
    try:
        with Lab(spec, arch, backend=backend, **options) as lab, \
                LabServer(lab, token=token, origin=origin) as server:
            pipe.send(("up", server.base))
            up = True
            with contextlib.suppress(EOFError):
                pipe.recv()
    except KeyboardInterrupt:
        pass
    except Exception as e:  # noqa: BLE001 - the front says it in one sentence
        if up:
            print(f"splinterlab lab: {arch}: {e}", file=sys.stderr)
        else:
            with contextlib.suppress(OSError):
                pipe.send(("failed", f"{arch}: {e}"))


class Front(Quiet):
    """The page over the panels of ``archs`` on ``spec`` (``options``: each design's)."""

    def __init__(self, spec: str, archs: tuple[str, ...], options: dict[str, dict],
                 backend: str = "auto", port: int = 0):
        super().__init__(("127.0.0.1", port), FrontHandler)
        self.spec, self.archs, self.token = spec, archs, secrets.token_urlsafe(24)
        self.panels: list[dict] = []
        origin = f"http://127.0.0.1:{self.server_port}"
        spawn = multiprocessing.get_context("spawn")
        self._pipes, self._processes = [], []
        for arch in archs:
            mine, theirs = spawn.Pipe()
            self._pipes.append(mine)
            self._processes.append(spawn.Process(
                target=_panel, name=f"lab-{arch}", args=(
                    spec, arch, backend, options.get(arch, {}), self.token, origin, theirs)))
        self.serving = threading.Thread(target=self.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_port}/?token={self.token}"

    def __enter__(self) -> Front:
        try:
            for process in self._processes:
                process.start()
            self._wait_up()
        except BaseException:
            for process in self._processes:  # the others need not finish coming up
                if process.is_alive():
                    process.terminate()
            self.__exit__()
            raise
        self.serving.start()
        return self

    def _wait_up(self) -> None:
        """Every panel up, or the first that fails said as it fails."""
        deadline = time.monotonic() + UP_TIMEOUT_S
        pending = dict(zip(self._pipes, self.archs, strict=True))
        bases: dict[str, str] = {}
        while pending:
            ready = wait(list(pending), timeout=max(0.0, deadline - time.monotonic()))
            if not ready:
                raise PanelError(f"{', '.join(pending.values())} did not come up in "
                                 f"{UP_TIMEOUT_S} s")
            for pipe in ready:
                arch = pending.pop(pipe)
                try:
                    word, value = pipe.recv()
                except EOFError:
                    raise PanelError(f"{arch}'s panel ended before it came up") from None
                if word != "up":
                    raise PanelError(value)
                bases[arch] = value
        self.panels = [{"design": a, "base": bases[a]} for a in self.archs]

    def __exit__(self, *exc) -> None:
        if self.serving.is_alive():
            self.shutdown()
        for pipe in self._pipes:
            with contextlib.suppress(OSError):
                pipe.send("stop")
        for process in self._processes:
            if process.pid is not None:
                process.join()  # a panel takes its network down before it ends
        self.server_close()


class FrontHandler(Guarded):
    server: Front
    routes = {"/": "_page", "/panels": "_panels"}

    def _page(self) -> None:
        self.send(HTTPStatus.OK, "text/html; charset=utf-8", PAGE.read_bytes())

    def _panels(self) -> None:
        self.json(HTTPStatus.OK, self.server.panels)


def serve(spec: str, archs: tuple[str, ...], options: dict[str, dict], backend: str,
          port: int) -> int:
    """``splinterlab lab``: the networks up, the page served until Ctrl-C."""
    with Front(spec, archs, options, backend, port) as front:
        print(f"*** {spec} is up under {', '.join(archs)}; the lab is at\n    {front.url}\n"
              "*** (127.0.0.1 only; the token is its key. Ctrl-C ends it.)", flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            threading.Event().wait()
    return 0
