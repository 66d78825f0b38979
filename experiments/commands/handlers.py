"""What each ``splinterlab`` command does; ``experiments.commands.cli`` parses the command line
and calls these. Bad input raises ``UsageError`` (exit code 2), a machine that lacks something
``EnvironmentProblem`` (exit code 1): one sentence each.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import topologies
from experiments.interface import Experiment
from experiments.registry import COMPARISONS, EXPERIMENTS
from protocols import architectures
from protocols.design import OptionError
from topologies import cleanup, graph, zoo


class UsageError(Exception):
    """Bad command-line input; exit code 2."""


class EnvironmentProblem(Exception):
    """Something missing or broken on this machine; exit code 1."""


def _need_root(what: str) -> None:
    if os.geteuid() != 0:
        raise EnvironmentProblem(f"{what} needs root (it builds network namespaces); run it "
                                 "with sudo")


def _servers(args):
    """``--servers``, parsed (None: this machine alone)."""
    from topologies.placement import parse_servers

    return parse_servers(args.servers) if getattr(args, "servers", None) else None


# -- commands --------------------------------------------------------------------------------
def cmd_doctor(args) -> int:
    from experiments.commands import doctor

    return doctor.run(args.cluster)


def cmd_cluster_check(args) -> int:
    from experiments.commands import cluster

    _need_root("splinterlab cluster check")
    return cluster.check([s.name for s in _servers(args)])


def cmd_testbed(args) -> int:
    from experiments.commands import cluster

    _need_root("splinterlab cluster testbed")
    return cluster.bed_up(args.servers) if args.action == "up" else cluster.bed_down()


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
    for line in cleanup.clean(args.run).lines():
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


OSPF_FLAGS = ("hello", "dead", "hello_multiplier", "bfd")  # OspfSettings' fields, as flags


def architecture_options(args) -> dict:
    """Architecture settings from the command line, checked before anything is built."""
    from protocols import censor, ospf

    ospf_flags = {k: getattr(args, k) for k in OSPF_FLAGS
                  if getattr(args, k) not in (None, False)}
    design = architectures.design(args.arch)
    if not design.routing and (ospf_flags or args.censor):
        raise UsageError("--hello, --dead, --hello-multiplier, --bfd and --censor apply to "
                         f"the OSPF architectures, not to {design.name}")
    given = {o: getattr(args, o.name) for d in architectures.DESIGNS for o in d.options
             if getattr(args, o.name, None) is not None}
    foreign = [o.flag for o in given if o not in design.options]
    if foreign:
        takes = [d.name for d in architectures.DESIGNS if set(given) & set(d.options)]
        raise UsageError(f"{', '.join(foreign)} appl{'y' if len(foreign) > 1 else 'ies'} to "
                         f"{', '.join(takes)}, not to {design.name}")
    options: dict = {"ospf": ospf.OspfSettings(**ospf_flags)} if design.routing else {}
    try:
        options.update(design.checked({o.name: v for o, v in given.items()}))
    except OptionError as e:
        raise UsageError(str(e)) from None
    if args.censor and not design.border_censor:
        raise UsageError(f"--censor is the permissionless border censor; {design.name} "
                         "has its own operator commands")
    if args.censor:
        policy = censor.CensorPolicy.load(Path(args.censor))
        censor.check(policy, topologies.build(args.topo))
        options["censor"] = policy
    return options


def cmd_designs(args) -> int:
    """What ``--arch`` takes: each design's name, what it is, its settings."""
    for d in architectures.DESIGNS:
        if args.names:
            print(d.name)
            continue
        print(f"{d.name:<15} {d.summary}{'' if d.compared else ' [not in run all]'}")
        for o in d.options:
            print(f"{'':<15}   {o.flag} (default {o.default}): {o.help}")
    return 0


def cmd_up(args) -> int:
    from experiments.commands import console

    options = architecture_options(args)
    architectures.get(args.arch, **options)  # unknown architecture: say so before asking for root
    servers = _servers(args)
    _need_root("splinterlab up")
    return console.up(args.topo, args.arch, args.backend, args.test, options, servers)


def lab_options(args) -> dict[str, dict]:
    """``lab``'s designs (``all``: those compared; or names joined by commas), each with the
    settings it takes of those given (checked as ``up`` checks them); a setting that none of
    them takes is refused."""
    import argparse

    from experiments.paired import ALL

    archs = architectures.compared() if args.arch == ALL else \
        tuple(dict.fromkeys(a for a in args.arch.split(",") if a))
    if not archs:
        raise UsageError(f"--arch takes {ALL} or designs joined by commas")
    for a in archs:
        architectures.design(a)  # an unknown one is named before root is asked for
    flags = {o.name: o.flag for d in architectures.DESIGNS for o in d.options}
    flags |= {k: "--" + k.replace("_", "-") for k in (*OSPF_FLAGS, "censor")}
    given = {k for k in flags if getattr(args, k, None) not in (None, False)}

    def takes(arch: str) -> set[str]:
        d = architectures.design(arch)
        return {o.name for o in d.options} | (set(OSPF_FLAGS) if d.routing else set()) | \
            ({"censor"} if d.border_censor else set())

    unused = sorted(flags[k] for k in given - set().union(*map(takes, archs)))
    if unused:
        raise UsageError(f"{', '.join(unused)}: none of {', '.join(archs)} takes it")
    return {a: architecture_options(argparse.Namespace(**{
        **vars(args), **{k: None for k in given - takes(a)}, "arch": a})) for a in archs}


def cmd_lab(args) -> int:
    from experiments.web import front

    options = lab_options(args)
    topologies.build(args.topo)  # a wrong spec is said before any panel starts
    _need_root("splinterlab lab")
    return front.serve(args.topo, tuple(options), options, args.backend, args.port)


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
    from experiments import runs

    try:
        return runs.experiment(name)
    except ValueError as e:
        raise UsageError(str(e)) from None


def cmd_run(args) -> int:
    from experiments import runs

    if args.experiment == "all":
        chosen = [EXPERIMENTS[name] for name in COMPARISONS]
    else:
        chosen = [_experiment(args.experiment)]
    try:  # every one checked before any runs (or root is asked for)
        configs = [runs.configure(e, args.topo, args.arch, args.profile, args.seed,
                                  args.backend, args.name or "", args.servers or "")
                   for e in chosen]
    except ValueError as e:
        raise UsageError(str(e)) from None
    if any(e.emulated for e in chosen):
        _need_root("splinterlab run")
    topo = args.topo or topologies.DEFAULT
    out = Path(args.out) if args.out else None
    made = {}
    for experiment, config in zip(chosen, configs, strict=True):
        try:
            directory = made[experiment.name] = experiment.run(config, out)
        except KeyboardInterrupt:
            print(f"splinterlab: {experiment.name} interrupted; what was measured is kept in "
                  "the results directory", file=sys.stderr)
            raise
        for path in experiment.plot(directory):
            print(f"{experiment.name}: {path}")
        print(f"{experiment.name}: results in {directory}")
    from experiments.comparisons import scorecard

    if set(scorecard.SOURCES) <= set(made):
        directory = scorecard.write({e: made[e] for e in scorecard.SOURCES},
                                    args.name or made["latency"].name, topo, out)
        print(f"scorecard: results in {directory}")
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
                               out=Path(args.out) if args.out else study.STUDY_ROOT,
                               servers=args.servers or "")
    _servers(args)  # understood before anything runs
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
    from experiments.comparisons import scorecard, study
    from experiments.publish.regenerate import SUITE
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
            if is_benchmark(meta) or meta["experiment"] == SUITE:
                continue  # a benchmark's figures, the suite's counts: tables in the README
            drawn = (scorecard.redraw(directory) if meta["experiment"] == scorecard.NAME
                     else _experiment(meta["experiment"]).plot(directory))
            for path in drawn:
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
    if args.servers and args.what != "cluster":
        raise UsageError(f"bench {args.what} runs on this machine alone (only bench cluster "
                         "takes --servers)")
    _servers(args)  # refused in one sentence before anything starts
    _need_root(f"splinterlab bench {args.what}")
    from experiments.bench import bringup as bench

    if args.what == "cluster":  # built on bench scale: refused before anything is recorded
        from experiments.bench import cluster
        from experiments.results import ResultsError

        try:
            cluster.carried()
        except ResultsError as e:
            raise UsageError(f"{e} (run splinterlab bench scale first)") from None
    return bench.run(args)




def cmd_results(args) -> int:
    """make results: every published result regenerated at this clean commit, then the
    README's blocks redrawn from them."""
    from experiments.publish import readme, refresh, regenerate

    _need_root("make results")
    try:
        if args.refresh:
            refresh.refresh(args.refresh)
            published = regenerate.PUBLISHED
        else:
            published = regenerate.regenerate(args.only or None)
    except regenerate.RegenerateError as e:
        raise UsageError(str(e)) from None
    if published == regenerate.PUBLISHED:
        readme.README.write_text(readme.render(readme.README.read_text(), published))
        try:
            regenerate.verify_published()
        except regenerate.RegenerateError as e:
            raise UsageError(str(e)) from None
        print("make results: README.md redrawn; commit with: git add -A docs/results README.md "
              "&& git commit")
    return 0


def cmd_readme(args) -> int:
    """Redraw the README's rendered blocks from docs/results, or (--check) say which differ."""
    from experiments.publish import readme, regenerate

    root = Path(args.results) if args.results else regenerate.PUBLISHED
    path = Path(args.readme) if args.readme else readme.README
    try:
        text = path.read_text()
        if args.check:
            stale = readme.differences(text, root)
            for name in stale:
                print(f"README block {name!r} differs from what {root} renders")
            print(f"{len(readme.names(text)) - len(stale)} of {len(readme.names(text))} "
                  "README blocks are what the results render")
            return 1 if stale else 0
        path.write_text(readme.render(text, root))
    except (readme.RenderError, OSError) as e:
        raise UsageError(str(e)) from None
    print(f"{path}: {len(readme.names(text))} blocks redrawn from {root}")
    return 0
