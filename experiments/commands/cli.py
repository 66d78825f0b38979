"""The ``splinterlab`` command line.

Bad input ends in one sentence on stderr and exit code 2 (usage) or 1 (environment), never a
traceback (set SPLINTERLAB_DEBUG=1 to see one). SIGINT, SIGTERM and SIGHUP unwind through the
same teardown as a normal exit, so an interrupted run leaves nothing behind.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
from pathlib import Path

import topologies
from experiments.interface import Experiment
from experiments.registry import COMPARISONS, EXPERIMENTS
from protocols import architectures
from protocols.architectures import UnknownArchitecture
from protocols.censor import CensorError
from protocols.ospf import RoutingError
from topologies import cleanup, graph, zoo
from topologies.graph import TopologyError
from topologies.network import NetworkError

DEFAULT_TTL_MS = 30_000


class UsageError(Exception):
    """Bad command-line input; exit code 2."""


class EnvironmentProblem(Exception):
    """Something missing or broken on this machine; exit code 1."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one sentence instead of argparse's usage dump
        raise UsageError(f"{message}; see '{self.prog} --help'")


def _need_root(what: str) -> None:
    if os.geteuid() != 0:
        raise EnvironmentProblem(f"{what} needs root (it builds network namespaces); run it "
                                 "with sudo")


class Terminated(BaseException):
    """SIGTERM/SIGHUP: unwind through every teardown. Not a KeyboardInterrupt, which Mininet's
    CLI would swallow to keep its prompt."""


def _terminate(signum, frame):
    raise Terminated(signum)


# -- commands --------------------------------------------------------------------------------
def cmd_doctor(args) -> int:
    from experiments.commands import doctor

    return doctor.run()


def cmd_topo_list(args) -> int:
    if args.zoo:
        print("\n".join(f"zoo:{key.split('/', 1)[1] if key.startswith('topozoo/') else key}"
                        for key in zoo.describe()))
        return 0
    for name, builder in topologies.BUILDERS.items():
        params = ", ".join(f"{k}={v}" for k, v in topologies.parameters(builder).items())
        doc = (builder.__doc__ or "").strip().partition("\n")[0]
        print(f"{name:<6} {doc}\n       parameters: {params}")
    params = ", ".join(f"{k}={v}" for k, v in topologies.parameters(zoo.build).items())
    print(f"zoo:<Name>  any of {len(zoo.describe())} Topology Zoo / SNDlib graphs "
          f"('topo list --zoo')\n       parameters: {params}")
    return 0


def cmd_topo_show(args) -> int:
    g = topologies.build(args.name)
    for line in graph.summarize(g).lines():
        print(line)
    if args.out:
        from topologies.draw import draw

        out = Path(args.out)
        if not out.parent.is_dir():
            raise UsageError(f"cannot write {out}: directory {out.parent} does not exist")
        draw(g, out)
        print(f"drawing written to {out}")
    return 0


def cmd_clean(args) -> int:
    _need_root("splinterlab clean")
    for line in cleanup.clean().lines():
        print(line)
    return 0


def cmd_fidelity(args) -> int:
    _need_root("splinterlab fidelity")
    from experiments.bench import fidelity
    from experiments.bench.record import BenchConfig, recorded

    config = BenchConfig(topo=fidelity.TOPOLOGY, backend=args.backend, name=args.name or "")
    with recorded("fidelity", config, Path(args.out) if args.out else None) as (writer,
                                                                              figures):
        rows, context = fidelity.run(fidelity.FidelityConfig(backend=args.backend))
        figures.update(fidelity.figures(rows, context))
        writer.meta(delay_backend=context["delay_backend"])
        for line in fidelity.table(rows, context):
            print(line)
    return 0 if fidelity.passed(rows) else 1


def architecture_options(args) -> dict:
    """Architecture settings from the command line, checked before anything is built."""
    from protocols import censor, ospf

    ospf_flags = {k: v for k, v in (("hello", args.hello), ("dead", args.dead),
                                    ("hello_multiplier", args.hello_multiplier),
                                    ("bfd", args.bfd)) if v not in (None, False)}
    if args.arch == "static":
        if ospf_flags or args.censor:
            raise UsageError("--hello, --dead, --hello-multiplier, --bfd and --censor apply to "
                             "the OSPF architectures, not to static")
        return {}
    options: dict = {"ospf": ospf.OspfSettings(**ospf_flags)}
    if args.arch == "registered":
        options.update(ttl_ms=args.ttl, fail_mode=args.fail_mode)
    elif args.ttl != DEFAULT_TTL_MS or args.fail_mode != "closed":
        raise UsageError("--ttl and --fail-mode apply to the registered architecture")
    if args.censor:
        if args.arch != "permissionless":
            raise UsageError("--censor is the permissionless border censor; the registered "
                             "architecture has its own operator commands")
        policy = censor.CensorPolicy.load(Path(args.censor))
        censor.check(policy, topologies.build(args.topo))
        options["censor"] = policy
    return options


def cmd_up(args) -> int:
    from experiments.commands import console

    options = architecture_options(args)
    architectures.get(args.arch, **options)  # unknown architecture: say so before asking for root
    _need_root("splinterlab up")
    return console.up(args.topo, args.arch, args.backend, args.test, options)


def cmd_operator(args) -> int:
    from experiments.commands import operator_cli
    from protocols.registered.operator import OperatorError

    if os.geteuid() != 0:
        raise EnvironmentProblem("the authority's console socket belongs to root; use sudo")
    try:
        operator, names = operator_cli.live_run(args.run)
        print(operator_cli.execute(operator, names, args.words))
    except OperatorError as e:
        raise UsageError(str(e)) from None
    return 0


def _experiment(name: str) -> Experiment:
    if name not in EXPERIMENTS:
        raise UsageError(f"there is no experiment {name!r}; choose one of "
                         f"{', '.join(EXPERIMENTS)} or all")
    return EXPERIMENTS[name]


def cmd_run(args) -> int:
    if args.experiment == "all":
        chosen = [EXPERIMENTS[name] for name in COMPARISONS]
    else:
        chosen = [_experiment(args.experiment)]
    if args.seed < 0:
        raise UsageError("--seed must be zero or positive")
    emulated = any(e.emulated for e in chosen)
    if not emulated and args.topo is not None:
        raise UsageError(f"{args.experiment} runs the graph model on its own graph; it takes "
                         "no --topo")
    topo = args.topo or topologies.DEFAULT
    graph = topologies.build(topo) if emulated else None  # bad topology: usage error, early
    configs = []
    for experiment in chosen:
        if experiment.emulated:
            experiment.check(graph)
            config = experiment.config(topo=topo, arch=args.arch, profile=args.profile,
                                       seed=args.seed, backend=args.backend,
                                       name=args.name or "")
        else:
            config = experiment.config(profile=args.profile, seed=args.seed,
                                       name=args.name or "")
        try:
            config.settings()
        except ValueError as e:
            raise UsageError(str(e)) from None
        configs.append(config)
    if emulated:
        _need_root("splinterlab run")
    out = Path(args.out) if args.out else None
    for experiment, config in zip(chosen, configs, strict=True):
        try:
            directory = experiment.run(config, out)
        except KeyboardInterrupt:
            print(f"splinterlab: {experiment.name} interrupted; what was measured is kept in "
                  "the results directory", file=sys.stderr)
            raise
        for path in experiment.plot(directory):
            print(f"{experiment.name}: {path}")
        print(f"{experiment.name}: results in {directory}")
    return 0


def cmd_study(args) -> int:
    from experiments.comparisons import study
    from experiments.results import ResultsError

    experiment = _experiment(args.experiment)
    if not experiment.emulated or not experiment.comparison:
        raise UsageError(f"{experiment.name} is not one of the paired comparisons a study "
                         f"runs over many graphs ({', '.join(COMPARISONS)})")
    config = study.StudyConfig(experiment.name, tuple(args.topos or study.DEFAULT_TOPOLOGIES),
                               profile=args.profile, seed=args.seed, backend=args.backend,
                               out=Path(args.out) if args.out else study.STUDY_ROOT)
    root = study.root(config)
    if not args.plot_only:
        for spec in config.topologies:  # every spec understood before anything runs
            topologies.build(spec)
        _need_root("splinterlab study")
        study.run(config, EXPERIMENTS)
    try:
        paths = study.plot(root)
    except (study.StudyError, ResultsError) as e:
        raise UsageError(str(e)) from None
    for path in paths:
        print(f"study: {path}")
    for spec, why in config.skipped.items():
        print(f"study: {spec} was left out: {why}")
    return 0


def cmd_plot(args) -> int:
    from experiments.bench.record import is_benchmark
    from experiments.comparisons import study
    from experiments.results import RESULTS_ROOT, ResultsError, find, load

    try:
        directories = find([Path(d) for d in args.dirs])
        if not directories:
            raise ResultsError("no results found (run an experiment first: sudo splinterlab "
                               "run all)")
        for directory in directories:
            if not os.access(directory, os.W_OK):
                raise ResultsError(f"cannot write plots into {directory}: it belongs to "
                                   "someone else (copy it, or run as its owner)")
            meta = load(directory).meta
            if is_benchmark(meta):
                continue  # a benchmark's figures are tables, rendered into the README
            for path in _experiment(meta["experiment"]).plot(directory):
                print(path)
        for root in study.roots([Path(d) for d in args.dirs] or [RESULTS_ROOT]):
            for path in study.plot(root):
                print(path)
    except (ResultsError, study.StudyError) as e:
        raise UsageError(str(e)) from None
    return 0


def cmd_bench(args) -> int:
    if args.graphs and args.what != "scale":
        raise UsageError(f"bench {args.what} takes no graph names (only bench scale does)")
    _need_root(f"splinterlab bench {args.what}")
    from experiments.bench import bringup as bench

    return bench.run(args)


# -- parser ----------------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="splinterlab", description="Compare a permissionless IP network with a "
                "registered-access network on one emulated network.")
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)

    s = sub.add_parser("doctor", help="check what this machine has and lacks")
    s.set_defaults(func=cmd_doctor)

    topo = sub.add_parser("topo", help="list and inspect topologies")
    tsub = topo.add_subparsers(dest="topo_command", required=True, parser_class=_Parser)
    s = tsub.add_parser("list", help="topology names and their parameters")
    s.add_argument("--zoo", action="store_true", help="list every zoo: graph")
    s.set_defaults(func=cmd_topo_list)
    s = tsub.add_parser("show", help="summary and drawing of a topology")
    s.add_argument("name", help="topology spec, e.g. isp or zoo:Abilene,hosts=2")
    s.add_argument("--out", help="write a drawing (PNG or SVG)")
    s.set_defaults(func=cmd_topo_show)

    s = sub.add_parser("clean", help="remove everything runs left behind (even after kill -9)")
    s.set_defaults(func=cmd_clean)

    s = sub.add_parser("fidelity", help="requested vs measured delay, bandwidth, packet rate")
    s.add_argument("--backend", default="auto", choices=["auto", "netem", "userspace"])
    s.add_argument("--out", help="results root (default: results/)")
    s.add_argument("--name", help="results directory name (default: the time)")
    s.set_defaults(func=cmd_fidelity)

    s = sub.add_parser("up", help="bring a network up and open the Mininet CLI")
    s.add_argument("--topo", default=topologies.DEFAULT)
    s.add_argument("--arch", default="permissionless",
                   help=f"one of {', '.join(architectures.ARCHITECTURES)}")
    s.add_argument("--backend", default="auto", choices=["auto", "netem", "userspace"])
    s.add_argument("--test", choices=["pingall"], help="run a test instead of the CLI")
    s.add_argument("--hello", type=int, help="OSPF hello interval, s (default 1)")
    s.add_argument("--dead", type=int, help="OSPF dead interval, s (default 3)")
    s.add_argument("--hello-multiplier", type=int, metavar="N",
                   help="OSPF fast hellos: N hellos a second, dead after 1 s")
    s.add_argument("--bfd", action="store_true", help="BFD on router links (100 ms x 3)")
    s.add_argument("--censor", metavar="POLICY.toml", help="border censor policy "
                   "(permissionless): block_addresses, block_names, block_keywords, cut_border")
    s.add_argument("--ttl", type=int, default=DEFAULT_TTL_MS, metavar="MS",
                   help="admission TTL of a grant (registered; default 30000)")
    s.add_argument("--fail-mode", choices=["closed", "open"], default="closed",
                   help="gateways without the authority: drop new flows or let them pass")
    s.set_defaults(func=cmd_up)

    s = sub.add_parser("operator", help="operator commands for a running registered network")
    s.add_argument("--run", help="run id (default: the running one)")
    s.add_argument("words", nargs="*", help="e.g. revoke h3, block news.abroad.example, "
                   "shutdown north --allow gov.home.example, log 20")
    s.set_defaults(func=cmd_operator)

    s = sub.add_parser("run", help="run an experiment (both architectures, paired)")
    s.add_argument("experiment", help=f"{', '.join(EXPERIMENTS)}, or all (the emulated "
                   "comparisons)")
    s.add_argument("--topo", help=f"topology spec (default {topologies.DEFAULT})")
    s.add_argument("--arch", default="both", choices=["both", "permissionless", "registered"])
    s.add_argument("--profile", default="quick",
                   help="quick: minutes; full: more of everything, repetitions and CIs; "
                        "iot also has burst (its gateway's bottleneck)")
    s.add_argument("--seed", type=int, default=1)
    s.add_argument("--out", help="results root (default: results/)")
    s.add_argument("--name", help="results directory name under <out>/<experiment>/ (default: "
                   "the time and topology)")
    s.add_argument("--backend", default="auto", choices=["auto", "netem", "userspace"])
    s.set_defaults(func=cmd_run)

    s = sub.add_parser("study", help="one experiment over many ISP graphs, figures across "
                       "them (resumable)")
    s.add_argument("experiment", help=", ".join(COMPARISONS))
    s.add_argument("topos", nargs="*", metavar="TOPO", help="topology specs (default: the "
                   "dozen zoo graphs listed in the README)")
    s.add_argument("--profile", default="quick", choices=["quick", "full"])
    s.add_argument("--seed", type=int, default=1)
    s.add_argument("--out", help="study root (default: results/study/)")
    s.add_argument("--backend", default="auto", choices=["auto", "netem", "userspace"])
    s.add_argument("--plot-only", action="store_true",
                   help="redraw the figures from what has run (no root needed)")
    s.set_defaults(func=cmd_study)

    s = sub.add_parser("plot", help="redraw plots from results (needs neither root nor Mininet)")
    s.add_argument("dirs", nargs="*", help="results directories (default: everything under "
                   "results/)")
    s.set_defaults(func=cmd_plot)

    s = sub.add_parser("bench", help="benchmarks that print figures")
    s.add_argument("what", choices=["bringup", "recovery", "admission", "access", "scale"])
    s.add_argument("graphs", nargs="*", help="scale: zoo graph names to climb (default: a "
                   "ladder from 11 to 143 PoPs)")
    s.add_argument("--topo", default=topologies.DEFAULT)
    s.add_argument("--out", type=Path, help="results root (default: results/)")
    s.add_argument("--name", help="results directory name (default: the time and topology)")
    s.add_argument("--arch", default="all", help="bringup: one architecture, or all")
    s.add_argument("--repeat", type=int, default=3)
    s.set_defaults(func=cmd_bench)
    return p


def _matplotlib_home() -> None:
    """Matplotlib wants a writable config dir; under sudo or another user, HOME may not be."""
    home = Path(os.environ.get("MPLCONFIGDIR") or Path.home() / ".config" / "matplotlib")
    try:
        home.mkdir(parents=True, exist_ok=True)
        writable = os.access(home, os.W_OK)
    except OSError:
        writable = False
    if not writable:
        import atexit
        import shutil
        import tempfile

        os.environ["MPLCONFIGDIR"] = home = tempfile.mkdtemp(prefix="splinterlab-mpl-")
        atexit.register(shutil.rmtree, home, True)


def main(argv: list[str] | None = None) -> int:
    _matplotlib_home()
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, _terminate)
    debug = bool(os.environ.get("SPLINTERLAB_DEBUG"))
    try:
        args = build_parser().parse_args(argv)
        return args.func(args)
    except (UsageError, TopologyError, UnknownArchitecture, RoutingError, CensorError) as e:
        print(f"splinterlab: {e}", file=sys.stderr)
        return 2
    except (EnvironmentProblem, NetworkError) as e:
        print(f"splinterlab: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("splinterlab: interrupted; everything the run started was removed",
              file=sys.stderr)
        return 130
    except Terminated as e:
        print(f"splinterlab: stopped by signal {e.args[0]}; everything the run started was "
              "removed", file=sys.stderr)
        return 128 + e.args[0]
    except Exception as e:  # a bug: say so in one line, keep the traceback for SPLINTERLAB_DEBUG
        if debug:
            raise
        print(f"splinterlab: internal error {type(e).__name__}: {e} (rerun with "
              "SPLINTERLAB_DEBUG=1 for the traceback)", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
