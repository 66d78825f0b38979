"""``splinterlab bench admission``: how many decisions the authority makes, and how fast.

The authority runs alone in a throwaway network namespace (loopback only), with a registry of
``BOUND`` registered addresses; a gateway on the other core asks (``loadgen``: in C, so that
the load is not what limits; this process acknowledges the authority's first pushes). Once with each
journal durability (``process``: write() before answering; ``power``: and fdatasync). Phases:

* fixed offered rates (Ethane's operating points 2 k, 6 k, 11 k requests/s): decision latency
  from the requester's side, p50 and p99, and losses;
* saturation: requests as fast as the generator can send them; decisions per second per core
  is the number of decisions divided by the CPU seconds the authority used.

Afterwards the admission log is read back: every decision counted must be in it. Beside it,
two yardsticks: the bare limit (``barelimit``), the same decision's cryptography and lookup in
C and no more; and the floor of the compiled path's datagram I/O (``iofloor``, under the same
flood), its reads, journal writes and answers with nothing decided: where the compiled
authority's CPU goes.
"""

from __future__ import annotations

import json
import os
import random
import socket
import struct
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from experiments.bench import barelimit, loadgen
from experiments.measures import cpu_seconds, percentile
from protocols.registered import codec
from protocols.registered.codec import Key, Sender
from protocols.registered.identity import issue
from protocols.registered.journal import Journal
from protocols.registered.messages import GATEWAY_PORT, PORT, Type
from protocols.registered.registry import Gateway, Registry
from topologies.programs import built

ADDRESS = "127.0.0.1"
GATEWAY = 1
BOUND = 1000
IOFLOOR = "splinterlab-iofloor"
RATES = (2000, 6000, 11000, 100000)  # Ethane's operating points, and ten times its best


@dataclass
class PhaseResult:
    offered_per_s: float
    answered: int
    sent: int
    p50_ms: float | None
    p99_ms: float | None
    decisions_per_cpu_s: float | None = None


class Generator:
    """Plays a gateway: sends FLOW_REQUESTs, collects the answers, acknowledges pushes."""

    def __init__(self, key: Key, sources: list[int], address: str = ADDRESS,
                 authority: str = ADDRESS, gateway: int = GATEWAY):
        self.key = key
        self.sources = sources
        self.gateway = gateway
        self.sender = Sender()
        self.rng = random.Random(1)
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16 << 20)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 16 << 20)
        self.sock.bind((address, GATEWAY_PORT))  # where the authority sends its pushes
        self.sock.setblocking(False)
        self.target = (authority, PORT)

    def _encode(self, msg_type: Type, body: tuple) -> bytes:
        session, counter = self.sender.next(0)
        return codec.encode(msg_type, self.gateway, session, counter, body, self.key)

    def request(self, request_id: int) -> bytes:
        return self._encode(Type.FLOW_REQUEST, (request_id, self.rng.choice(self.sources),
                                                0xCB00710A, 6, 0, 40000 + request_id % 20000,
                                                443, 0, bytes(16)))

    def drain(self, answered: dict[int, float]) -> None:
        """Collect answers; acknowledge policy, as a gateway does."""
        while True:
            try:
                data = self.sock.recv(4096)
            except BlockingIOError:
                return
            first = struct.unpack_from("!I", data, codec.HEADER.size)[0]
            if data[3] == Type.POLICY:
                self.sock.sendto(self._encode(Type.POLICY_ACK, (first,)), self.target)
            else:
                answered[first] = time.perf_counter()

    def paced(self, rate: int, seconds: float) -> PhaseResult:
        """Send at ``rate`` per second, each request when it is due; time every answer."""
        total = int(rate * seconds)
        sent_at: list[float] = [0.0] * total
        answered: dict[int, float] = {}
        start = time.perf_counter()
        n = 0
        while n < total:
            now = time.perf_counter()
            due = min(total, int((now - start) * rate) + 1)
            while n < due:
                sent_at[n] = time.perf_counter()
                self.sock.sendto(self.request(n), self.target)
                n += 1
            self.drain(answered)
        deadline = time.perf_counter() + 1.0
        while len(answered) < total and time.perf_counter() < deadline:
            self.drain(answered)
        latencies = [(t - sent_at[i]) * 1000 for i, t in answered.items()]
        return PhaseResult(rate, len(answered), total, percentile(latencies, 0.5),
                           percentile(latencies, 0.99))


def _offered(result: dict) -> PhaseResult:
    return PhaseResult(result["offered_per_s"], result["answered"], result["sent"],
                       result["p50_ms"], result["p99_ms"])


def _registry(workdir: Path, key: bytes) -> Path:
    db = workdir / "registry.db"
    cards = [issue(f"NID-{k:05d}", f"Person {k}") for k in range(BOUND)]
    registry = Registry.create(db, [Gateway(GATEWAY, "load", "all", key,
                                            int.from_bytes(socket.inet_aton(ADDRESS), "big"))],
                               cards, ttl_ms=30_000)
    for k, card in enumerate(cards):
        identity = registry.add_identity(card.national_id, time.time())
        registry.bind(identity, 0xC6130000 + k, GATEWAY, time.time())
    registry.commit()
    registry.close()
    return db


def inside_namespace(seconds: float, durability: str, decisions: str) -> dict:
    """The benchmark proper; runs in its own network namespace (see ``run``)."""
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
    with tempfile.TemporaryDirectory(prefix="splinterlab-admission-") as tmp:
        if durability == "floor":
            return _floor(Path(tmp), seconds)
        return _measure(Path(tmp), seconds, durability, decisions)


def _floor(workdir: Path, seconds: float) -> dict:
    """``iofloor`` answering the load that saturates the authority."""
    floor = subprocess.Popen([str(built(IOFLOOR)), str(PORT), str(workdir / "floor.journal")],
                             stdout=subprocess.PIPE, text=True)
    try:
        floor.stdout.readline()  # "ready"
        offered = loadgen.offer(os.urandom(32), GATEWAY, PORT, 0, seconds)
    finally:
        floor.terminate()
    return {**json.loads(floor.communicate(timeout=10)[0]), "answered": offered["answered"]}


def _measure(workdir: Path, seconds: float, durability: str, decisions: str) -> dict:
    secret = os.urandom(32)
    db = _registry(workdir, secret)
    config = workdir / "authority.json"
    config.write_text(json.dumps({"db": str(db), "address": ADDRESS, "durability": durability,
                                  "admin": str(workdir / "admin.sock"),
                                  "decisions": decisions}))
    authority = subprocess.Popen([sys.executable, "-m", "protocols.registered.authority",
                                  str(config)],
                                 stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        generator = Generator(Key(secret), [0xC6130000 + k for k in range(BOUND)])
        authority.stdout.readline()  # "authority ready": its sync pushes are on their way
        warm_up = generator.paced(2000, 0.5)  # it acknowledges the authority's sync pushes
        paced = [_offered(loadgen.offer(secret, GATEWAY, PORT, rate, seconds))
                 for rate in RATES]
        cpu = cpu_seconds(authority.pid)
        flood = _offered(loadgen.offer(secret, GATEWAY, PORT, 0, seconds))
        cpu = cpu_seconds(authority.pid) - cpu
        flood.decisions_per_cpu_s = flood.answered / cpu if cpu else None
    finally:
        authority.kill()
        authority.wait()
    registry = Registry(db)
    registry.import_journal(Journal(db.with_suffix(".journal")))  # what the importer left
    logged = registry.db.execute("SELECT COUNT(*) FROM admissions").fetchone()[0]
    registry.close()
    answered = warm_up.answered + sum(p.answered for p in paced) + flood.answered
    return {"durability": durability, "decisions": decisions, "paced": [vars(p) for p in paced],
            "flood": vars(flood), "logged": logged, "answered_total": answered}


# each run: (its name in the results, durability, the authority's decisions)
RUNS = (("process", "process", "python"), ("power", "power", "python"),
        ("compiled", "process", "compiled"))


def _in_namespace(seconds: float, durability: str, decisions: str) -> dict:
    out = subprocess.run(["unshare", "--net", sys.executable, "-m",
                          "experiments.bench.admission_load", "bench", str(seconds),
                          durability, decisions],
                         capture_output=True, text=True)
    if out.returncode != 0:
        raise RuntimeError(f"the admission benchmark failed: {out.stderr.strip()[-400:]}")
    return json.loads(out.stdout)


def run(seconds: float = 3.0) -> dict:
    """Run the benchmark in a fresh network namespace, once per durability setting (the
    journal's write() alone; write() and fdatasync per batch) with the Python decisions and
    once with the compiled ones, and print the figures side by side."""
    results = {name: _in_namespace(seconds, durability, decisions)
               for name, durability, decisions in RUNS}
    print(f"{'':>22}" + "".join(f"  {f'{d} decisions, {w}':>36}" for _, w, d in RUNS))
    for k, rate in enumerate(RATES):
        cells = [f"{p['answered']}/{p['sent']} p50 {p['p50_ms']:.3f} p99 {p['p99_ms']:.3f}"
                 for n, *_ in RUNS for p in [results[n]["paced"][k]]]
        print(f"offered {rate:>6}/s, ms:" + "".join(f"  {c:>36}" for c in cells))
    print("saturation, decisions per second per core (answered / the authority's CPU s): "
          + ", ".join(f"{n} {results[n]['flood']['decisions_per_cpu_s']:.0f}"
                      for n, *_ in RUNS))
    bare = results["bare_limit"] = barelimit.measure(seconds)
    for name in ("process", "compiled"):
        rate = results[name]["flood"]["decisions_per_cpu_s"]
        print(f"the authority's decisions ({results[name]['decisions']}, durability process): "
              f"{rate:.0f} per CPU second; the bare limit (C on one core: verify, look up, "
              f"sign, nothing else) {bare['per_cpu_second']:.0f}, "
              f"{bare['per_cpu_second'] / rate:.1f} times as many")
    floor = results["io_floor"] = _in_namespace(seconds, "floor", "none")
    compiled = results["compiled"]["flood"]["decisions_per_cpu_s"]
    print(f"the compiled path's datagram I/O alone (C: poll, recvmmsg, one journal write(), "
          f"answers by UDP GSO; nothing checked or decided), offered the same flood: "
          f"{floor['per_cpu_second']:.0f} datagrams per CPU second, "
          f"{floor['system_share']:.0%} of it in the kernel; per request "
          f"{bare['per_cpu_second'] / floor['per_cpu_second']:.1f} times the bare limit's work; "
          f"the compiled authority's whole cost per decision "
          f"{floor['per_cpu_second'] / compiled:.2f} times the I/O alone's")
    for name, *_ in RUNS:
        result = results[name]
        print(f"admission log ({name}): {result['logged']} rows for "
              f"{result['answered_total']} answered requests (each decision is in the journal "
              "before it is answered; a decision whose answer was lost is logged too)")
    return results


def generate(config: dict, rate: int, seconds: float) -> dict:
    """Load from inside the emulation (the latency experiment's sweep): requests for
    addresses nobody is bound to, each a full check, decision and log record."""
    generator = Generator(Key(bytes.fromhex(config["key"])),
                          [0xC613FF00 + k for k in range(1, 255)], config["address"],
                          config["authority"], config["gateway"])
    result = generator.paced(rate, seconds) if rate else PhaseResult(0, 0, 0, None, None)
    return vars(result)


if __name__ == "__main__":
    if sys.argv[1] == "generate":  # the configuration, with the gateway's key, on stdin
        print(json.dumps(generate(json.loads(sys.stdin.read()), int(sys.argv[2]),
                                  float(sys.argv[3]))))
    else:
        print(json.dumps(inside_namespace(float(sys.argv[2]), sys.argv[3], sys.argv[4])))
