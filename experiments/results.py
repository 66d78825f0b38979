"""Results directories: what every experiment writes, and the only thing its plots read.

    results/<experiment>/<run-name>/
        topology.json    the graph used (networkx node-link), hosts and routers included
        records/         per registered-access network: registry.db (SQLite, keys and
                         enrolment secrets removed) and admissions.csv, the admission log
        results.json     summary figures
        *.csv            one row per probe, appended as measured (an interrupted run keeps
                         everything measured so far)
        meta.json        scenario, git commit, kernel, delay backend, seed, versions of FRR,
                         Mininet and Python, start and end time, status
        *.png, *.svg     the plots

Reading needs neither root nor Mininet: ``load`` checks that a directory is one of ours and
names what is wrong in one sentence otherwise.
"""

from __future__ import annotations

import contextlib
import csv
import gzip
import io
import json
import os
import platform
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import networkx as nx

from topologies import graph as graphs

RESULTS_ROOT = Path("results")


class ResultsError(ValueError):
    """A directory that is not (or not yet) a complete splinterlab results directory."""


def _first_line(argv: list[str]) -> str:
    try:
        out = subprocess.run(argv, capture_output=True, text=True, timeout=10)
        return (out.stdout or out.stderr).strip().splitlines()[0]
    except (OSError, IndexError, subprocess.SubprocessError):
        return "unknown"


def versions() -> dict:
    try:
        from mininet.net import VERSION as mininet_version
    except ImportError:
        mininet_version = "unknown"
    return {"python": sys.version.split()[0], "mininet": mininet_version,
            "frr": _first_line(["/usr/lib/frr/zebra", "--version"]),
            "kernel": platform.release()}


DIRTY = "+uncommitted changes"


def git_commit() -> str:
    """The commit the code ran at, marked when the tree had changes of its own (results that
    ``make results`` publishes must name a clean commit)."""
    here = Path(__file__).resolve().parent.parent
    commit = _first_line(["git", "-C", str(here), "rev-parse", "HEAD"])
    dirty = subprocess.run(["git", "-C", str(here), "status", "--porcelain"],
                           capture_output=True, text=True).stdout.strip()
    return commit + (DIRTY if dirty else "")


class CsvLog:
    """Rows written and flushed one by one."""

    def __init__(self, path: Path, header: list[str]):
        self.header = header
        self.file = open(path, "a", newline="")  # noqa: SIM115 - lives as long as the run
        self.writer = csv.writer(self.file)
        if path.stat().st_size == 0:
            self.writer.writerow(header)

    def row(self, **values) -> None:
        self.writer.writerow([values.get(h, "") for h in self.header])
        self.file.flush()

    def close(self) -> None:
        self.file.close()


class GzipCsv:
    """Rows appended in batches to a gzip-compressed CSV (one gzip member per batch): for
    records too long to keep as text, such as every datagram of a stream."""

    def __init__(self, path: Path, header: list[str]):
        self.path, self.header = path, header

    def rows(self, rows: list[dict]) -> None:
        new = not self.path.exists()
        with gzip.open(self.path, "at", newline="") as f:
            writer = csv.writer(f)
            if new:
                writer.writerow(self.header)
            writer.writerows([row.get(h, "") for h in self.header] for row in rows)


class RunWriter:
    """Creates ``<out>/<experiment>/<name>/`` and writes into it."""

    def __init__(self, experiment: str, config, out: Path | None = None):
        self.experiment = experiment
        name = config.name or f"{time.strftime('%Y%m%d-%H%M%S')}-{config.topo.replace(':', '_')}"
        self.dir = (out or RESULTS_ROOT) / experiment / name.replace("/", "_").replace(",", "_")
        self.dir.mkdir(parents=True, exist_ok=True)
        self.logs: list[CsvLog] = []
        self.networks: dict[str, int] = {}
        self._meta = {"experiment": experiment, "scenario": _plain(vars(config)),
                      "seed": getattr(config, "seed", None), "git_commit": git_commit(),
                      "versions": versions(), "start": time.time(), "status": "running",
                      "host": platform.node(), "user": os.environ.get("SUDO_USER", "")}
        self.meta()

    def topology(self, g: nx.Graph) -> None:
        graphs.save(g, self.dir / "topology.json")

    def subjects(self, chosen) -> None:
        """Whom and what the experiment acts on (``experiments.subjects``), for the reader."""
        self.meta(subjects=chosen.describe())

    def records_dir(self, arch: str) -> Path:
        """A fresh directory for what one network of ``arch`` recorded."""
        self.networks[arch] = self.networks.get(arch, 0) + 1
        return self.dir / "records" / f"{arch}-{self.networks[arch]}"

    def csv(self, name: str, header: list[str]) -> CsvLog:
        log = CsvLog(self.dir / f"{name}.csv", header)
        self.logs.append(log)
        return log

    def meta(self, **fields) -> None:
        self._meta.update(_plain(fields))
        _write_json(self.dir / "meta.json", self._meta)

    def results(self, data: dict) -> None:
        _write_json(self.dir / "results.json", _plain(data))

    def network(self, arch: str, net, architecture) -> None:
        """Record how the network of ``arch`` was emulated (backend, calibration, the delay
        path's punctuality) and configured."""
        self.meta(delay_backend=net.backend, **{f"{arch}_emulation": net.describe(),
                                                f"{arch}_settings": architecture.describe()})

    @contextlib.contextmanager
    def session(self, final):
        """Around a run: whatever happens, write ``final()`` as results.json and close the
        directory as complete, or as interrupted with everything measured so far."""
        status = "interrupted"
        try:
            yield
            status = "complete"
        finally:
            self.results(final())
            self.finish(status)

    def finish(self, status: str) -> None:
        for log in self.logs:
            log.close()
        self.meta(status=status, end=time.time())
        if os.environ.get("SUDO_UID"):  # results belong to the person who ran sudo
            uid, gid = int(os.environ["SUDO_UID"]), int(os.environ.get("SUDO_GID", "0"))
            for path in [self.dir.parent.parent, self.dir.parent, self.dir,
                         *self.dir.rglob("*")]:
                with contextlib.suppress(OSError):
                    os.chown(path, uid, gid)


@dataclass
class Results:
    dir: Path
    meta: dict
    summary: dict

    def topology(self) -> nx.Graph:
        if not exists(self.dir / "topology.json"):
            raise ResultsError(f"{self.dir} has no topology.json")
        return graphs.from_json(json.loads(read_text(self.dir / "topology.json")))

    def rows(self, name: str) -> list[dict]:
        path = self.dir / f"{name}.csv"
        if not exists(path):
            raise ResultsError(f"{self.dir} has no {name}.csv; it is incomplete")
        return rows(path)


def exists(path: Path) -> bool:
    return path.exists() or _compressed(path).exists()


def read_text(path: Path) -> str:
    """A results file's text, or that of its gzip-compressed copy: published samples keep
    their large files compressed (``experiments.publish.regenerate.thin``)."""
    if not path.exists() and _compressed(path).exists():
        return gzip.decompress(_compressed(path).read_bytes()).decode()
    return path.read_text()


def rows(path: Path) -> list[dict]:
    return list(csv.DictReader(io.StringIO(read_text(path), newline="")))


def _compressed(path: Path) -> Path:
    return path.with_name(path.name + ".gz")


def _read_json(path: Path, missing: str):
    try:
        return json.loads(read_text(path))
    except FileNotFoundError:
        raise ResultsError(missing) from None
    except ValueError:
        raise ResultsError(f"{path} is not valid JSON") from None


PROJECT = Path(__file__).resolve().parent.parent
SEARCHED = (PROJECT / "results", PROJECT / "docs" / "results")  # this machine's, the published


def newest(pattern: str, key: str, roots: tuple[Path, ...] = SEARCHED,
           usable=lambda figures: True) -> tuple[dict, Path]:
    """The figures (results.json) of the newest complete result matching ``pattern`` under
    ``roots`` that hold ``key`` (and are ``usable``), and their path (relative to the project
    where it lies in it): a model or benchmark built on another benchmark's figures takes the
    newest of this machine's own and the published."""
    found = []
    for root in roots:
        for path in root.glob(f"**/{pattern}/results.json"):
            meta = json.loads(read_text(path.parent / "meta.json"))
            figures = json.loads(read_text(path))
            if meta.get("status") == "complete" and key in figures and usable(figures):
                found.append((meta.get("end", 0), str(path), figures))
    if not found:
        raise ResultsError(f"no complete {pattern} result with {key} that serves under "
                           f"{' or '.join(str(r) for r in roots)}")
    _, path, figures = max(found, key=lambda f: f[:2])
    found_at = Path(path)
    return figures, found_at.relative_to(PROJECT) if found_at.is_relative_to(PROJECT) else found_at


def load(directory: Path, experiment: str | None = None) -> Results:
    if not directory.is_dir():
        raise ResultsError(f"{directory} is not a directory")
    meta = _read_json(directory / "meta.json",
                      f"{directory} is not a splinterlab results directory (no meta.json)")
    if not isinstance(meta, dict) or "experiment" not in meta:
        raise ResultsError(f"{directory}/meta.json does not come from splinterlab")
    if experiment and meta["experiment"] != experiment:
        raise ResultsError(f"{directory} holds {meta['experiment']} results, not {experiment}")
    summary = _read_json(directory / "results.json", f"{directory} has no results.json (the "
                         "run was interrupted before its first summary)")
    return Results(directory, meta, summary)


def frames(directory: Path | str, table: str | None = None):
    """A results directory's tables (its CSV files, compressed or not) as pandas DataFrames:
    ``table`` by name, or every one in a dict by name (``splinterlab.results``)."""
    import pandas as pd

    found = load(Path(directory))
    names = sorted({p.name.removesuffix(".gz").removesuffix(".csv")
                    for p in found.dir.glob("*.csv*")})
    if table is not None and table not in names:
        raise ResultsError(f"{found.dir} has no table {table!r}; it has "
                           f"{', '.join(names) or 'none'}")

    def frame(name: str):
        return pd.read_csv(io.StringIO(read_text(found.dir / f"{name}.csv")))
    return frame(table) if table is not None else {n: frame(n) for n in names}


def find(paths: list[Path]) -> list[Path]:
    """Every results directory at or under ``paths`` (default: results/)."""
    found = []
    for path in paths or [RESULTS_ROOT]:
        try:
            if (path / "meta.json").exists():
                found.append(path)
            elif path.is_dir():
                found += sorted(p.parent for p in path.rglob("meta.json"))
            else:
                raise ResultsError(f"{path} does not exist")
        except PermissionError:
            raise ResultsError(f"cannot read {path}: permission denied") from None
    return sorted(set(found))


def _plain(value):
    """JSON-friendly copy: tuples to lists, dataclasses and paths to plain values."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set):
        return [_plain(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    if hasattr(value, "__dataclass_fields__"):
        return _plain(vars(value))
    return value


def _write_json(path: Path, data) -> None:
    """meta.json is for people (indented); figures are compact (published samples stay
    small)."""
    tmp = path.with_suffix(".tmp")
    layout = {"indent": 1} if path.name == "meta.json" else {"separators": (",", ":")}
    tmp.write_text(json.dumps(data, default=str, **layout))
    tmp.replace(path)
