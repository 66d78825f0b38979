"""Cards and proofs: a proof is bound to its person, address, gateway and challenge."""

from __future__ import annotations

import stat

from protocols.registered.identity import Card, issue, proof, verify
from protocols.registered.messages import Enrol


def test_cards_are_random_and_kept_private(tmp_path):
    a, b = issue("NID-1", "Ada"), issue("NID-1", "Ada")
    assert a.secret != b.secret and len(a.secret) == 32
    a.save(tmp_path / "card.json")
    assert stat.S_IMODE((tmp_path / "card.json").stat().st_mode) == 0o600
    assert Card.load(tmp_path / "card.json") == a


def test_a_proof_fits_exactly_what_it_was_made_for():
    card = issue("NID-7", "Olga Petrov")
    good = proof(card.secret, Enrol.REGISTER, "NID-7", 42, 3, b"c" * 16)
    assert verify(card.secret, Enrol.REGISTER, "NID-7", 42, 3, b"c" * 16, good)
    for args in [(Enrol.BIND, "NID-7", 42, 3, b"c" * 16), (Enrol.REGISTER, "NID-8", 42, 3,
                                                          b"c" * 16),
                 (Enrol.REGISTER, "NID-7", 43, 3, b"c" * 16),
                 (Enrol.REGISTER, "NID-7", 42, 4, b"c" * 16),
                 (Enrol.REGISTER, "NID-7", 42, 3, b"d" * 16)]:
        assert not verify(card.secret, *args, good)
    assert not verify(issue("NID-7", "Olga Petrov").secret, Enrol.REGISTER, "NID-7", 42, 3,
                      b"c" * 16, good)
