"""Every command the code runs is in scripts/requirements.txt, so that setup installs it and
doctor checks it: a minimal Debian image lacks most of them (it had no sysctl)."""

from __future__ import annotations

import re
from pathlib import Path

from experiments.commands import doctor

PROJECT = Path(__file__).resolve().parent.parent
# what every Debian has (Essential: yes), and what the project builds or ships itself
ESSENTIAL = {"cat", "sleep", "kill", "env", "true", "bash", "sh", "date", "ls", "mount",
             "umount"}
RUN = re.compile(r'(?:\bexec|\bpopen|subprocess\.(?:run|Popen|check_output|call))\('
                 r'(?:(?:[\w.\[\]]+|"[\w-]+"), )?\[?"([a-z/][\w./-]*)"')


def commands_run() -> dict[str, str]:
    """command -> a file that runs it, from calls such as net.exec(node, "sysctl", ...) and
    subprocess.run(["unshare", ...])."""
    found = {}
    for path in [*PROJECT.glob("topologies/**/*.py"), *PROJECT.glob("protocols/**/*.py"),
                 *PROJECT.glob("experiments/**/*.py")]:
        for command in RUN.findall(path.read_text()):
            found.setdefault(command.rsplit("/", 1)[-1], str(path.relative_to(PROJECT)))
    return found


def test_the_scan_sees_the_commands_it_must():
    """The check itself: it finds commands known to be run (sysctl was what a minimal image
    lacked)."""
    assert {"sysctl", "ip", "nft", "unshare", "iptables-restore"} <= set(commands_run())


def test_every_command_run_is_installed_by_setup_and_checked_by_doctor():
    known = doctor.requirements()
    missing = {c: where for c, where in commands_run().items()
               if c not in known and c not in ESSENTIAL}
    assert not missing, f"add to scripts/requirements.txt: {missing}"


def test_every_package_named_is_a_package_line(tmp_path):
    table = tmp_path / "requirements.txt"
    table.write_text("# comment\nprocps   sysctl ps\nlibc6-dev  -\n")
    assert doctor.requirements(table) == {"sysctl": "procps", "ps": "procps"}
