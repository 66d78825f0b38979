"""``splinterlab cluster``: what each server of a network spanning machines lacks, and a test
bed of namespace servers on this machine.

A server is checked the way a run will use it: ssh as root without a prompt, then its own
``splinterlab doctor --cluster`` run there from the same install path, which must hold the
same code (the install line's fingerprint), the same FRR release and the same uid for frr.
Each problem is one sentence naming the server.
"""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path

from topologies import testbed
from topologies.machines import SSH_CONFIG, Machine, MachineError

PROJECT = Path(__file__).resolve().parents[2]
CODE = ("topologies", "protocols", "experiments")
INSTALL = "install"  # the doctor line naming the code's fingerprint
ALIKE = "alike"  # the doctor line of what else every server must have as this machine has


def fingerprint() -> str:
    """The code a run executes, hashed: every server must run the same."""
    digest = hashlib.sha256()
    for package in CODE:
        for path in sorted((PROJECT / package).rglob("*")):
            if path.suffix in (".py", ".c", ".h", ".html") and "__pycache__" not in path.parts:
                digest.update(str(path.relative_to(PROJECT)).encode() + b"\0")
                digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def install_line() -> str:
    return f"code {fingerprint()} at {PROJECT}"


def alike_line() -> str:
    """FRR's release (every router configured and behaving alike) and the uid of ``frr`` (its
    daemons write to the run's directory, shared with every server)."""
    import pwd

    from experiments.results import versions

    try:
        uid = str(pwd.getpwnam("frr").pw_uid)
    except KeyError:
        uid = "none"
    return f"{versions()['frr'].replace('zebra version ', 'FRR ')}, frr uid {uid}"


def expected() -> dict[str, str]:
    """This machine's doctor lines that every server must repeat."""
    return {INSTALL: install_line(), ALIKE: alike_line()}


FIXES = {INSTALL: "other code than here ({there} against {here}): install the same commit",
         ALIKE: "{there} against {here} here: install the same FRR release and give the frr "
                "user the same uid"}


def problems(name: str, here: dict[str, str]) -> list[str]:
    """What keeps ``name`` from serving as one of a run's servers (empty: nothing); ``here``:
    ``expected()`` of this machine."""
    machine = Machine(name)
    try:
        why = machine.reachable()
        if why:
            return [f"{name}: ssh as root without a password prompt fails ({why}); see the "
                    "README's 'Several servers'"]
        doctor = machine.run([str(Path(sys.executable).parent / "splinterlab"), "doctor",
                              "--cluster"], check=False, timeout=120)
    except MachineError as e:
        return [str(e)]
    finally:
        machine.close()
    if doctor.returncode not in (0, 1) or not any(
            end in doctor.stdout for end in ("everything required", "missing or failing")):
        said = (doctor.stderr or doctor.stdout).strip().splitlines()
        return [f"{name}: splinterlab does not run from {sys.executable} there "
                f"({said[-1] if said else 'no answer'}): install it at the same path"]
    out = []
    for line in doctor.stdout.splitlines():  # Check.line: mark, name, detail
        mark, check, detail = line[:4], line[5:23].strip(), line[24:].strip()
        if mark == "FAIL":
            out.append(f"{name}: {check}: {detail}")
        elif check in here and detail != here[check]:
            out.append(f"{name}: " + FIXES[check].format(there=detail, here=here[check]))
    return out


def check(names: list[str]) -> int:
    here = expected()
    failed = False
    for name in names:
        found = problems(name, here)
        failed |= bool(found)
        print("\n".join(found) if found else f"{name}: ready (ssh, same code and FRR, every "
              "requirement present)")
    return 1 if failed else 0


def bed_up(count: int) -> int:
    bed = testbed.up(count)
    print(f"test bed: {', '.join(s.name for s in bed)} up "
          f"({', '.join(s.address for s in bed)}); to use them:\n"
          f"  export {SSH_CONFIG}={testbed.STATE / 'ssh_config'}\n"
          f"  sudo -E splinterlab cluster check localhost,{','.join(s.name for s in bed)}")
    return 0


def bed_down() -> int:
    testbed.down()
    print("test bed: down")
    return 0
