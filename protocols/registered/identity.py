"""Identity proofing: the civil register's cards, and proofs of holding one.

The civil register issues every person a card: national id, real name and an enrolment secret
(32 random bytes from the operating system, never from an experiment's seed). The card reaches
the person's host out of band, as a file only that host's user can read. To register, or to
bind its identity to a new address, the host proves it holds the card without showing it:
the authority sends a one-time challenge and the host answers with

    HMAC-SHA256(secret, "splinterlab-enrol" | op | national id | address | gateway | challenge)

so a proof is bound to the address and gateway it was made for and is useless after one use.
Neither the secret nor anything standing in for it ever crosses the network. Whoever holds a
card can use it: lending one's card is how real-name systems are evaded ("borrowed identity").
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import struct
from dataclasses import dataclass
from pathlib import Path

from .messages import Enrol

NATIONAL_ID_BYTES = 16
DEVICE_MAGIC = b"SLDP"  # a device's datagram starts with its proof: magic, identity, token
DEVICE_PROOF = struct.Struct("!4sI16s")
DEVICES = "devices.json"  # in a farm's private directory: each device's identity and secret


@dataclass(frozen=True)
class Card:
    national_id: str
    real_name: str
    secret: bytes

    def save(self, path: Path, uid: int | None = None) -> None:
        """Write the card readable by its holder only (mode 0600, owned by ``uid``), safely
        in a directory the holder owns (``topologies.private``)."""
        from topologies.private import write_private  # here: the daemons never save a card

        write_private(path, json.dumps({"national_id": self.national_id,
                                        "real_name": self.real_name,
                                        "secret": self.secret.hex()}).encode(), uid)

    @classmethod
    def load(cls, path: Path) -> Card:
        data = json.loads(Path(path).read_text())
        return cls(data["national_id"], data["real_name"], bytes.fromhex(data["secret"]))


def issue(national_id: str, real_name: str) -> Card:
    if len(national_id.encode()) > NATIONAL_ID_BYTES:
        raise ValueError(f"a national id has at most {NATIONAL_ID_BYTES} bytes: {national_id!r}")
    return Card(national_id, real_name, secrets.token_bytes(32))


def national_id_field(national_id: str) -> bytes:
    return national_id.encode()[:NATIONAL_ID_BYTES].ljust(NATIONAL_ID_BYTES, b"\0")


def national_id_of(field: bytes) -> str:
    return field.rstrip(b"\0").decode(errors="replace")


def proof(secret: bytes, op: Enrol, national_id: str, address: int, gateway: int,
          challenge: bytes) -> bytes:
    message = b"|".join([b"splinterlab-enrol", str(int(op)).encode(),
                         national_id_field(national_id), address.to_bytes(4, "big"),
                         gateway.to_bytes(4, "big"), challenge])
    return hmac.new(secret, message, hashlib.sha256).digest()


def verify(secret: bytes, op: Enrol, national_id: str, address: int, gateway: int,
           challenge: bytes, claimed: bytes) -> bool:
    return hmac.compare_digest(proof(secret, op, national_id, address, gateway, challenge),
                               claimed)


def device_token(secret: bytes, src: int, dst: int, dport: int) -> bytes:
    """What a device shows in every datagram of a flow it starts: its secret, bound to the
    flow, so that a device speaking from a sibling's address cannot show the sibling's (it
    would have to see the sibling's datagrams, on a network where devices do not)."""
    message = b"|".join([b"splinterlab-device", src.to_bytes(4, "big"), dst.to_bytes(4, "big"),
                         dport.to_bytes(2, "big")])
    return hmac.new(secret, message, hashlib.sha256).digest()[:16]


def device_header(identity_: int, secret: bytes, src: int, dst: int, dport: int) -> bytes:
    return DEVICE_PROOF.pack(DEVICE_MAGIC, identity_, device_token(secret, src, dst, dport))


def device_claim(payload: bytes) -> tuple[int, bytes]:
    """(identity, token) a datagram's payload starts with, or (0, no token)."""
    if len(payload) < DEVICE_PROOF.size or payload[:4] != DEVICE_MAGIC:
        return 0, bytes(16)
    _, identity_, token = DEVICE_PROOF.unpack_from(payload)
    return identity_, token
