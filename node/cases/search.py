"""Finding cases: the name index and the search behind ``GET /api/v1/cases``.

Names are indexed as tokens in ``case_name_tokens``: each name (Latin and native script) is case-folded,
decomposed, stripped of combining marks (accents, Arabic short vowels and hamza), a few letters that do not
decompose are mapped (đ → d, ł → l, ø → o, Arabic ى → ي, ة → ه, ٱ → ا, tatweel dropped) and split into words;
an Arabic word starting with the article ال is also indexed without it, and a name with đ also as written
with "dj". "sehic" thus finds "Šehić", "hasan"
finds "Ḥasan", and "محمد" finds "مُحَمَّد".

A query word matches every token it is a prefix of, written as a range (``token >= 'seh' AND token <
'sei'``) that both databases answer from the ``(token, case_id)`` primary key. Several words must all match.
A query that looks like a case reference (``GI-2026-0042``) searches the reference instead.
"""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
from collections.abc import Iterable, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy import orm

from node.audit import record
from node.auth import Actor, require
from node.errors import ValidationFailed

from .access import visible_cases_filter
from .models import Case, CaseNameToken, CaseStage

MAX_TOKEN_LENGTH = 64
MAX_QUERY_WORDS = 5
MIN_SELECTIVE_WORD = 3
#: A name word with at least this many tokens in its prefix range is common (see :func:`name_plan`).
COMMON_PREFIX_TOKENS = 2000
REFERENCE_RE = re.compile(r"[A-Za-z0-9]{1,12}-\d{4}-\d{1,9}")
_FOLD = str.maketrans({
    "đ": "d", "ð": "d", "ł": "l", "ø": "o", "æ": "ae", "œ": "oe", "þ": "th", "ı": "i", "ħ": "h", "ŧ": "t",
    "ŋ": "n", "ɛ": "e", "ε": "e", "ɔ": "o", "ƒ": "f", "ʋ": "v", "ɖ": "d", "ɣ": "g",
    "ٱ": "ا", "ى": "ي", "ی": "ي", "ة": "ه", "ک": "ك", "ـ": None,
    "'": None, "’": None, "ʼ": None, "ʻ": None, "`": None, "´": None,
})
_WORD_SPLIT = re.compile(r"[\W_]+")
_ARABIC_ARTICLE = "ال"


def normalise(text: str) -> str:
    """Case-fold, strip accents and diacritics, fold letters that do not decompose."""
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    stripped = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    return unicodedata.normalize("NFC", stripped.translate(_FOLD))


def words(text: str) -> list[str]:
    """The normalised words of ``text``, in order, without duplicates."""
    seen: dict[str, None] = {}
    for word in _WORD_SPLIT.split(normalise(text)):
        if word:
            seen.setdefault(word[:MAX_TOKEN_LENGTH], None)
    return list(seen)


def name_tokens(names: Iterable[str | None]) -> set[str]:
    """Every token the given names are indexed under."""
    tokens: set[str] = set()
    for name in names:
        if not name:
            continue
        spellings = [name]
        if "đ" in name.casefold():
            spellings.append(name.replace("đ", "dj").replace("Đ", "Dj"))  # Đorđe is also written Djordje
        for word in (w for spelling in spellings for w in words(spelling)):
            tokens.add(word)
            if word.startswith(_ARABIC_ARTICLE) and len(word) > len(_ARABIC_ARTICLE) + 1:
                tokens.add(word[len(_ARABIC_ARTICLE):])
    return tokens


def case_names(case: Case) -> tuple[str | None, ...]:
    return (case.given_names, case.family_name, case.given_names_native, case.family_name_native)


def index_names(session: orm.Session, case: Case, *, replace: bool = False) -> None:
    """(Re)write the case's name tokens."""
    if replace:
        session.execute(sa.delete(CaseNameToken).where(CaseNameToken.case_id == case.id))
    tokens = sorted(name_tokens(case_names(case)))
    if tokens:
        session.execute(sa.insert(CaseNameToken), [{"token": t, "case_id": case.id} for t in tokens])


def query_words(query: str) -> list[str]:
    """The words a name query matches on: short words (an "al", a "de") only when there is nothing longer,
    since a two-letter prefix matches a large share of all names; at most :data:`MAX_QUERY_WORDS`."""
    found = words(query)
    if any(len(word) >= MIN_SELECTIVE_WORD for word in found):
        found = [word for word in found if len(word) >= MIN_SELECTIVE_WORD]
    return found[:MAX_QUERY_WORDS]


def successor(prefix: str) -> str:
    """The smallest string greater than every string that starts with ``prefix`` (code-point order)."""
    while prefix:
        last = ord(prefix[-1]) + 1
        if 0xD800 <= last <= 0xDFFF:
            last = 0xE000
        if last <= 0x10FFFF:
            return prefix[:-1] + chr(last)
        prefix = prefix[:-1]
    raise ValueError("no successor of an empty prefix")


def _in_range(word: str) -> tuple[sa.ColumnElement[bool], sa.ColumnElement[bool]]:
    return CaseNameToken.token >= word, CaseNameToken.token < successor(word)


def _prefix_match(word: str, check: bool = False) -> sa.ColumnElement[bool]:
    if check:  # probed case by case through the (case_id, token) index
        return sa.exists().where(CaseNameToken.case_id == Case.id, *_in_range(word))
    return Case.id.in_(sa.select(CaseNameToken.case_id).where(*_in_range(word)))


def name_plan(session: orm.Session, filters: dict[str, Any]) -> tuple[frozenset[str], frozenset[str]]:
    """How to match a name query's words: ``(checked, walked)``, the words matched case by case (``EXISTS``)
    rather than as the set of all their cases (``IN``), for the count and for the page.

    The word with the fewest tokens (counted up to :data:`COMMON_PREFIX_TOKENS`, from the index) drives the
    search as a set, and the other words are checked on its cases. A lone word as common as that (a two-letter
    "al" matches a third of all cases) is walked for the page: the newest cases are checked one by one until
    the page is full, instead of sorting all its matches by date; its count still takes the set.
    """
    query = (filters.get("q") or "").strip()
    found = [] if not query or REFERENCE_RE.fullmatch(query) else query_words(query)
    if not found:
        return frozenset(), frozenset()
    sizes = {word: session.scalar(sa.select(sa.func.count()).select_from(
        sa.select(sa.literal(1)).where(*_in_range(word)).limit(COMMON_PREFIX_TOKENS).subquery())) or 0
        for word in found}
    driver = min(found, key=lambda word: sizes[word])
    checked = frozenset(word for word in found if word != driver)
    walked = checked | {driver} if len(found) == 1 and sizes[driver] >= COMMON_PREFIX_TOKENS else checked
    return checked, frozenset(walked)


def search_conditions(filters: dict[str, Any], stage_keys: tuple[str, ...], *,
                      checked: frozenset[str] = frozenset()) -> list[sa.ColumnElement[bool]]:
    """The SQL conditions for the search filters (see :class:`~node.cases.schemas.SearchQuerySchema`).

    Args:
        checked: name words to match case by case (see :func:`name_plan`); the others as sets. Either way
            the same cases match.
    Raises:
        ValidationFailed: an unknown stage key.
    """
    conditions: list[sa.ColumnElement[bool]] = []
    query = (filters.get("q") or "").strip()
    if query and REFERENCE_RE.fullmatch(query):
        conditions.append(Case.reference == query.upper())
    elif query:
        conditions.extend(_prefix_match(word, word in checked) for word in query_words(query))
    if filters.get("reference"):
        conditions.append(Case.reference == filters["reference"].strip().upper())
    if filters.get("status"):
        conditions.append(Case.status == filters["status"])
    if filters.get("destination"):
        conditions.append(Case.destination_country == filters["destination"])
    if filters.get("child") is not None:
        conditions.append(Case.child_at_intake == filters["child"])
    stage = filters.get("stage")
    if stage is not None:
        if stage not in stage_keys:
            raise ValidationFailed("Unknown stage.", {"stage": [
                f"Unknown stage key; this node's stages are: {', '.join(stage_keys)}."]})
        if filters.get("stage_status"):
            conditions.append(Case.id.in_(sa.select(CaseStage.case_id).where(
                CaseStage.stage_key == stage, CaseStage.status == filters["stage_status"])))
        else:
            conditions.append(Case.current_stage == stage)
    return conditions


def search_cases(session: orm.Session, actor: Actor, filters: dict[str, Any], *, stage_keys: tuple[str, ...],
                 now: dt.datetime, extra: Sequence[sa.ColumnElement[bool]] = (),
                 extra_names: Sequence[str] = (), count_limit: int | None = None) -> dict[str, Any]:
    """One page of the cases the actor may see that match ``filters``, newest first (audited as one read
    with the number of results; the query itself is not logged, it may hold a name).

    Args:
        extra: further conditions on ``Case``, ANDed with the filters: those of a higher layer, which this
            module may not import (e.g. ``node.exchange.worklist.partner_condition``).
        extra_names: the names of those conditions, for the audit entry's ``filters``.
        count_limit: count the matches only up to this many (a list page shows "more than 1,000"): counting
            every one of 100,000 cases takes longer than finding a page of them. None: the exact total (the API).
    Returns:
        ``{"items": [Case, ...], "page", "per_page", "total", "more"}``: ``more`` is true when there are more
        than ``count_limit`` matches (``total`` is then ``count_limit``); always false without a limit.
    Raises:
        Forbidden: the role may not read cases.
        ValidationFailed: an unknown stage key.
    """
    require(actor, "case.read")
    page, per_page = filters.get("page", 1), filters.get("per_page", 20)
    checked, walked = name_plan(session, filters)
    visible = visible_cases_filter(actor)
    where = [visible, *search_conditions(filters, stage_keys, checked=checked), *extra]
    if count_limit is None:
        total, more = session.scalar(sa.select(sa.func.count()).select_from(Case).where(*where)) or 0, False
    else:
        counted = session.scalar(sa.select(sa.func.count()).select_from(
            sa.select(Case.id).where(*where).limit(count_limit + 1).subquery())) or 0
        total, more = min(counted, count_limit), counted > count_limit
    if walked != checked:
        where = [visible, *search_conditions(filters, stage_keys, checked=walked), *extra]
    items = list(session.scalars(sa.select(Case).where(*where)
                                 .order_by(Case.created_at.desc(), Case.id.desc())
                                 .limit(per_page).offset((page - 1) * per_page)))
    used = sorted({k for k, v in filters.items() if k not in ("page", "per_page") and v not in (None, "")}
                  | set(extra_names))
    record(session, actor=actor, action="read", object_type="case_list", object_id=None, case_id=None,
           now=now, detail={"results": total, "returned": len(items), "filters": used})
    return {"items": items, "page": page, "per_page": per_page, "total": total, "more": more}
