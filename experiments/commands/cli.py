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
from experiments import runs
from experiments.commands import handlers as h
from experiments.commands.handlers import EnvironmentProblem, UsageError
from experiments.paired import ALL
from experiments.registry import COMPARISONS, EXPERIMENTS
from protocols import architectures
from protocols.architectures import UnknownArchitecture
from protocols.censor import CensorError
from protocols.ospf import RoutingError
from topologies.graph import DEFAULT_SEED, TopologyError
from topologies.network import NetworkError


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one sentence instead of argparse's usage dump
        raise UsageError(f"{message}; see '{self.prog} --help'")


class Terminated(BaseException):
    """SIGTERM/SIGHUP: unwind through every teardown. Not a KeyboardInterrupt, which Mininet's
    CLI would swallow to keep its prompt."""


def _terminate(signum, frame):
    raise Terminated(signum)


# -- parser ----------------------------------------------------------------------------------
def _network_options(s, several: bool = False) -> None:
    """What ``up`` and ``lab`` bring up: the topology, the design (``several``: designs side
    by side), its routing and settings."""
    s.add_argument("--topo", default=topologies.DEFAULT)
    if several:
        s.add_argument("--arch", default=ALL, help=f"{ALL} (every design compared, side by "
                       f"side) or designs joined by commas, of {', '.join(architectures.names())}")
    else:
        s.add_argument("--arch", default=architectures.BASELINE,
                       help=f"one of {', '.join(architectures.names())}")
    s.add_argument("--backend", default="auto", choices=["auto", "netem", "userspace"])
    s.add_argument("--hello", type=int, help="OSPF hello interval, s (default 1)")
    s.add_argument("--dead", type=int, help="OSPF dead interval, s (default 3)")
    s.add_argument("--hello-multiplier", type=int, metavar="N",
                   help="OSPF fast hellos: N hellos a second, dead after 1 s")
    s.add_argument("--bfd", action="store_true", help="BFD on router links (100 ms x 3)")
    s.add_argument("--censor", metavar="POLICY.toml", help="border censor policy "
                   "(permissionless): block_addresses, block_names, block_keywords, cut_border")
    _design_options(s)


def _servers_option(s) -> None:
    s.add_argument("--servers", metavar="A,B[:ROUTERS],...", help="spread the network over "
                   "these machines (localhost: this one; others by ssh as root), as few links "
                   "between them as can be; 'splinterlab cluster check' first")


def _design_options(s) -> None:
    """Every design's own settings, as each design declares them (default None: a flag given
    to a design that does not take it is refused)."""
    for design in architectures.DESIGNS:
        for o in design.options:
            s.add_argument(o.flag, dest=o.name, default=None, choices=o.choices or None,
                           type=None if o.choices else type(o.default),
                           metavar=None if o.choices else o.unit.upper() or "N",
                           help=f"{o.help} ({design.name}; default {o.default})")

def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="splinterlab", description="Compare a permissionless IP network with a "
                "registered-access network on one emulated network.")
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)

    s = sub.add_parser("doctor", help="check what this machine has and lacks")
    s.add_argument("--cluster", action="store_true",
                   help="also require what a server of a network spanning machines needs")
    s.set_defaults(func=h.cmd_doctor)

    cluster = sub.add_parser("cluster", help="networks spanning several servers")
    csub = cluster.add_subparsers(dest="cluster_command", required=True, parser_class=_Parser)
    s = csub.add_parser("check", help="what each server lacks, one sentence each")
    s.add_argument("servers", help="e.g. localhost,198.19.254.11 (as --servers takes them)")
    s.set_defaults(func=h.cmd_cluster_check)
    s = csub.add_parser("testbed", help="servers as namespaces of this machine, each with "
                        "its own sshd, /run and /tmp")
    s.add_argument("action", choices=["up", "down"])
    s.add_argument("--servers", type=int, default=2, help="how many (default 2)")
    s.set_defaults(func=h.cmd_testbed)

    topo = sub.add_parser("topo", help="list and inspect topologies")
    tsub = topo.add_subparsers(dest="topo_command", required=True, parser_class=_Parser)
    s = tsub.add_parser("list", help="topology names and their parameters")
    s.add_argument("--zoo", action="store_true", help="list every zoo: graph")
    s.set_defaults(func=h.cmd_topo_list)
    s = tsub.add_parser("show", help="summary and drawing of a topology")
    s.add_argument("name", help="topology spec, e.g. isp or zoo:Abilene,hosts=2")
    s.add_argument("--out", help="write a drawing (PNG or SVG)")
    s.set_defaults(func=h.cmd_topo_show)

    s = sub.add_parser("designs", help="the designs splinterlab can bring up, their settings")
    s.add_argument("--names", action="store_true", help="names only, one per line")
    s.set_defaults(func=h.cmd_designs)

    s = sub.add_parser("clean", help="remove everything runs left behind (even after kill -9)")
    s.add_argument("--run", help="only this run's (default: every run's)")
    s.set_defaults(func=h.cmd_clean)

    s = sub.add_parser("fidelity", help="requested vs measured delay, bandwidth, packet rate")
    s.add_argument("--backend", default="auto", choices=["auto", "netem", "userspace"])
    s.add_argument("--out", help="results root (default: results/)")
    s.add_argument("--name", help="results directory name (default: the time)")
    s.set_defaults(func=h.cmd_fidelity)

    s = sub.add_parser("up", help="bring a network up and open the Mininet CLI")
    _network_options(s)
    _servers_option(s)
    s.add_argument("--test", choices=["pingall"], help="run a test instead of the CLI")
    s.set_defaults(func=h.cmd_up)

    s = sub.add_parser("lab", help="bring a network up per design and serve the lab's page "
                       "on 127.0.0.1")
    _network_options(s, several=True)
    s.add_argument("--port", type=int, default=0, help="default: any free port")
    s.set_defaults(func=h.cmd_lab)

    s = sub.add_parser("operator", help="operator commands for a running registered network")
    s.add_argument("--run", help="run id (default: the running one)")
    s.add_argument("words", nargs="*", help="e.g. revoke h3, block news.abroad.example, "
                   "shutdown north --allow gov.home.example, log 20")
    s.set_defaults(func=h.cmd_operator)

    s = sub.add_parser("run", help="run an experiment (both architectures, paired)")
    s.add_argument("experiment", help=f"{', '.join(EXPERIMENTS)}, or all (the emulated "
                   "comparisons)")
    s.add_argument("--topo", help=f"topology spec (default {topologies.DEFAULT})")
    s.add_argument("--arch", default=ALL, choices=[ALL, *architectures.compared()])
    s.add_argument("--profile", default=runs.PROFILE,
                   help="quick: minutes; full: more of everything, repetitions and CIs; "
                        "iot also has burst (its gateway's bottleneck)")
    s.add_argument("--seed", type=int, default=DEFAULT_SEED)
    s.add_argument("--out", help="results root (default: results/)")
    s.add_argument("--name", help="results directory name under <out>/<experiment>/ (default: "
                   "the time and topology)")
    s.add_argument("--backend", default="auto", choices=["auto", "netem", "userspace"])
    _servers_option(s)
    s.set_defaults(func=h.cmd_run)

    s = sub.add_parser("study", help="one experiment over many ISP graphs, figures across "
                       "them (resumable)")
    s.add_argument("experiment", help=", ".join(COMPARISONS))
    s.add_argument("topos", nargs="*", metavar="TOPO", help="topology specs (default: the "
                   "dozen zoo graphs listed in the README)")
    s.add_argument("--profile", default="quick", choices=["quick", "full"])
    s.add_argument("--seed", type=int, default=DEFAULT_SEED)
    s.add_argument("--out", help="study root (default: results/study/)")
    s.add_argument("--backend", default="auto", choices=["auto", "netem", "userspace"])
    s.add_argument("--plot-only", action="store_true",
                   help="redraw the figures from what has run (no root needed)")
    _servers_option(s)
    s.set_defaults(func=h.cmd_study)

    s = sub.add_parser("plot", help="redraw plots from results (needs neither root nor Mininet)")
    s.add_argument("dirs", nargs="*", help="results directories (default: everything under "
                   "results/)")
    s.set_defaults(func=h.cmd_plot)

    s = sub.add_parser("results", help="regenerate every published result at this clean "
                       "commit (make results; resumable)")
    which = s.add_mutually_exclusive_group()
    which.add_argument("--only", nargs="*", metavar="STEP", help="run only these steps (the rest "
                       "stays to do; publishing waits for every step)")
    which.add_argument("--refresh", nargs="+", metavar="STEP", help="re-measure only these steps "
                       "at this later clean commit and replace their published results (the README "
                       "says which figures are newer)")
    s.set_defaults(func=h.cmd_results)

    s = sub.add_parser("readme", help="redraw the README's figures from docs/results")
    s.add_argument("--check", action="store_true", help="only say which blocks differ")
    s.add_argument("--results", help="results root (default: docs/results)")
    s.add_argument("--readme", help="the README to read (default: README.md)")
    s.set_defaults(func=h.cmd_readme)

    s = sub.add_parser("bench", help="benchmarks that print figures")
    s.add_argument("what", choices=["bringup", "recovery", "admission", "access", "scale",
                                    "lab", "cluster"])
    s.add_argument("graphs", nargs="*", help="scale: zoo graph names to climb (default: a "
                   "ladder from 11 to 161 PoPs; world/europe and other continents go past it)")
    s.add_argument("--topo", default=topologies.DEFAULT)
    s.add_argument("--out", type=Path, help="results root (default: results/)")
    s.add_argument("--name", help="results directory name (default: the time and topology)")
    s.add_argument("--arch", default=ALL, choices=[ALL, *architectures.names()],
                   help="bringup, lab: one architecture, or all")
    s.add_argument("--repeat", type=int, default=3)
    s.add_argument("--servers", help="cluster: the servers to spread --topo over (default: a "
                   "test bed of namespace servers on this machine)")
    s.set_defaults(func=h.cmd_bench)
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
    # Started in the background by a non-interactive shell (a script's '&', nohup, CI), a
    # process inherits SIGINT ignored and Python then raises no KeyboardInterrupt: a run told
    # to stop with SIGINT would go on to its end. SIGINT always interrupts a run.
    signal.signal(signal.SIGINT, signal.default_int_handler)
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
