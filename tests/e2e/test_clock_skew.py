"""Clock skew between two real nodes, on SQLite and on PostgreSQL.

The protocol tolerates a sender's clock up to ``CLOCK_SKEW`` (300 s) ahead of the receiver's (SPEC.md 6.2: an
envelope's ``created`` may be at most 300 s after the receiver's clock); beyond that the inbox refuses the
envelope with ``not_yet_valid`` (HTTP 422), before opening it. Göteborg's web server runs on a clock moved
ahead with ``CCM_CLOCK_OFFSET_SECONDS`` (honoured only with ``CCM_TESTING=1``, ``node/clock.py``): the
handovers are sealed with that clock. 120 s ahead, a handover is delivered; 600 s ahead, it is refused with
the clock error, the sending node's delivery shows ``not_yet_valid`` and its log names the clock skew, and
Sarajevo stores nothing.
"""

from __future__ import annotations

from typing import Any

import pytest

from protocol.envelope import CLOCK_SKEW
from tests.e2e.test_keys_e2e import hand_over, handover, incoming
from tests.e2e.test_story import wait
from tests.harness import Network

pytestmark = pytest.mark.slow
AGREEMENT = "dsa-gi-cldd-2026"
FAST = ("--min-backoff", "0.2", "--max-backoff", "1", "--poll-seconds", "0.05")
WITHIN = 120.0
BEYOND = 600.0


def test_a_sender_ahead_beyond_the_tolerance_is_refused_with_the_clock_error(network: Network) -> None:
    assert CLOCK_SKEW.total_seconds() == 300 and WITHIN < 300 < BEYOND
    gbg = network.add("se.gi-goteborg", "Göteborgs-Initiativet")  # on the true clock (its card)
    sarajevo = network.add("ba.cldd-sarajevo", "CLDD Sarajevo")
    anna = gbg.user("anna.lindqvist", "counsellor", team="gbg")
    emina = sarajevo.user("emina.kovac", "adviser", team="sarajevo")
    network.connect(gbg, sarajevo, AGREEMENT)
    sarajevo.start(workers=1)

    # Within the tolerance: delivered and stored. The web server (which seals) and the delivery worker (which
    # sends what is due by the node's clock) run on the same moved clock, as on one machine.
    gbg.clock_offset = WITHIN
    gbg.start(workers=1)
    gbg.spawn("deliver", *FAST)
    within = hand_over(gbg, anna, "within")
    wait("the handover sealed 120 s ahead delivered", lambda: handover(gbg, anna, within)["delivered_at"], 60)
    assert len(incoming(sarajevo, emina)) == 1

    # Beyond it: refused with the clock error, retried (the clocks may be corrected), never stored.
    gbg.stop()  # the delivery worker too; both start again
    gbg.clock_offset = BEYOND
    gbg.start(workers=1)
    gbg.spawn("deliver", *FAST)
    beyond = hand_over(gbg, anna, "beyond")

    def refused() -> dict[str, Any] | None:
        delivery: dict[str, Any] = handover(gbg, anna, beyond)["delivery"]
        return delivery if delivery["attempts"] >= 2 and delivery["last_error"] else None

    delivery = wait("the handover sealed 600 s ahead refused twice", refused, 60)
    assert delivery["last_error"] == "not_yet_valid"
    assert delivery["status"] != "parked"  # a clock error is retried, not given up on
    assert handover(gbg, anna, beyond)["delivered_at"] is None
    line = wait("the refusal in the sender's log", lambda: next(
        (ln for ln in gbg.log.read_text(encoding="utf-8", errors="replace").splitlines() if "clock skew" in ln),
        None), 30)
    assert "not_yet_valid" in line and sarajevo.node_id in line and "300 s" in line
    assert len(incoming(sarajevo, emina)) == 1  # nothing of the second handover is stored at the receiver
