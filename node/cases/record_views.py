"""The case's records under ``/api/v1/cases/{id}``: intake sections, plan, stages, child safeguards, consents,
interventions and progress notes. Same pattern as :mod:`.views`: parse → service → commit → dump."""

from __future__ import annotations

from typing import Any

from node.api import Blueprint, commit, documented, expected, node_config, now_and_actor, with_etag
from node.db import request_session

from . import consent, progress, sections, stages
from .outputs import (
    ConsentListOut,
    ConsentOut,
    IntakeListOut,
    IntakeSectionOut,
    InterventionListOut,
    InterventionOut,
    PlanOut,
    ProgressNoteListOut,
    ProgressNoteOut,
    SafeguardsOut,
    StageListOut,
    StageOut,
)
from .schemas import (
    ConsentCreateSchema,
    IntakeSectionWriteSchema,
    InterventionCreateSchema,
    InterventionPatchSchema,
    PlanWriteSchema,
    ProgressNoteCreateSchema,
    SafeguardsWriteSchema,
    StagePatchSchema,
)

ETAG_HEADER = {"ETag": {"schema": {"type": "string"}}}


def register_record_routes(blp: Blueprint) -> None:
    _intake_and_plan(blp)
    _stages(blp)
    _consent(blp)
    _progress(blp)


def _intake_and_plan(blp: Blueprint) -> None:
    @blp.route("/cases/<case_id>/intake", methods=["GET"])
    @blp.response(200, IntakeListOut)
    @documented(blp, 404)
    def list_intake(case_id: str) -> Any:
        """All intake sections (family, health, background, education, work, wishes, future_work)"""
        now, actor = now_and_actor()
        items = sections.list_intake(request_session(), actor, case_id, now)
        commit()
        return {"items": items}

    @blp.route("/cases/<case_id>/intake/<section>", methods=["GET"])
    @blp.response(200, IntakeSectionOut, headers=ETAG_HEADER)
    @documented(blp, 404)
    def get_intake_section(case_id: str, section: str) -> Any:
        """One intake section (version 0 until first written)"""
        now, actor = now_and_actor()
        result = sections.get_intake_section(request_session(), actor, case_id, section, now)
        commit()
        return with_etag(result, result["version"])

    @blp.route("/cases/<case_id>/intake/<section>", methods=["PUT"])
    @blp.arguments(IntakeSectionWriteSchema)
    @blp.response(200, IntakeSectionOut, headers=ETAG_HEADER)
    @documented(blp, 404, 409, 412, 428)
    def write_intake_section(data: dict[str, Any], case_id: str, section: str) -> Any:
        """Replace an intake section (the first write carries version 0)"""
        now, actor = now_and_actor()
        precondition = expected(data)
        result = sections.write_intake_section(request_session(), actor, case_id, section, data, precondition,
                                               now)
        commit()
        return with_etag(result, result["version"])

    @blp.route("/cases/<case_id>/plan", methods=["GET"])
    @blp.response(200, PlanOut, headers=ETAG_HEADER)
    @documented(blp, 404)
    def get_plan(case_id: str) -> Any:
        """The individual plan: end date and milestones (version 0 until first written)"""
        now, actor = now_and_actor()
        result = sections.get_plan(request_session(), actor, case_id, now)
        commit()
        return with_etag(result, result["version"])

    @blp.route("/cases/<case_id>/plan", methods=["PUT"])
    @blp.arguments(PlanWriteSchema)
    @blp.response(200, PlanOut, headers=ETAG_HEADER)
    @documented(blp, 404, 409, 412, 428)
    def write_plan(data: dict[str, Any], case_id: str) -> Any:
        """Replace the plan (the first write carries version 0)"""
        now, actor = now_and_actor()
        precondition = expected(data)
        result = sections.write_plan(request_session(), actor, case_id, data, precondition, now)
        commit()
        return with_etag(result, result["version"])


def _stages(blp: Blueprint) -> None:
    @blp.route("/cases/<case_id>/stages", methods=["GET"])
    @blp.response(200, StageListOut)
    @documented(blp, 404)
    def list_stages(case_id: str) -> Any:
        """The stages of the return process, in order"""
        now, actor = now_and_actor()
        items = stages.list_stages(request_session(), actor, case_id, node_config().stages, now)
        commit()
        return {"items": items}

    @blp.route("/cases/<case_id>/stages/<key>", methods=["GET"])
    @blp.response(200, StageOut, headers=ETAG_HEADER)
    @documented(blp, 404)
    def get_stage(case_id: str, key: str) -> Any:
        """One stage"""
        now, actor = now_and_actor()
        result = stages.get_stage(request_session(), actor, case_id, key, node_config().stages, now)
        commit()
        return with_etag(result, result["version"])

    @blp.route("/cases/<case_id>/stages/<key>", methods=["PATCH"])
    @blp.arguments(StagePatchSchema)
    @blp.response(200, StageOut, headers=ETAG_HEADER)
    @documented(blp, 404, 409, 412, 428)
    def update_stage(data: dict[str, Any], case_id: str, key: str) -> Any:
        """Change a stage's status, responsible side, notes or dates"""
        now, actor = now_and_actor()
        precondition = expected(data)
        result = stages.update_stage(request_session(), actor, case_id, key, data, precondition,
                                     node_config().stages, now)
        commit()
        return with_etag(result, result["version"])


def _consent(blp: Blueprint) -> None:
    @blp.route("/cases/<case_id>/child-safeguards", methods=["GET"])
    @blp.response(200, SafeguardsOut, headers=ETAG_HEADER)
    @documented(blp, 404)
    def get_safeguards(case_id: str) -> Any:
        """Guardian, guardian's consent, the child's views and the best-interests assessment"""
        now, actor = now_and_actor()
        result = consent.get_safeguards(request_session(), actor, case_id, now)
        commit()
        return with_etag(result, result["version"])

    @blp.route("/cases/<case_id>/child-safeguards", methods=["PUT"])
    @blp.arguments(SafeguardsWriteSchema)
    @blp.response(200, SafeguardsOut, headers=ETAG_HEADER)
    @documented(blp, 404, 409, 412, 428)
    def write_safeguards(data: dict[str, Any], case_id: str) -> Any:
        """Record the child safeguards (replaces the record; the first write carries version 0)"""
        now, actor = now_and_actor()
        precondition = expected(data)
        result = consent.write_safeguards(request_session(), actor, case_id, data, precondition, now)
        commit()
        return with_etag(result, result["version"])

    @blp.route("/cases/<case_id>/consents", methods=["GET"])
    @blp.response(200, ConsentListOut)
    @documented(blp, 404)
    def list_consents(case_id: str) -> Any:
        """The case's consent records with their computed status"""
        now, actor = now_and_actor()
        items = consent.list_consents(request_session(), actor, case_id, now)
        commit()
        return {"items": items}

    @blp.route("/cases/<case_id>/consents", methods=["POST"])
    @blp.arguments(ConsentCreateSchema)
    @blp.response(201, ConsentOut)
    @documented(blp, 404)
    def create_consent(data: dict[str, Any], case_id: str) -> Any:
        """Record a consent (minimal body: recipients, categories, purpose, method, valid_until)"""
        now, actor = now_and_actor()
        result = consent.create_consent(request_session(), actor, case_id, data, now)
        commit()
        return result

    @blp.route("/cases/<case_id>/consents/<consent_id>", methods=["GET"])
    @blp.response(200, ConsentOut)
    @documented(blp, 404)
    def get_consent(case_id: str, consent_id: str) -> Any:
        """One consent record"""
        now, actor = now_and_actor()
        result = consent.get_consent(request_session(), actor, case_id, consent_id, now)
        commit()
        return result


def _progress(blp: Blueprint) -> None:
    @blp.route("/cases/<case_id>/interventions", methods=["GET"])
    @blp.response(200, InterventionListOut)
    @documented(blp, 404)
    def list_interventions(case_id: str) -> Any:
        """The case's interventions"""
        now, actor = now_and_actor()
        items = progress.list_interventions(request_session(), actor, case_id, now)
        commit()
        return {"items": items}

    @blp.route("/cases/<case_id>/interventions", methods=["POST"])
    @blp.arguments(InterventionCreateSchema)
    @blp.response(201, InterventionOut, headers=ETAG_HEADER)
    @documented(blp, 404)
    def create_intervention(data: dict[str, Any], case_id: str) -> Any:
        """Add an intervention (education, business course, job, housing, documents, health, support...)"""
        now, actor = now_and_actor()
        item = progress.create_intervention(request_session(), actor, case_id, data, now)
        commit()
        return with_etag(item, item.version, 201)

    @blp.route("/cases/<case_id>/interventions/<intervention_id>", methods=["GET"])
    @blp.response(200, InterventionOut, headers=ETAG_HEADER)
    @documented(blp, 404)
    def get_intervention(case_id: str, intervention_id: str) -> Any:
        """One intervention"""
        now, actor = now_and_actor()
        item = progress.get_intervention(request_session(), actor, case_id, intervention_id, now)
        commit()
        return with_etag(item, item.version)

    @blp.route("/cases/<case_id>/interventions/<intervention_id>", methods=["PATCH"])
    @blp.arguments(InterventionPatchSchema)
    @blp.response(200, InterventionOut, headers=ETAG_HEADER)
    @documented(blp, 404, 409, 412, 428)
    def update_intervention(data: dict[str, Any], case_id: str, intervention_id: str) -> Any:
        """Change an intervention"""
        now, actor = now_and_actor()
        precondition = expected(data)
        item = progress.update_intervention(request_session(), actor, case_id, intervention_id, data,
                                            precondition, now)
        commit()
        return with_etag(item, item.version)

    @blp.route("/cases/<case_id>/notes", methods=["GET"])
    @blp.response(200, ProgressNoteListOut)
    @documented(blp, 404)
    def list_notes(case_id: str) -> Any:
        """The case's progress notes"""
        now, actor = now_and_actor()
        items = progress.list_notes(request_session(), actor, case_id, now)
        commit()
        return {"items": items}

    @blp.route("/cases/<case_id>/notes", methods=["POST"])
    @blp.arguments(ProgressNoteCreateSchema)
    @blp.response(201, ProgressNoteOut)
    @documented(blp, 404, 409)
    def add_note(data: dict[str, Any], case_id: str) -> Any:
        """Add a progress note, optionally changing stage statuses (each with the version read)"""
        now, actor = now_and_actor()
        note = progress.add_note(request_session(), actor, case_id, data, now)
        commit()
        return note
