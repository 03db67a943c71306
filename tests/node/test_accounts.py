"""Staff accounts: argon2 passwords, personal API tokens (hashed, expiring, revocable)."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import sqlalchemy as sa
from flask.testing import FlaskClient
from sqlalchemy import orm

from node import accounts
from node.clock import FakeClock

MakeUser = Callable[..., tuple[accounts.User, str]]


def test_password_is_hashed_with_argon2(db_session: orm.Session, clock: FakeClock) -> None:
    user = accounts.create_user(db_session, username="anna", role="counsellor", now=clock.now(),
                                password="a long enough passphrase")
    assert user.password_hash is not None and user.password_hash.startswith("$argon2id$")
    assert accounts.check_password(user, "a long enough passphrase")
    assert not accounts.check_password(user, "a long enough passphrasE")


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"username": "Anna Lind", "role": "counsellor"}, "invalid username"),
    ({"username": "anna", "role": "superuser"}, "invalid role"),
    ({"username": "anna", "role": "counsellor", "password": "short"}, "password too short"),
])
def test_bad_accounts_are_refused(db_session: orm.Session, clock: FakeClock, kwargs: dict[str, str],
                                  message: str) -> None:
    with pytest.raises(accounts.AccountError, match=message):
        accounts.create_user(db_session, now=clock.now(), **kwargs)  # type: ignore[arg-type]


def test_duplicate_username_refused(db_session: orm.Session, clock: FakeClock) -> None:
    accounts.create_user(db_session, username="anna", role="counsellor", now=clock.now())
    with pytest.raises(accounts.AccountError, match="already exists"):
        accounts.create_user(db_session, username="anna", role="adviser", now=clock.now())


def test_token_lifecycle(db_session: orm.Session, clock: FakeClock) -> None:
    user = accounts.create_user(db_session, username="amra", role="adviser", now=clock.now())
    token = accounts.create_token(db_session, user, now=clock.now(), days=2)
    stored = db_session.scalars(sa.select(accounts.ApiToken)).one()
    assert token.split("_", 2)[2] not in stored.secret_hash  # only a digest is stored
    assert accounts.authenticate_token(db_session, token, clock.now()) is user
    assert accounts.authenticate_token(db_session, token[:-1] + ("A" if token[-1] != "A" else "B"),
                                       clock.now()) is None
    assert accounts.authenticate_token(db_session, "ccm_999_nope", clock.now()) is None
    assert accounts.authenticate_token(db_session, "garbage", clock.now()) is None
    assert accounts.authenticate_token(db_session, token, clock.advance(days=3)) is None  # expired


def test_revoked_token_and_disabled_user_rejected(db_session: orm.Session, clock: FakeClock) -> None:
    user = accounts.create_user(db_session, username="erik", role="counsellor", now=clock.now())
    t1 = accounts.create_token(db_session, user, now=clock.now(), days=30)
    t2 = accounts.create_token(db_session, user, now=clock.now(), days=30)
    accounts.revoke_token(db_session, int(t1.split("_")[1]), clock.now())
    assert accounts.authenticate_token(db_session, t1, clock.now()) is None
    assert accounts.authenticate_token(db_session, t2, clock.now()) is user
    user.active = False
    assert accounts.authenticate_token(db_session, t2, clock.now()) is None


def _last_used(engine: sa.Engine) -> list[object]:
    with engine.connect() as conn:
        return [row.last_used_at for row in conn.execute(sa.text("SELECT last_used_at FROM api_tokens"))]


def test_a_tokens_last_use_is_written_at_most_once_a_minute(client: FlaskClient, engine: sa.Engine,
                                                             clock: FakeClock, make_user: MakeUser) -> None:
    _user, token = make_user("counsellor")
    headers = {"Authorization": f"Bearer {token}"}
    assert _last_used(engine) == [None]
    assert client.get("/api/v1/cases", headers=headers).status_code == 200
    first = _last_used(engine)
    assert first[0] is not None
    clock.advance(seconds=59)
    assert client.get("/api/v1/cases", headers=headers).status_code == 200
    assert _last_used(engine) == first  # within the minute: the request wrote nothing for it
    clock.advance(seconds=2)
    assert client.get("/api/v1/cases", headers=headers).status_code == 200
    assert _last_used(engine) != first


def test_check_token_says_when_the_last_use_is_due(db_session: orm.Session, clock: FakeClock) -> None:
    user = accounts.create_user(db_session, username="lina", role="adviser", now=clock.now())
    token = accounts.create_token(db_session, user, now=clock.now(), days=2)
    use = accounts.check_token(db_session, token, clock.now())
    assert use is not None and (use.user_id, use.username, use.role) == (user.id, "lina", "adviser") and use.stale
    accounts.mark_used(db_session, use.token_id, clock.now())
    db_session.expire_all()
    use = accounts.check_token(db_session, token, clock.advance(seconds=30))
    assert use is not None and not use.stale
    use = accounts.check_token(db_session, token, clock.advance(seconds=30))
    assert use is not None and use.stale
    assert accounts.check_token(db_session, token + "x", clock.now()) is None
