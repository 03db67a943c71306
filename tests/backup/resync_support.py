"""The resync after a restore, run in-process: the requester's posts go to the partners' test clients."""

from __future__ import annotations

from collections.abc import Sequence

from node.exchange.resync.requester import ResyncOutcome, run_resync
from node.outbound import Post
from tests.exchange.conftest import Node


def flask_poster(*nodes: Node, down: Sequence[Node] = ()) -> Post:
    """Posts to the nodes' test clients by base URL; a node in ``down`` fails like a dead host."""

    def post(url: str, body: bytes, timeout: float) -> tuple[int | None, bytes, str | None]:
        for node in nodes:
            if url.startswith(node.base_url.rstrip("/") + "/"):
                if node in down:
                    return None, b"", "connection refused (nothing listens there)"
                answer = node.client.post(url[len(node.base_url.rstrip("/")):], data=body,
                                          content_type="application/json")
                return answer.status_code, answer.data, None
        return None, b"", "the host name does not resolve"

    return post


def resync(node: Node, *partners: Node, down: Sequence[Node] = ()) -> list[ResyncOutcome]:
    return list(run_resync(node.sessionmaker, identity=node.identity, clock=node.clock,
                           post=flask_poster(*partners, down=down)))
