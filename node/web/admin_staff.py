"""The node admin's staff pages: the list, adding a member, changing role and team, disabling and enabling,
resetting a password, requiring TOTP, and a member's API tokens (listed, revocable).

The views call ``node.staff`` (as ``ccm-node user ...`` does); a refusal comes back as a field message. A
generated password is shown once, in the answer to the form that made it (never put in a flash message, which
would travel in the session cookie). Disabling an account or resetting its password ends its browser sessions.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, current_app, flash, g, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from node.accounts import MIN_PASSWORD_LENGTH, ROLES
from node.db import request_session
from node.errors import NotFound
from node.staff import (
    StaffError,
    add_staff,
    change_role_team,
    get_user,
    list_staff,
    require_totp,
    reset_password,
    revoke_user_token,
    set_active,
    user_tokens,
)

from .forms import FORM
from .guard import actor, permitted
from .labels import ROLE_NAMES
from .login import end_user_sessions

PERMISSION = "user.manage"

#: a refusal's code, as the page says it
MESSAGES = {
    "username_invalid": _l("Use 2 to 63 characters: lower-case letters, digits, dots, dashes or underscores, "
                           "starting with a letter or digit."),
    "username_taken": _l("This username is already taken."),
    "username_missing": _l("Enter a username."),
    "role_unknown": _l("Choose one of the roles."),
    "password_short": _l("The password must have at least %(n)s characters.", n=MIN_PASSWORD_LENGTH),
    "team_long": _l("The team name can have at most 64 characters."),
    "last_admin": _l("This is the node's last active administrator: add another administrator first."),
    "self_disable": _l("You cannot disable your own account."),
    "no_such_user": _l("There is no such staff member."),
    "no_such_token": _l("There is no such token for this staff member."),
}


def make_blueprint() -> Blueprint:
    blp = Blueprint("web_admin_staff", __name__)
    blp.add_url_rule("/admin/staff", endpoint="staff_list", view_func=staff_list, methods=["GET"])
    blp.add_url_rule("/admin/staff/new", endpoint="add", view_func=add, methods=["GET", "POST"])
    blp.add_url_rule("/admin/staff/<int:user_id>", endpoint="edit", view_func=edit, methods=["GET", "POST"])
    blp.add_url_rule("/admin/staff/<int:user_id>/disable", endpoint="disable", view_func=disable, methods=["POST"])
    blp.add_url_rule("/admin/staff/<int:user_id>/enable", endpoint="enable", view_func=enable, methods=["POST"])
    blp.add_url_rule("/admin/staff/<int:user_id>/password", endpoint="reset_password", view_func=password,
                     methods=["POST"])
    blp.add_url_rule("/admin/staff/<int:user_id>/totp", endpoint="require_totp", view_func=totp, methods=["POST"])
    blp.add_url_rule("/admin/staff/<int:user_id>/tokens", endpoint="tokens", view_func=tokens, methods=["GET"])
    blp.add_url_rule("/admin/staff/<int:user_id>/tokens/<int:token_id>/revoke", endpoint="revoke_token",
                     view_func=revoke, methods=["POST"])
    return blp


def _now() -> Any:
    return current_app.extensions["ccm"].clock.now()


def _refusal(exc: StaffError) -> dict[str, list[str]]:
    return {exc.field: [str(MESSAGES.get(exc.code, exc.code))]}


def _roles() -> list[tuple[str, str]]:
    return [(role, str(ROLE_NAMES[role])) for role in ROLES]


@permitted(PERMISSION)
def staff_list() -> Any:
    db = request_session()
    rows = list_staff(db)
    db.rollback()
    return render_template("admin/staff_list.html", staff=rows, me=actor().user_id)


@permitted(PERMISSION)
def add() -> Any:
    values: dict[str, Any] = {"totp_required": True}
    errors: dict[str, list[str]] = {}
    if request.method == "POST":
        form = request.form
        values = {key: form.get(key, "").strip() for key in ("username", "display_name", "role", "team")}
        values["totp_required"] = "totp_required" in form
        typed = form.get("password", "")
        if not values["username"]:
            errors["username"] = [str(MESSAGES["username_missing"])]
        if values["role"] not in ROLES:
            errors["role"] = [str(MESSAGES["role_unknown"])]
        if typed and len(typed) < MIN_PASSWORD_LENGTH:
            errors["password"] = [str(MESSAGES["password_short"])]
        if not errors:
            db = request_session()
            try:
                user, made = add_staff(db, actor(), username=values["username"].lower(), role=values["role"],
                                       now=_now(), display_name=values["display_name"] or None,
                                       team=values["team"] or None, password=typed or None, generate=not typed,
                                       totp_required=values["totp_required"])
                db.commit()
            except StaffError as exc:
                db.rollback()
                errors = _refusal(exc)
            else:
                return render_template("admin/staff_added.html", member=user, password=made)
    return render_template("admin/staff_new.html", values=values, errors=errors, roles=_roles()), \
        422 if errors else 200


def _edit_page(user_id: int, *, values: dict[str, Any] | None = None,
               errors: dict[str, list[str]] | None = None, status: int = 200) -> Any:
    db = request_session()
    try:
        member = get_user(db, user_id)
    except StaffError:
        raise NotFound("No such staff member.") from None
    page = render_template("admin/staff_edit.html", member=member, roles=_roles(), me=actor().user_id,
                           values=values or {"role": member.role, "team": member.team or ""},
                           errors=errors or {})
    db.rollback()
    return page, status


@permitted(PERMISSION)
def edit(user_id: int) -> Any:
    if request.method == "GET":
        return _edit_page(user_id)
    values = {"role": request.form.get("role", "").strip(), "team": request.form.get("team", "").strip()}
    db = request_session()
    try:
        change_role_team(db, actor(), user_id, role=values["role"], team=values["team"] or None, now=_now())
        db.commit()
    except StaffError as exc:
        db.rollback()
        if exc.code == "no_such_user":
            return _edit_page(user_id)  # the 404 page
        return _edit_page(user_id, values=values, errors=_refusal(exc), status=422)
    flash(_("Role and team saved."), "success")
    return redirect(url_for("web_admin_staff.edit", user_id=user_id))


def _set_active(user_id: int, active: bool) -> Any:
    db = request_session()
    try:
        set_active(db, actor(), user_id, active, _now())
        if not active:
            end_user_sessions(db, user_id)
        db.commit()
    except StaffError as exc:
        db.rollback()
        return _edit_page(user_id, errors=_refusal(exc), status=409 if exc.code != "no_such_user" else 404)
    flash(_("The account is enabled.") if active else
          _("The account is disabled: its sign-ins, sessions and API tokens no longer work."), "success")
    return redirect(url_for("web_admin_staff.edit", user_id=user_id))


@permitted(PERMISSION)
def disable(user_id: int) -> Any:
    return _set_active(user_id, False)


@permitted(PERMISSION)
def enable(user_id: int) -> Any:
    return _set_active(user_id, True)


@permitted(PERMISSION)
def password(user_id: int) -> Any:
    typed = request.form.get("password", "")
    db = request_session()
    try:
        made = reset_password(db, actor(), user_id, typed or None, _now())
        # every session of the user ends (an admin resetting their own keeps the one they are using)
        end_user_sessions(db, user_id, keep=g.web_session if user_id == actor().user_id else None)
        db.commit()
    except StaffError as exc:
        db.rollback()
        return _edit_page(user_id, errors=_refusal(exc), status=422 if exc.code != "no_such_user" else 404)
    return render_template("admin/staff_password.html", member=get_user(db, user_id), password=made)


@permitted(PERMISSION)
def totp(user_id: int) -> Any:
    required = request.form.get("required") == "1"
    db = request_session()
    try:
        require_totp(db, actor(), user_id, required, _now())
        db.commit()
    except StaffError:
        db.rollback()
        return _edit_page(user_id)
    flash(_("Two-step sign-in is now required for this account.") if required else
          _("Two-step sign-in is no longer required for this account."), "success")
    return redirect(url_for("web_admin_staff.edit", user_id=user_id))


def _tokens_page(user_id: int, errors: dict[str, list[str]] | None = None, status: int = 200) -> Any:
    db = request_session()
    try:
        member, rows = user_tokens(db, user_id)
    except StaffError:
        raise NotFound("No such staff member.") from None
    page = render_template("admin/staff_tokens.html", member=member, tokens=rows, now=_now(), errors=errors or {})
    db.rollback()
    return page, status


@permitted(PERMISSION)
def tokens(user_id: int) -> Any:
    return _tokens_page(user_id)


@permitted(PERMISSION)
def revoke(user_id: int, token_id: int) -> Any:
    db = request_session()
    try:
        revoke_user_token(db, actor(), token_id, _now(), user_id=user_id)
        db.commit()
    except StaffError as exc:
        db.rollback()
        return _tokens_page(user_id, errors={FORM: _refusal(exc)[exc.field]}, status=404)
    flash(_("Token %(id)s revoked: it no longer works.", id=token_id), "success")
    return redirect(url_for("web_admin_staff.tokens", user_id=user_id))
