"""Health and metrics of a node: ``/healthz``, ``/readyz`` and ``/metrics``.

- :mod:`.instruments` (node core): the process's counters and histograms, which lower layers (the federation
  inbox) record into; nothing else.
- :mod:`.health` (on top): liveness and readiness, for a load balancer or an orchestrator.
- :mod:`.figures` (on top): what the database holds about the exchange, read when ``/metrics`` is scraped.
- :mod:`.metrics` (on top): the request timing hooks and the ``/metrics`` view, in the Prometheus text format,
  reachable only from ``[metrics] allow``.
- :mod:`.multiprocess` (on top): under gunicorn every worker writes its counters to files in
  ``<data_dir>/metrics/`` and a scrape sums them (prometheus-client's multiprocess mode).

No metric carries personal data, a case id or a username: routes are URL rules (``/api/v1/cases/<case_id>``),
partners are node ids, refusals are protocol error codes.
"""
