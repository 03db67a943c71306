"""The case API under ``/api/v1``: thin views (parse with the schemas → call a service → commit → dump).

Routes for the case itself, search, household, timeline, export and reports are here; the case's records
(intake, plan, stages, child safeguards, consents, interventions, notes) are in :mod:`.record_views`.
Every write that changes an existing record needs the version read (``If-Match`` or ``version``); every
single-record answer carries its ``ETag``.
"""

from __future__ import annotations

from typing import Any

from flask import request, url_for

from node.api import Blueprint, commit, documented, expected, node_config, now_and_actor, with_etag
from node.concurrency import expected_from
from node.db import request_session

from . import reports, search, services
from .outputs import (
    CaseOut,
    CasePageOut,
    HouseholdListOut,
    HouseholdMemberOut,
    ReportSummaryOut,
    TimelineOut,
)
from .record_views import register_record_routes
from .schemas import (
    CaseCreateSchema,
    CasePatchSchema,
    HouseholdMemberSchema,
    HouseholdPatchSchema,
    SearchQuerySchema,
)
from .timeline import get_timeline


def make_blueprint() -> Blueprint:
    """The ``/api/v1`` blueprint of the case domain."""
    blp = Blueprint("cases", __name__, url_prefix="/api/v1",
                    description="Cases: returnee, household, intake, plan, stages, consent, interventions, "
                                "progress notes and the timeline. Case access: assigned to you or your team.")
    _register_case_routes(blp)
    _register_household_routes(blp)
    register_record_routes(blp)
    return blp


def _register_case_routes(blp: Blueprint) -> None:
    @blp.route("/cases", methods=["POST"])
    @blp.arguments(CaseCreateSchema)
    @blp.response(201, CaseOut, headers={"ETag": {"schema": {"type": "string"}},
                                         "Location": {"schema": {"type": "string"}}})
    @documented(blp)
    def create_case(data: dict[str, Any]) -> Any:
        """Open a case (minimal body: returnee names and date of birth, destination country)"""
        now, actor = now_and_actor()
        config = node_config()
        case = services.create_case(request_session(), actor, data, stages=config.stages,
                                    prefix=config.reference_prefix, now=now)
        commit()
        return with_etag(case, case.version, 201, Location=url_for(".get_case", case_id=case.id))

    @blp.route("/cases", methods=["GET"])
    @blp.arguments(SearchQuerySchema, location="query")
    @blp.response(200, CasePageOut)
    @documented(blp)
    def search_cases(filters: dict[str, Any]) -> Any:
        """Search and filter the cases you may see (name in any script, accents ignored), newest first"""
        now, actor = now_and_actor()
        page = search.search_cases(request_session(), actor, filters, stage_keys=node_config().stage_keys,
                                   now=now)
        commit()
        return page

    @blp.route("/cases/<case_id>", methods=["GET"])
    @blp.response(200, CaseOut, headers={"ETag": {"schema": {"type": "string"}}})
    @documented(blp, 404)
    def get_case(case_id: str) -> Any:
        """Read a case"""
        now, actor = now_and_actor()
        case = services.get_case(request_session(), actor, case_id, now)
        commit()
        return with_etag(case, case.version)

    @blp.route("/cases/<case_id>", methods=["PATCH"])
    @blp.arguments(CasePatchSchema)
    @blp.response(200, CaseOut, headers={"ETag": {"schema": {"type": "string"}}})
    @documented(blp, 404, 409, 412, 428)
    def update_case(data: dict[str, Any], case_id: str) -> Any:
        """Change the status, assignment, returnee or destination"""
        now, actor = now_and_actor()
        precondition = expected(data)
        case = services.update_case(request_session(), actor, case_id, data, precondition, now)
        commit()
        return with_etag(case, case.version)

    @blp.route("/cases/<case_id>/timeline", methods=["GET"])
    @blp.response(200, TimelineOut)
    @documented(blp, 404)
    def timeline(case_id: str) -> Any:
        """Everything that happened on the case, oldest first"""
        now, actor = now_and_actor()
        result = get_timeline(request_session(), actor, case_id, now)
        commit()
        return result

    @blp.route("/reports/summary", methods=["GET"])
    @blp.response(200, ReportSummaryOut)
    @documented(blp)
    def report_summary() -> Any:
        """Aggregate figures (no personal data)"""
        now, actor = now_and_actor()
        result = reports.summary(request_session(), actor, now)
        commit()
        return result


def _register_household_routes(blp: Blueprint) -> None:
    @blp.route("/cases/<case_id>/household", methods=["GET"])
    @blp.response(200, HouseholdListOut)
    @documented(blp, 404)
    def list_household(case_id: str) -> Any:
        """The returnee's household members"""
        now, actor = now_and_actor()
        items = services.list_household(request_session(), actor, case_id, now)
        commit()
        return {"items": items}

    @blp.route("/cases/<case_id>/household", methods=["POST"])
    @blp.arguments(HouseholdMemberSchema)
    @blp.response(201, HouseholdMemberOut)
    @documented(blp, 404)
    def add_member(data: dict[str, Any], case_id: str) -> Any:
        """Add a household member"""
        now, actor = now_and_actor()
        member = services.add_member(request_session(), actor, case_id, data, now)
        commit()
        return with_etag(member, member.version, 201)

    @blp.route("/cases/<case_id>/household/<member_id>", methods=["PATCH"])
    @blp.arguments(HouseholdPatchSchema)
    @blp.response(200, HouseholdMemberOut)
    @documented(blp, 404, 409, 412, 428)
    def update_member(data: dict[str, Any], case_id: str, member_id: str) -> Any:
        """Change a household member"""
        now, actor = now_and_actor()
        precondition = expected(data)
        member = services.update_member(request_session(), actor, case_id, member_id, data, precondition, now)
        commit()
        return with_etag(member, member.version)

    @blp.route("/cases/<case_id>/household/<member_id>", methods=["DELETE"])
    @blp.response(204)
    @documented(blp, 404, 412, 428)
    def remove_member(case_id: str, member_id: str) -> Any:
        """Remove a household member (If-Match required)"""
        now, actor = now_and_actor()
        precondition = expected_from(request.headers.get("If-Match"), None)
        services.remove_member(request_session(), actor, case_id, member_id, precondition, now)
        commit()
        return ""
