"""The design registry: settings written once and checked where they are declared."""

from __future__ import annotations

from dataclasses import replace

import pytest

from experiments import paired, plotstyle
from protocols import architectures
from protocols.design import Option, OptionError


def test_every_design_has_a_label_a_colour_and_a_unique_name():
    names = architectures.names()
    assert len(set(names)) == len(names)
    assert architectures.compared()[0] == architectures.BASELINE
    for d in architectures.DESIGNS:
        assert plotstyle.ARCH_COLORS[d.name] == d.colour and plotstyle.ARCH_LABELS[d.name]


def test_settings_are_checked_against_their_bounds_and_defaulted():
    registered = architectures.design("registered")
    assert registered.checked({}) == {"ttl_ms": 30_000, "fail_mode": "closed"}
    with pytest.raises(OptionError, match="--ttl must be a whole number from 100 to"):
        registered.checked({"ttl_ms": 99})
    with pytest.raises(OptionError, match="--fail-mode must be closed or open"):
        registered.checked({"fail_mode": "ajar"})
    with pytest.raises(OptionError):  # the constructor checks the same bounds
        architectures.get("registered", ttl_ms=86_400_001)


def test_a_seeded_design_gets_the_run_seed_and_the_others_none():
    same = [paired.make("registered", seed=7).rng.random() for _ in range(2)]
    assert same[0] == same[1] != paired.make("registered", seed=8).rng.random()
    assert paired.make("permissionless", seed=7).name == "permissionless"


def test_all_is_every_compared_design_and_one_name_is_itself():
    assert paired.archs("all") == architectures.compared()
    assert paired.archs("registered") == ("registered",)
    with pytest.raises(ValueError, match="--arch must be"):
        paired.archs("nope")


def test_designs_that_would_clash_are_refused_in_one_sentence():
    registered = architectures.design("registered")
    sovereign = architectures.design("sovereign")
    assert architectures.check(architectures.DESIGNS) == architectures.DESIGNS
    clashes = {"central element regulator": replace(sovereign, name="other", label="x",
                                                    colour="#000000"),
               "flag --ttl": replace(sovereign, name="other", label="x", colour="#000000",
                                     central="", options=(registered.option("ttl_ms"),)),
               "colour": replace(sovereign, name="other", label="x", central="")}
    for what, extra in clashes.items():
        with pytest.raises(ValueError, match=f"two designs share the {what}"):
            architectures.check((*architectures.DESIGNS, extra))
    yes_no = replace(sovereign, name="other", label="x", colour="#000000", central="",
                     options=(Option("strict", "--strict", False, "refuse more"),))
    with pytest.raises(ValueError, match="--strict is a yes/no setting"):
        architectures.check((*architectures.DESIGNS, yes_no))
