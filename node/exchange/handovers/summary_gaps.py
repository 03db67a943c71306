"""What a case holds in the categories a consent grants that its summary does not carry as it is, and why.

The protocol's summary (SPEC.md 8.4.1) has a fixed set of fields, each bounded; a node's case has more (the
number of children, a milestone without a due date, household members' names, the wishes about future work's
skills) and longer texts. ``summary.case_summary`` carries every value the summary can hold; this module names,
field by field, every granted value it cannot carry unchanged, with the reason in words, so that the counsellor
sees it in the preview before anything leaves the node and the sent handover keeps the list
(``Handover.not_carried``). A category the consent does not grant is not listed here: it is ``withheld`` whole.

Each item is ``{"category", "field", "reason"}``; ``field`` names the value as the counsellor entered it
(``family.number_of_children``, ``plan.milestones[2]`` with its title).
"""

from __future__ import annotations

import re
from collections.abc import Collection

import sqlalchemy as sa
from sqlalchemy import orm

from node.cases.models import Case, HouseholdMember, IntakeSection
from protocol.fields import EMAIL_RE, KEY_RE

from .case_rows import CaseRows, load_rows
from .summary import NAME_MAX, NOTE_MAX, TEXT_MAX, e164

_SPACE_RE = re.compile(r"\s+")
#: Household relations the summary carries under another name.
_RELATION_AS = {"grandparent": "other_relative", "grandchild": "other_relative"}
_LIMITS = {"household": 30, "milestones": 100, "stages": 30, "interventions": 50, "occupations": 20,
           "skills": 50, "languages": 20}


def _gap(category: str, field: str, reason: str) -> dict[str, str]:
    return {"category": category, "field": field, "reason": reason}


def tidy(value: str | None) -> str:
    """A text as the summary compares it: whitespace runs as one space, no space at the ends."""
    return _SPACE_RE.sub(" ", value or "").strip()


def _too_long(category: str, field: str, value: str | None, limit: int, *, one_line: bool) -> list[dict[str, str]]:
    text = tidy(value) if one_line else (value or "").strip()
    if len(text) > limit:
        return [_gap(category, field, f"longer than the {limit} characters a summary carries: it is cut to "
                                      f"{limit} (the rest stays here)")]
    return []


def _over(category: str, field: str, count: int) -> list[dict[str, str]]:
    limit = _LIMITS[field.rsplit(".", 1)[-1]]
    if count > limit:
        return [_gap(category, field, f"{count} entries: a summary carries the first {limit}")]
    return []


def _identity(case: Case) -> list[dict[str, str]]:
    gaps: list[dict[str, str]] = []
    for field, value in (("given_names", case.given_names), ("family_name", case.family_name),
                         ("given_names_native", case.given_names_native),
                         ("family_name_native", case.family_name_native)):
        gaps += _too_long("identity", f"identity.{field}", value, NAME_MAX, one_line=True)
    return gaps + _over("identity", "identity.languages", len(set(case.languages or [])))


def _contact(case: Case) -> list[dict[str, str]]:
    gaps: list[dict[str, str]] = []
    if case.phone and e164(case.phone) is None:
        gaps.append(_gap("contact", "contact.phone", "not an international number (+ and the country code): a "
                                                     "summary carries only those"))
    if case.email and not EMAIL_RE.fullmatch(case.email):
        gaps.append(_gap("contact", "contact.email", "not an e-mail address a summary can carry"))
    return gaps


def _text(category: str, section: IntakeSection | None, field: str) -> list[dict[str, str]]:
    return _too_long(category, field, section.text if section else None, TEXT_MAX, one_line=False)


def _family(session: orm.Session, case: Case, section: IntakeSection | None) -> list[dict[str, str]]:
    gaps = _text("family", section, "family.text")
    data = (section.data or {}) if section else {}
    if data.get("number_of_children") is not None:
        gaps.append(_gap("family", "family.number_of_children",
                         "a summary has no field for the number of children: list the children in the household "
                         "(relation, date of birth) or write it in the family text"))
    if data.get("marital_status") == "other":
        gaps.append(_gap("family", "family.marital_status", "'other' is not a marital status a summary carries"))
    members = list(session.scalars(sa.select(HouseholdMember).where(HouseholdMember.case_id == case.id)
                                   .order_by(HouseholdMember.created_at, HouseholdMember.id)))
    gaps += _over("family", "family.household", len(members))
    for index, member in enumerate(members[:_LIMITS["household"]]):
        if member.given_names or member.family_name:
            gaps.append(_gap("family", f"family.household[{index}].name",
                             "a summary carries a household member's relation, date of birth and whether they "
                             "travel, not their name"))
        arrives = _RELATION_AS.get(member.relation, member.relation)
        if member.relation in ("spouse", "partner"):  # one relation in a summary; the marital status tells which
            arrives = "spouse" if data.get("marital_status") == "married" else "partner"
        if arrives != member.relation:
            gaps.append(_gap("family", f"family.household[{index}].relation",
                             f"'{member.relation}' arrives as '{arrives}'"))
    return gaps


def _work(work: IntakeSection | None, future: IntakeSection | None) -> list[dict[str, str]]:
    gaps = _text("work", work, "work.text") + _text("work", future, "future_work.text")
    data, wishes = (work.data or {}) if work else {}, (future.data or {}) if future else {}
    gaps += _over("work", "work.occupations", len(data.get("occupations") or []))
    gaps += _over("work", "work.skills", len(data.get("skills") or []))
    if wishes.get("skills"):
        gaps.append(_gap("work", "future_work.skills", "a summary carries the work a returnee wishes for as text "
                                                       "and occupations, not skills to learn"))
    if wishes.get("occupations"):
        gaps.append(_gap("work", "future_work.occupations", "a summary carries the wished-for work as one text: "
                                                            + ("the text goes, the list of occupations does not"
                                                               if future is not None and future.text else
                                                               "the occupations go as that text, not as a list")))
    return gaps


def _plan(rows: CaseRows) -> list[dict[str, str]]:
    gaps: list[dict[str, str]] = []
    plan = rows.plan
    milestones = plan.milestones if plan else []
    gaps += _over("plan", "plan.milestones", len(milestones))
    for index, milestone in enumerate(milestones[:_LIMITS["milestones"]]):
        title = tidy(milestone.get("title"))
        if not milestone.get("due_date"):
            gaps.append(_gap("plan", f"plan.milestones[{index}]", f"\"{title}\" has no due date: a summary carries "
                                                                  "milestones with a due date only"))
        elif len(title) > 200:
            gaps.append(_gap("plan", f"plan.milestones[{index}].title", "longer than the 200 characters a summary "
                                                                        "carries: it is cut"))
    stages = rows.stages
    gaps += _over("plan", "plan.stages", len([s for s in stages if KEY_RE.fullmatch(s.stage_key)]))
    for stage in stages:
        if not KEY_RE.fullmatch(stage.stage_key):
            gaps.append(_gap("plan", f"plan.stages.{stage.stage_key}", "a stage key a summary cannot carry"))
        gaps += _too_long("plan", f"plan.stages.{stage.stage_key}.notes", stage.notes, NOTE_MAX, one_line=False)
    items = rows.interventions
    gaps += _over("plan", "plan.interventions", len(items))
    for item in items[:_LIMITS["interventions"]]:
        if item.amount_cents is not None and not item.currency:
            gaps.append(_gap("plan", f"plan.interventions.{item.id}.amount", "an amount without its currency"))
        gaps += _too_long("plan", f"plan.interventions.{item.id}.notes", item.notes, NOTE_MAX, one_line=False)
    return gaps


def not_carried(session: orm.Session, case: Case, categories: Collection[str],
                rows: CaseRows | None = None) -> list[dict[str, str]]:
    """Every value of ``case`` in ``categories`` that a summary does not carry unchanged, with the reason.

    Args:
        session: the database session.
        case: the case being handed over.
        categories: the categories the consent grants the recipient (whether or not the summary holds them).
        rows: the case's rows for those categories, if read already (``case_rows.load_rows``).
    Returns:
        ``[{"category", "field", "reason"}]`` in the order of the categories (SPEC.md 8.4.1).
    """
    wanted = set(categories)
    rows = rows or load_rows(session, case, wanted)  # only what the categories need
    sections = rows.sections
    gaps: list[dict[str, str]] = []
    if "identity" in wanted:
        gaps += _identity(case)
    if "contact" in wanted:
        gaps += _contact(case)
    if "family" in wanted:
        gaps += _family(session, case, sections.get("family"))
    for category in ("health", "background", "wishes"):
        if category in wanted:
            gaps += _text(category, sections.get(category), f"{category}.text")
    if "education" in wanted:
        gaps += _text("education", sections.get("education"), "education.text")
    if "work" in wanted:
        gaps += _work(sections.get("work"), sections.get("future_work"))
    if "plan" in wanted:
        gaps += _plan(rows)
    return gaps

