"""The command line's answers to bad input: one sentence, the right exit code, no traceback."""

from __future__ import annotations

import os

import pytest

from experiments.commands import cli
from experiments.probing import probes
from protocols import architectures


def run(capsys, *argv):
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_unknown_topology_points_to_topo_list(capsys):
    code, _, err = run(capsys, "topo", "show", "nosuch")
    assert code == 2
    assert err.strip() == ("splinterlab: there is no topology 'nosuch'; 'splinterlab topo list' "
                           "shows the valid names")


def test_malformed_parameter_is_a_usage_error(capsys):
    code, _, err = run(capsys, "topo", "show", "isp,hosts=lots")
    assert code == 2 and err.count("\n") == 1 and "hosts" in err


def test_unknown_command_is_a_usage_error(capsys):
    code, _, err = run(capsys, "frobnicate")
    assert code == 2 and err.startswith("splinterlab: argument command: invalid choice")


@pytest.mark.parametrize("argv", [["up"], ["lab"], ["fidelity"], ["clean"], ["bench", "bringup"]])
def test_root_commands_say_so_without_root(capsys, monkeypatch, argv):
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    code, _, err = run(capsys, *argv)
    assert code == 1 and "needs root" in err and "sudo" in err


@pytest.mark.parametrize("command", ["up", "lab"])
def test_unknown_architecture_is_a_usage_error(capsys, monkeypatch, command):
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    code, _, err = run(capsys, command, "--arch", "nope", "--topo", "line")
    assert code == 2 and "no architecture 'nope'" in err


def test_lab_gives_each_design_the_settings_it_takes(capsys, monkeypatch):
    from experiments.commands.cli import build_parser
    from experiments.commands.handlers import lab_options

    options = lab_options(build_parser().parse_args(["lab", "--ttl", "500", "--hello", "2"]))
    assert tuple(options) == architectures.compared()
    assert options["registered"]["ttl_ms"] == 500 and "ttl_ms" not in options["permissionless"]
    assert options["permissionless"]["ospf"].hello == options["sovereign"]["ospf"].hello == 2
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    code, _, err = run(capsys, "lab", "--arch", "permissionless,sovereign", "--ttl", "500")
    assert code == 2 and err.strip() == ("splinterlab: --ttl: none of permissionless, "
                                         "sovereign takes it")


def test_topo_show_writes_a_png(capsys, tmp_path):
    out = tmp_path / "isp.png"
    code, text, _ = run(capsys, "topo", "show", "isp", "--out", str(out))
    assert code == 0 and out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "diameter: 5 hops" in text


def test_topo_show_into_a_missing_directory(capsys, tmp_path):
    code, _, err = run(capsys, "topo", "show", "isp", "--out", str(tmp_path / "no" / "a.png"))
    assert code == 2 and "does not exist" in err


def test_topo_list_names_every_builder(capsys):
    code, out, _ = run(capsys, "topo", "list")
    assert code == 0
    for name in ("isp", "line", "ring", "star", "zoo:<Name>"):
        assert name in out


def test_parse_ping_reads_iputils_output():
    out = ("3 packets transmitted, 2 received, 33.3333% packet loss, time 2003ms\n"
           "rtt min/avg/max/mdev = 1.100/1.250/1.400/0.150 ms\n")
    r = probes.parse_ping("h1", "h2", 3, out)
    assert (r.received, r.rtt_ms, r.ok) == (2, 1.25, True)
    assert not probes.parse_ping("h1", "h2", 1, "1 packets transmitted, 0 received").ok


@pytest.mark.parametrize("argv, words", [
    (["up", "--arch", "permissionless", "--hello", "5", "--dead", "3"], "must exceed hello"),
    (["up", "--arch", "static", "--bfd"], "apply to the OSPF architectures"),
    (["up", "--arch", "nope"], "no architecture 'nope'"),
    (["up", "--arch", "registered", "--ttl", "50"], "--ttl must be a whole number from 100"),
    (["up", "--arch", "permissionless", "--ttl", "5000"], "--ttl applies to registered, not"),
    (["up", "--arch", "static", "--fail-mode", "open"], "--fail-mode applies to registered"),
    (["run", "latency", "--arch", "nope"], "invalid choice: 'nope'"),
])
def test_bad_architecture_settings_are_usage_errors(capsys, argv, words):
    code, _, err = run(capsys, *argv)
    assert code == 2 and words in err and err.count("\n") == 1


def test_designs_lists_what_arch_takes(capsys):
    """Scripts (make distrotest) loop over ``designs --names``: every design, nothing else."""
    from protocols import architectures

    code, out, _ = run(capsys, "designs", "--names")
    assert code == 0 and tuple(out.split()) == architectures.names()
    code, out, _ = run(capsys, "designs")
    assert code == 0 and "--ttl (default 30000)" in out


def test_censor_policy_naming_an_unknown_site(capsys, tmp_path):
    policy = tmp_path / "p.toml"
    policy.write_text('block_names = ["nowhere.example"]\n')
    code, _, err = run(capsys, "up", "--censor", str(policy))
    assert code == 2 and "unknown site 'nowhere.example'" in err


@pytest.mark.needs_root
def test_pingall_checks_every_pair_of_users_under_registered_access(capsys):
    """The README's first check, under the design that closes the authority to hosts: every
    user pair answers, and the authority site is not counted as a user."""
    assert cli.main(["up", "--topo", "isp", "--arch", "registered", "--test", "pingall"]) == 0
    out = capsys.readouterr().out
    assert "306/306 pairs reachable" in out, out[-500:]


def test_the_lab_keeps_its_own_commands_where_an_operator_command_has_the_same_name():
    """`restore c2` brings a router back (the README's lab); the operator's `restore` (every
    block and shutdown lifted) stays reachable as `operator restore`."""
    from experiments.commands import operator_cli
    from experiments.commands.console import SplinterCLI

    assert "router" in SplinterCLI.do_restore.__doc__
    assert "restore" in operator_cli.COMMANDS
    for name in operator_cli.COMMANDS:
        assert hasattr(SplinterCLI, f"do_{name}"), name
