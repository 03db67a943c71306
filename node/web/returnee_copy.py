"""The returnee's copy: a PDF of their case summary and plan, in their language, for the counsellor to hand over.

``/cases/<id>/returnee-copy`` shows a small form (the language to print in, by default the returnee's own:
the first of the case's languages the interface speaks, else the counsellor's); sending it (POST, or GET with
``?language=``) answers the PDF as a download named by the case reference only. The content comes from
:func:`node.cases.returnee_copy.returnee_copy` (audited as an export); its HTML is rendered with every label
in the chosen language and turned into a PDF by WeasyPrint in memory: nothing is written to disk, and
WeasyPrint may fetch nothing (no URL, no file) besides the fonts fontconfig finds (Debian's ``fonts-noto-core``
and ``fonts-dejavu-core``).
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

import flask_babel
from babel import Locale
from flask import Blueprint, Response, render_template, request
from flask_babel import lazy_gettext as _l

from node.cases import services
from node.cases.returnee_copy import copy_language, returnee_copy
from node.config import DEFAULT_STAGES
from node.db import request_session
from node.exchange.worklist import partner_choices

from . import consent_labels, intake_summary
from .case_labels import config, country_name, now, template_helpers
from .guard import actor, permitted
from .i18n import NAMES, SUPPORTED

STYLESHEET = Path(__file__).parent / "static" / "returnee_copy.css"
FIELD = "language"
#: the default stages' titles, translated; a node's own stage titles ([[stages]] in node.toml) stay as written
STAGE_TITLES = {
    "documents": _l("Personal documents in the country of origin"),
    "housing": _l("Housing in the country of origin"),
    "education": _l("Education or further training"),
    "employment": _l("Employment or own business"),
    "journey": _l("Practical preparations and the journey"),
    "arrival": _l("Arrival and reception"),
    "reintegration": _l("Reintegration support"),
    "follow_up": _l("Follow-up and closing"),
}
_DEFAULT_TITLES = dict(DEFAULT_STAGES)


def make_blueprint() -> Blueprint:
    blp = Blueprint("web_returnee_copy", __name__)
    blp.context_processor(template_helpers)
    blp.add_url_rule("/cases/<case_id>/returnee-copy", endpoint="returnee_copy", view_func=returnee_copy_page,
                     methods=["GET", "POST"])
    return blp


@permitted("case.read")
def returnee_copy_page(case_id: str) -> Any:
    chosen = request.form.get(FIELD, "") if request.method == "POST" else request.args.get(FIELD)
    if chosen is None:  # the page itself: the form
        return _form(case_id, None, {})
    chosen = chosen.strip()
    if chosen not in SUPPORTED:
        return _form(case_id, chosen, {FIELD: [_l("Choose one of the languages in the list.")]})
    return _download(case_id, chosen)


def _form(case_id: str, typed: str | None, errors: dict[str, list[Any]]) -> Any:
    db = request_session()
    case = services.get_case(db, actor(), case_id, now())
    db.commit()
    fallback = str(flask_babel.get_locale() or "en")
    default = copy_language(case.languages, SUPPORTED, fallback)
    context = {"case": case, "errors": errors, "values": {FIELD: typed if typed is not None else default},
               "choices": [(code, NAMES[code]) for code in SUPPORTED], "default_language": default}
    return render_template("returnee_copy/form.html", **context), 422 if errors else 200


def _download(case_id: str, lang: str) -> Response:
    db = request_session()
    document = returnee_copy(db, actor(), case_id, config().stages, now(), partner_names=dict(partner_choices(db)))
    db.commit()
    html = document_html(document, lang)
    pdf = render_pdf(html)
    filename = f"{document['case'].reference}-returnee-copy-{lang}.pdf"
    return Response(pdf, mimetype="application/pdf",
                    headers={"Content-Disposition": f'attachment; filename="{filename}"'})


def document_html(document: dict[str, Any], lang: str) -> str:
    """The copy's HTML with every label, date and country name in ``lang``."""
    direction = Locale.parse(lang).text_direction
    with flask_babel.force_locale(lang):
        return render_template(
            "returnee_copy/document.html", **document, lang=lang, text_dir=direction,
            stage_title=stage_title, country_name=country_name, node_name=config().name,
            categories=consent_labels.CATEGORIES, purposes=consent_labels.PURPOSES,
            consent_statuses=consent_labels.CONSENT_STATUSES, kinds=intake_summary.INTERVENTION_KINDS,
            activity_statuses=intake_summary.INTERVENTION_STATUSES)


def stage_title(key: str, configured: str) -> str:
    """A stage's title in the page's language when the node uses the default title, else as configured."""
    if key in STAGE_TITLES and _DEFAULT_TITLES.get(key) == configured:
        return str(STAGE_TITLES[key])
    return configured


def render_pdf(html: str) -> bytes:
    """The PDF of ``html``, made in memory. WeasyPrint's URL fetcher refuses everything: the document needs
    no image, stylesheet or font from outside (its stylesheet is passed as text)."""
    from weasyprint import CSS, HTML  # imported on first use: loading pango takes a moment

    pdf: bytes = HTML(string=html, url_fetcher=_fetch_nothing).write_pdf(
        stylesheets=[CSS(string=_stylesheet(), url_fetcher=_fetch_nothing)])
    return pdf


@cache
def _stylesheet() -> str:
    return STYLESHEET.read_text(encoding="utf-8")


def _fetch_nothing(url: str, *_args: Any, **_kwargs: Any) -> dict[str, Any]:
    raise ValueError("the returnee copy fetches nothing")
