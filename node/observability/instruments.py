"""The node's process-wide instruments: HTTP requests and inbox refusals.

Made on first use, not at import: prometheus-client decides when it is imported whether values live in this
process's memory or in the files of its multiprocess mode (``PROMETHEUS_MULTIPROC_DIR``), and ``ccm-node serve``
sets that directory before the app loads (:mod:`node.observability.multiprocess`). Under gunicorn the values go to
files a scrape sums; without it (the Flask test client, a command) they stay in this process.

This module sits in the node core layer so that any layer may count into it; it imports nothing of the node.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from prometheus_client import Counter, Histogram

#: The HTTP methods counted by name; anything else is counted as OTHER (a client cannot add label values).
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
#: Latency buckets in seconds: the pages and API answers of a node take milliseconds to a few seconds.
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


@dataclass(frozen=True)
class Instruments:
    requests: Counter
    latency: Histogram
    inbox_refusals: Counter

    def all(self) -> tuple[Counter | Histogram, ...]:
        return (self.requests, self.latency, self.inbox_refusals)


_made: list[Instruments] = []
_lock = threading.Lock()


def instruments() -> Instruments:
    """This process's instruments (made on the first call; not registered in any registry: the scrape decides)."""
    if _made:
        return _made[0]
    with _lock:
        if not _made:
            from prometheus_client import Counter, Histogram

            _made.append(Instruments(
                requests=Counter("ccm_http_requests", "HTTP requests answered, by route (URL rule), method and "
                                 "status", ("route", "method", "status"), registry=None),
                latency=Histogram("ccm_http_request_duration_seconds", "Time to answer an HTTP request, by "
                                  "route (URL rule)", ("route",), buckets=LATENCY_BUCKETS, registry=None),
                inbox_refusals=Counter("ccm_inbox_refusals", "Messages the federation endpoints refused, by "
                                       "protocol error code", ("code",), registry=None),
            ))
    return _made[0]


def count_request(route: str, method: str, status: int, seconds: float) -> None:
    """Count one answered request.

    Args:
        route: the URL rule that matched (``/api/v1/cases/<case_id>``), never the path: ids stay out.
        method: the request's method.
        status: the answer's status code.
        seconds: how long it took.
    """
    made = instruments()
    made.requests.labels(route, method if method in METHODS else "OTHER", str(status)).inc()
    made.latency.labels(route).observe(seconds)


def count_inbox_refusal(code: str) -> None:
    """Count one message a federation endpoint refused, by its protocol error code (``bad_signature``, ...)."""
    instruments().inbox_refusals.labels(code).inc()
