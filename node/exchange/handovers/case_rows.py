"""What a handover reads of a case's own tables, read once: the summary (``summary.py``) and the list of what
it does not carry (``summary_gaps.py``) are built from the same rows, in the same snapshot."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy import orm

from node.cases.models import Case, CasePlan, CaseStage, IntakeSection
from node.cases.models import Intervention as InterventionRow
from node.cases.progress import interventions as case_interventions
from node.db import by_key

#: The categories built from the intake sections (one query for all of them).
FROM_SECTIONS = frozenset({"family", "health", "background", "education", "work", "wishes"})


@dataclass(frozen=True)
class CaseRows:
    """A case's intake sections (by name), plan, stages (in order) and interventions (oldest first); the
    tables a category does not need are left unread (empty)."""

    sections: dict[str, IntakeSection]
    plan: CasePlan | None
    stages: list[CaseStage]
    interventions: list[InterventionRow]


# Built once (building a statement costs more than running it).
_SECTIONS = sa.select(IntakeSection).where(IntakeSection.case_id == sa.bindparam("case_id"))
_STAGES = sa.select(CaseStage).where(CaseStage.case_id == sa.bindparam("case_id")).order_by(CaseStage.position)


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
    sections = {row.section: row for row in session.scalars(_SECTIONS, key)} \
        if wanted is None or wanted & FROM_SECTIONS else {}
    if wanted is not None and "plan" not in wanted:
        return CaseRows(sections, None, [], [])
    return CaseRows(sections, by_key(session, CasePlan, case.id), list(session.scalars(_STAGES, key)),
                    case_interventions(session, case.id))
