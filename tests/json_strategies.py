"""Hypothesis strategies for the property tests of the APIs: odd text, any JSON value, and bodies that hold
any subset of the keys an endpoint expects, each plausible or arbitrary, sometimes with extra keys."""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

ODD_TEXT = st.sampled_from(
    [
        "",
        " ",
        "\x00",
        "a\nb",
        "\u202e",
        "Šehić",
        "الجبوري",
        "\ud800",
        "x" * 300,
        "2026-02-30",
        "1e999",
        "NaN",
        "-1",
        "GI-2026-0001",
        "ZZ",
        "se",
        "<script>",
    ]
)
TEXT = st.one_of(st.text(max_size=40), ODD_TEXT)
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**63),
    st.floats(allow_nan=False, allow_infinity=False),
    TEXT,
)
JSON = st.recursive(
    SCALARS,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(TEXT, inner, max_size=4)),
    max_leaves=12,
)
DATES = st.one_of(st.dates().map(lambda d: d.isoformat()), TEXT, SCALARS)


def maybe(keys: dict[str, st.SearchStrategy[Any]]) -> st.SearchStrategy[dict[str, Any]]:
    """Dictionaries with any subset of ``keys``, each value plausible or arbitrary, and sometimes extras."""
    return st.fixed_dictionaries({}, optional={k: st.one_of(v, JSON) for k, v in keys.items()}).flatmap(
        lambda body: (
            st.dictionaries(TEXT, JSON, max_size=2).map(lambda extra: {**extra, **body}) | st.just(body)
        )
    )


