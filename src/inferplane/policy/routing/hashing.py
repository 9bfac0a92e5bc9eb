"""A stable hash: the same bytes give the same number in every process and on every restart.

Python's `hash()` of a str is salted per process, so two gateways (or one after a restart)
would disagree on session placement; blake2b does not.
"""

from __future__ import annotations

import hashlib


def digest(*parts: str) -> bytes:
    """A 16-byte digest of the parts, separated so that ("ab", "c") != ("a", "bc")."""
    h = hashlib.blake2b(digest_size=16)
    for part in parts:
        data = part.encode()
        h.update(len(data).to_bytes(8, "little"))
        h.update(data)
    return h.digest()


def score(key: str, name: str) -> int:
    """The rendezvous (HRW) weight of endpoint `name` for `key`: the highest score wins."""
    return int.from_bytes(digest(key, name), "big")


def chain(previous: bytes, block: str) -> bytes:
    """The hash of a prefix block given the hash of everything before it, as a prefix cache
    keys its blocks: equal hashes mean equal whole prefixes, not just equal blocks."""
    h = hashlib.blake2b(previous, digest_size=16)
    h.update(block.encode())
    return h.digest()
