"""The people of the emulated country: one per host, named by the run's seed (names only:
never keys or secrets). Every design that knows its users by name draws them from here, so
the same host is the same person under each."""

from __future__ import annotations

import random

FIRST = ("Ada", "Bela", "Chen", "Dara", "Emil", "Farah", "Goran", "Hana", "Ines", "Jonas",
         "Kemal", "Lena", "Mira", "Nuno", "Olga", "Pavel")
LAST = ("Okafor", "Lindqvist", "Moreau", "Haddad", "Novak", "Sato", "Ferreira", "Kowalski",
        "Ibrahim", "Jensen", "Rossi", "Petrov")


def names(rng: random.Random) -> list[str]:
    """Every name, in the order ``rng`` deals them (the k-th person gets the k-th, modulo)."""
    out = [f"{f} {last}" for last in LAST for f in FIRST]
    rng.shuffle(out)
    return out


def national_id(k: int) -> str:
    """The k-th person's national id (k from 0)."""
    return f"NID-{k + 1:05d}"
