"""What an architecture declares about itself, so that nothing else has to know its name.

A design is a package under ``protocols/`` that exposes one ``DESIGN``: its name, the label
and colour figures give it, the settings a user may change (each with its default and bounds,
written here once: the command line's flags and the constructor's checks both read them) and
the capabilities experiments ask for instead of comparing names. ``protocols.architectures``
lists the designs; adding one is its package plus one line there.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass


class OptionError(ValueError):
    """A setting out of its bounds, in one sentence a user can act on."""


@dataclass(frozen=True)
class Option:
    """One setting of a design: the constructor's keyword, its flag, default and bounds."""

    name: str                 # keyword of the architecture's constructor, e.g. ttl_ms
    flag: str                 # command-line flag, e.g. --ttl
    default: object
    help: str
    choices: tuple = ()       # allowed values, when they are a list
    bounds: tuple[int, int] | None = None  # inclusive, when a whole number
    unit: str = ""            # how the bound is said, e.g. "ms"

    def check(self, value):
        """``value`` if allowed, else OptionError naming the flag and what it takes."""
        if self.choices and value not in self.choices:
            raise OptionError(f"{self.flag} must be {' or '.join(map(str, self.choices))}, "
                              f"not {value!r}")
        if self.bounds is not None:
            low, high = self.bounds
            if not isinstance(value, int) or not low <= value <= high:
                raise OptionError(f"{self.flag} must be a whole number from {low} to {high}"
                                  f"{' ' + self.unit if self.unit else ''}, not {value!r}")
        return value


@dataclass(frozen=True)
class Design:
    """An architecture as the registry knows it."""

    name: str
    label: str                # how figures and tables name it
    colour: str               # its colour in every figure
    make: Callable            # the architecture's class: make(**options) -> Architecture
    summary: str              # one line for --help
    options: tuple[Option, ...] = ()
    compared: bool = True     # one of the designs experiments compare (static is a check)
    seeded: bool = False      # takes the run's seed (chooses names, never keys)
    routing: bool = True      # routers run OSPF (takes --hello, --dead, --bfd ...)
    admits_flows: bool = False  # a third party decides every new flow before it passes
    central: str = ""         # the central element whose failure experiments inject, if any
    border_censor: bool = False  # takes a border censor's policy (--censor POLICY.toml)

    def option(self, name: str) -> Option:
        return next(o for o in self.options if o.name == name)

    def checked(self, options: dict) -> dict:
        """``options`` with every declared setting checked and the missing ones defaulted."""
        known = {o.name for o in self.options}
        out = {o.name: o.check(options[o.name]) if o.name in options else o.default
               for o in self.options}
        out.update({k: v for k, v in options.items() if k not in known})
        return out

    def build(self, seed: int | None = None, **options):
        """The architecture with ``options`` (checked) and, if it takes one, the seed."""
        options = self.checked(options)
        if self.seeded and seed is not None:
            options.setdefault("seed", seed)
        return self.make(**options)
