"""The backup tests use the exchange tests' in-process nodes (``tests/exchange/conftest.py``): Göteborg and
Sarajevo on SQLite and on PostgreSQL, talking through their test clients, with a delivery worker."""

from tests.exchange.conftest import (  # noqa: F401  (fixtures)
    gbg,
    make_worker,
    nodes,
    paired,
    sarajevo,
    transport,
    world,
)
from tests.exchange.desks import desks  # noqa: F401  (the fixture)
