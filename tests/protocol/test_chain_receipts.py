"""Chain links across a thread, and signed delivery receipts."""

from __future__ import annotations

from typing import Any

import pytest

from protocol import (
    BadSignatureError,
    ChainError,
    MalformedError,
    SchemaError,
    make_receipt,
    message_hash,
    open_envelope,
    seal,
    verify_chain,
    verify_receipt,
)

from .conftest import NOW, THREAD, Directory, History, card_for, keys_for

SE, IQ = keys_for("se.gi-goteborg"), keys_for("iq.cldd-baghdad")
SE_CARD, IQ_CARD = card_for(SE), card_for(IQ)


def chain_of(samples: dict[str, Any], count: int, thread: str = THREAD) -> list[bytes]:
    inners, prev = [], None
    for _ in range(count):
        sealed = seal(keys=SE, recipient=IQ_CARD, msg_type="progress_update", body=samples["progress_update"],
                      thread=thread, now=NOW, prev=prev)
        inners.append(sealed.inner_bytes)
        prev = sealed.message_hash
    return inners


def test_valid_chains_interleave_threads_and_senders(samples: dict[str, Any]) -> None:
    a, b = chain_of(samples, 3), chain_of(samples, 2, thread="other-thread-000000000")
    reply = seal(keys=IQ, recipient=SE_CARD, msg_type="progress_update", body=samples["progress_update"],
                 thread=THREAD, now=NOW).inner_bytes
    verify_chain([a[0], b[0], reply, a[1], b[1], a[2]])
    verify_chain([])


@pytest.mark.parametrize(("order", "reason"), [
    ([0, 2], "gap"), ([0, 2, 1], "gap"), ([1, 2], "restarts|gap"), ([0, 1, 0], "duplicate"),
])
def test_broken_chains(samples: dict[str, Any], order: list[int], reason: str) -> None:
    inners = chain_of(samples, 3)
    with pytest.raises(ChainError, match=reason):
        verify_chain([inners[i] for i in order])


def test_fork_and_restart(samples: dict[str, Any]) -> None:
    inners = chain_of(samples, 2)
    fork = seal(keys=SE, recipient=IQ_CARD, msg_type="case_closed", body=samples["case_closed"],
                thread=THREAD, now=NOW, prev=message_hash(inners[0])).inner_bytes
    with pytest.raises(ChainError, match="fork"):
        verify_chain([*inners, fork])
    with pytest.raises(ChainError, match="restarts"):
        verify_chain([*inners, chain_of(samples, 1)[0]])


@pytest.mark.parametrize("item", [
    b"[]", b'{"header": 1}', b"nope", b'{"header":{"from":1,"thread":"t","id":"i"},"prev":null}',
])
def test_chain_items_must_be_inner_documents(item: bytes) -> None:
    with pytest.raises(MalformedError):
        verify_chain([item])


def test_receipt_round_trip(samples: dict[str, Any]) -> None:
    sealed = seal(keys=SE, recipient=IQ_CARD, msg_type="case_closed", body=samples["case_closed"],
                  thread=THREAD, now=NOW)
    opened = open_envelope(sealed.data, keys=IQ, directory=Directory(SE_CARD), history=History(), now=NOW)
    receipt = make_receipt(IQ, opened, NOW)
    assert receipt["type"] == "delivery_receipt" and receipt["content_hash"] == sealed.message_hash
    verified = verify_receipt(receipt, IQ_CARD, message_id=sealed.header.id, content_hash=sealed.message_hash)
    assert (verified.sender, verified.recipient, verified.received_at) == (SE.node_id, IQ.node_id, NOW)
    with pytest.raises(BadSignatureError):
        verify_receipt({**receipt, "received_at": "2026-03-01T10:00:00Z"}, IQ_CARD)
    with pytest.raises(BadSignatureError):
        verify_receipt(receipt, SE_CARD)
    with pytest.raises(MalformedError, match="another message"):
        verify_receipt(receipt, IQ_CARD, message_id="A" * 22)
    with pytest.raises(MalformedError, match="other content"):
        verify_receipt(receipt, IQ_CARD, content_hash="A" * 43)
    with pytest.raises(SchemaError):
        verify_receipt({**receipt, "extra": 1}, IQ_CARD)
    with pytest.raises(MalformedError):
        verify_receipt([receipt], IQ_CARD)
    with pytest.raises(MalformedError):
        make_receipt(SE, opened, NOW)
