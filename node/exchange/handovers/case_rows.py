"""What a handover reads of a case's own tables, read once: the summary (``summary.py``) and the list of what
it does not carry (``summary_gaps.py``) are built from the same rows, in the same snapshot."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy import orm

from node.cases.models import Case, CasePlan, CaseStage, IntakeSection
from node.cases.models import Intervention as InterventionRow

#: The categories built from the intake sections (one query for all of them).
FROM_SECTIONS = frozenset({"family", "health", "background", "education", "work", "wishes"})


@dataclass(frozen=True)
class CaseRows:
    """A case's intake sections (by name), plan, stages (in order) and interventions (oldest first); the
    tables a category does not need are left unread (empty).

    The rows are Core rows (``sa.Row``) of the columns the summary and its gaps read, named like the mapped
    attributes (``section.text``, ``stage.stage_key``, ``item.amount_cents``): read-only, and not in the
    session (an ORM entity load costs about twice as much, and these rows are never changed by a handover).
    """

    sections: dict[str, Any]
    plan: Any | None
    stages: list[Any]
    interventions: list[Any]


# Built once (building a statement costs more than running it), on the tables (not the mapped classes: no ORM
# loading), of the columns the summary and its gaps read.
_KEY = sa.bindparam("case_id")
_SECTION, _PLAN_T, _STAGE, _ITEM = (cast(sa.Table, model.__table__).c
                                    for model in (IntakeSection, CasePlan, CaseStage, InterventionRow))
_SECTIONS = sa.select(_SECTION.section, _SECTION.text, _SECTION.data).where(_SECTION.case_id == _KEY)
_PLAN = sa.select(_PLAN_T.end_date, _PLAN_T.milestones).where(_PLAN_T.case_id == _KEY)
_STAGES = (sa.select(_STAGE.stage_key, _STAGE.status, _STAGE.responsible, _STAGE.notes, _STAGE.started_on,
                     _STAGE.completed_on)
           .where(_STAGE.case_id == _KEY).order_by(_STAGE.position))
# oldest first, as the case's interventions are listed (node.cases.progress.interventions)
_INTERVENTIONS = (sa.select(_ITEM.id, _ITEM.kind, _ITEM.provider, _ITEM.status, _ITEM.start_date, _ITEM.end_date,
                            _ITEM.amount_cents, _ITEM.currency, _ITEM.notes)
                  .where(_ITEM.case_id == _KEY).order_by(_ITEM.created_at, _ITEM.id))


def load_rows(session: orm.Session, case: Case, categories: Collection[str] | None = None) -> CaseRows:
    """Read the rows the given categories need (default: all).

    Args:
        session: the database session.
        case: the case.
        categories: the categories that will be built (a consent's granted ones).
    Returns:
        The rows.
    """
    wanted = frozenset(categories) if categories is not None else None
    key = {"case_id": case.id}
    sections = {row.section: row for row in session.execute(_SECTIONS, key)} \
        if wanted is None or wanted & FROM_SECTIONS else {}
    if wanted is not None and "plan" not in wanted:
        return CaseRows(sections, None, [], [])
    return CaseRows(sections, session.execute(_PLAN, key).first(), list(session.execute(_STAGES, key)),
                    list(session.execute(_INTERVENTIONS, key)))
