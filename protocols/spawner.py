"""One loaded interpreter forks a daemon into every router that runs one, so that the routers
share its pages.

A Python daemon started on its own (a registered design's gateway, a national design's
inspection box) is a whole interpreter: about 13 MB of private memory, most of it the
interpreter and the modules every copy imports alike, and the largest cost per access router
in ``bench scale``. A spawner imports the daemon's module once, freezes what it holds out of
the garbage collector's way, and forks a copy into a router's network and mount namespaces
when asked; each copy keeps private only the pages it changes. Each copy is still a process
of its own, with its own keys, state and crash: what the architecture needs of it, and so
its numbers, are unchanged.

The request comes from inside the router (``ask``, run there as any daemon is), with the
router's namespaces passed as descriptors: the copy joins exactly what the asker is in. The
spawner answers the copy's pid; ``ask`` writes it to the daemon's pidfile and exits, as a
daemon that forks into the background does. Only root may ask. A spawner runs on the machine,
not in a node: a router's crash ends that router's copy, never the spawner (``spawned``).

    python -m protocols.spawner serve SOCKET MODULE    (MODULE.main() reads sys.argv[1])
    python -m protocols.spawner ask SOCKET NAME ARGUMENT LOG PIDFILE
"""

from __future__ import annotations

import array
import contextlib
import ctypes
import importlib
import json
import os
import signal
import socket
import struct
import sys

CLONE_NEWNS, CLONE_NEWNET = 0x00020000, 0x40000000
NAMESPACES = (("net", CLONE_NEWNET), ("mnt", CLONE_NEWNS))  # what ``mnexec -a`` joins too
PR_SET_NAME = 15
REQUEST_MAX = 4096
ANSWER_WAIT_S = 30.0


def serve(path: str, module: str) -> None:
    """Load ``module``, then fork one copy of it for each request, forever."""
    import gc

    run = importlib.import_module(module).main
    gc.collect()
    gc.freeze()  # the collector would otherwise write to every shared object's header
    if os.getsid(0) != os.getpid():  # over ssh it leads a session already
        os.setsid()  # a Ctrl-C at the terminal is for the experiment, not for this
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # the kernel reaps the copies
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    umask = os.umask(0o077)  # root's alone
    listener.bind(f"{path}.new")
    os.umask(umask)
    listener.listen(64)
    os.rename(f"{path}.new", path)  # there once it listens: ``spawned`` waits for the name
    print(f"spawner of {module}: ready on {path}", flush=True)
    while True:
        conn, _ = listener.accept()
        with conn:
            conn.settimeout(ANSWER_WAIT_S)  # an asker that stalls holds up no other
            try:
                _spawn(conn, listener, run)
            except Exception as e:  # noqa: BLE001 - one bad request must not end the spawner
                with contextlib.suppress(OSError):  # the asker gave up: its ask says so
                    conn.send(json.dumps({"error": f"{type(e).__name__}: {e}"}).encode())


def _spawn(conn: socket.socket, listener: socket.socket, run) -> None:
    """Fork a copy for the request on ``conn``; the copy answers once it is in place."""
    data, fds = _receive(conn)  # read first: the asker waits for an answer, not a closed door
    try:
        uid = struct.unpack("3i", conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED,
                                                  struct.calcsize("3i")))[1]
        if uid != 0:
            raise ValueError("only root may start a daemon")
        request = json.loads(data)
        if not isinstance(request, dict) or not all(
                isinstance(request.get(k), str) for k in ("name", "argument", "log")):
            raise ValueError("a request names its daemon, its argument and its log")
        if len(fds) != len(NAMESPACES):
            raise ValueError(f"a request passes {len(NAMESPACES)} namespaces, not {len(fds)}")
        sys.stdout.flush()
        if os.fork() == 0:
            _child(request, fds, conn, listener, run)
    finally:
        for fd in fds:
            os.close(fd)


def _receive(conn: socket.socket) -> tuple[bytes, list[int]]:
    room = socket.CMSG_SPACE(len(NAMESPACES) * array.array("i").itemsize)
    data, ancillary, _, _ = conn.recvmsg(REQUEST_MAX, room)
    fds = array.array("i")
    for level, kind, payload in ancillary:
        if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
            fds.frombytes(payload[:len(payload) - len(payload) % fds.itemsize])
    return data, list(fds)


def _child(request: dict, fds: list[int], conn: socket.socket, listener: socket.socket,
           run) -> None:
    """Become the daemon inside the asker's namespaces, tell the asker (or end, if it is
    gone: nobody would know of this copy); never return."""
    code = 1
    try:
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)  # the daemon waits for its own children
        listener.close()
        libc = ctypes.CDLL(None, use_errno=True)
        for fd, (_, kind) in zip(fds, NAMESPACES, strict=True):
            if libc.setns(fd, kind) != 0:
                raise OSError(ctypes.get_errno(), f"setns: {os.strerror(ctypes.get_errno())}")
            os.close(fd)
        os.chdir("/")
        os.setsid()
        log = os.open(request["log"], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        null = os.open(os.devnull, os.O_RDONLY)
        for fd, target in ((null, 0), (log, 1), (log, 2)):
            os.dup2(fd, target)
        os.close(log)
        os.close(null)
        libc.prctl(PR_SET_NAME, request["name"].encode()[:15], 0, 0, 0)
        with open("/proc/self/stat", "rb") as f:
            start = int(f.read().rsplit(b")", 1)[1].split()[19])
        conn.send(json.dumps({"pid": os.getpid(), "start": start}).encode())
        conn.close()
        sys.argv = [request["name"], request["argument"]]
        run()
        code = 0
    except SystemExit as e:
        if isinstance(e.code, str):
            print(e.code, file=sys.stderr)
        code = e.code if isinstance(e.code, int) else int(e.code is not None)
    except BaseException:  # noqa: BLE001 - said in the daemon's log (or the spawner's)
        import traceback
        traceback.print_exc()
        with contextlib.suppress(OSError):
            conn.send(json.dumps({"error": traceback.format_exc(limit=0).strip()}).encode())
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


def ask(path: str, name: str, argument: str, log: str, pidfile: str) -> int:
    """From inside a router: have the spawner start its copy here; 0 once it has."""
    fds = [os.open(f"/proc/self/ns/{ns}", os.O_RDONLY) for ns, _ in NAMESPACES]
    request = json.dumps({"name": name, "argument": argument, "log": log}).encode()
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET) as s:
            s.settimeout(ANSWER_WAIT_S)
            s.connect(path)
            s.sendmsg([request], [(socket.SOL_SOCKET, socket.SCM_RIGHTS,
                                   array.array("i", fds))])
            answer = json.loads(s.recv(REQUEST_MAX) or b"{}")
    except (OSError, ValueError) as e:
        print(f"the spawner at {path} did not answer: {e}", file=sys.stderr)
        return 1
    finally:
        for fd in fds:
            os.close(fd)
    if "pid" not in answer:
        print(f"the spawner refused: {answer.get('error', 'no answer')}", file=sys.stderr)
        return 1
    with open(pidfile, "w") as f:
        f.write(f"{answer['pid']} {answer['start']}\n")  # the start: see topologies.network
    return 0


def main(argv: list[str]) -> int:
    if argv[:1] == ["serve"] and len(argv) == 3:
        serve(argv[1], argv[2])
        return 0
    if argv[:1] == ["ask"] and len(argv) == 6:
        return ask(*argv[1:])
    print("usage:\n" + "\n".join(__doc__.strip().splitlines()[-2:]), file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
