"""Per-thread chain links: each message names the hash of its sender's previous message in the thread.

``message_hash`` is ``base64url(SHA-256(inner document bytes))`` where the inner document bytes are the
canonical signed inner document (the plaintext of ``ct``). Each sender keeps one linear chain per thread
(``prev`` is null for its first message there), so the two parties of a thread never race each other and a
receiver detects a gap, a reordering or a fork in what one sender sent. ``verify_chain`` checks a whole
history, e.g. when a node audits the custody of a case.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from typing import Any

from .canonical import b64encode, strict_loads
from .errors import ChainError, MalformedError


def message_hash(inner_bytes: bytes) -> str:
    """The chain-link value of a message: ``base64url(SHA-256(inner_bytes))`` (43 characters).

    Args:
        inner_bytes: the canonical signed inner document (the decrypted ``ct``).
    """
    return b64encode(hashlib.sha256(inner_bytes).digest())


def _link(inner: bytes) -> tuple[str, str, str, str | None]:
    doc: Any = strict_loads(inner)
    try:
        header = doc["header"]
        sender, thread, message_id, prev = header["from"], header["thread"], header["id"], doc["prev"]
    except (TypeError, KeyError):
        raise MalformedError("not an inner document") from None
    if not all(isinstance(x, str) for x in (sender, thread, message_id)) or not (
        prev is None or isinstance(prev, str)
    ):
        raise MalformedError("not an inner document")
    return f"{sender}\x00{thread}", message_id, message_hash(inner), prev


def verify_chain(messages: Iterable[bytes]) -> None:
    """Check the chain links of a sequence of inner documents, in the order they were sent.

    Messages are grouped by (sender, thread); within each group, the first must have ``prev`` null and
    every later one must name the hash of the one before it.

    Args:
        messages: canonical inner document bytes, in sending order (several senders/threads may mix).
    Raises:
        MalformedError: an item is not an inner document.
        ChainError: a gap, reordering, fork or duplicate (the message says which message id).
    """
    heads: dict[str, str] = {}
    seen_hashes: dict[str, set[str]] = {}
    for inner in messages:
        group, message_id, digest, prev = _link(inner)
        known = seen_hashes.setdefault(group, set())
        if digest in known:
            raise ChainError(f"message {message_id}: duplicate")
        expected = heads.get(group)
        if prev != expected:
            if prev is not None and prev in known:
                raise ChainError(f"message {message_id}: fork (links to an earlier message)")
            if prev is None:
                raise ChainError(f"message {message_id}: restarts a chain that already has messages")
            raise ChainError(f"message {message_id}: gap or reordering (links to an unknown message)")
        heads[group] = digest
        known.add(digest)
