"""``data_keys``: which data keys the database holds values under (ids only, never a key).

A row per key id: registered when the key first encrypts (the first start, or a rotation), ``retired_at`` set
once no value uses it any more. At start a node refuses to serve when a key id in use here is not in its key
file (a lost or wrong key: a clear error instead of unreadable rows later). ``rows_reencrypted`` counts the
values a rotation to this key has re-encrypted (progress, for the operator).
"""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from node.db import Base, UTCDateTime


class DataKeyRecord(Base):
    __tablename__ = "data_keys"

    kid: Mapped[str] = mapped_column(sa.String(16), primary_key=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    retired_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    rows_reencrypted: Mapped[int] = mapped_column(sa.BigInteger(), default=0)
