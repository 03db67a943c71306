"""Signing in and out, the second factor, and a user's own account: password, TOTP and language."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, current_app, flash, g, redirect, render_template, request, session, url_for
from flask_babel import gettext as _
from werkzeug.wrappers import Response

from node.accounts import MIN_PASSWORD_LENGTH, AccountError, check_password, set_password
from node.audit import record
from node.db import request_session

from . import login
from .forms import FORM
from .guard import SESSION_KEY, actor, safe_next
from .i18n import COOKIE, SUPPORTED

PENDING_SECRET = "totp_pending"  # noqa: S105 - the session key the enrolment secret waits under


def make_blueprint() -> Blueprint:
    blp = Blueprint("web_account", __name__)
    blp.add_url_rule("/login", view_func=login_page, methods=["GET", "POST"], endpoint="login")
    blp.add_url_rule("/login/code", view_func=second_factor, methods=["GET", "POST"])
    blp.add_url_rule("/account/two-factor", view_func=enrol_totp, methods=["GET", "POST"])
    blp.add_url_rule("/logout", view_func=logout, methods=["POST"])
    blp.add_url_rule("/account", view_func=account, methods=["GET"])
    blp.add_url_rule("/account/password", view_func=change_password, methods=["POST"])
    blp.add_url_rule("/account/two-factor/off", view_func=turn_off_totp, methods=["POST"])
    blp.add_url_rule("/language", view_func=set_language, methods=["POST"])
    return blp


def _now() -> Any:
    return current_app.extensions["ccm"].clock.now()


def _go_on() -> Response:
    target = session.pop("after_login", None)
    return redirect(target if safe_next(target) else url_for("web_home.home"))


def login_page() -> Any:
    if g.get("web_user") is not None and not g.web_session.second_factor_due:
        return redirect(url_for("web_home.home"))
    errors: dict[str, list[str]] = {}
    status = 200
    username = ""
    if request.method == "POST":
        username = request.form.get("username", "").strip()
        password = request.form.get("password", "")
        db = request_session()
        try:
            user = login.authenticate(db, username, password, request.remote_addr or "", _now())
        except login.LoginRefused as refused:
            db.commit()  # the failure counts
            if refused.throttled:
                minutes = max(1, (refused.retry_after + 59) // 60)
                errors[FORM] = [_("Too many failed sign-ins. Try again in %(minutes)s minutes.", minutes=minutes)]
                status = 429
            else:
                errors[FORM] = [_("The username or password is not right.")]
                status = 401
        else:
            token = login.start_session(db, user, _now(), request.remote_addr)
            db.commit()
            next_path = request.args.get("next")
            session.clear()
            session[SESSION_KEY] = token
            if safe_next(next_path):
                session["after_login"] = next_path
            if login.needs_second_factor(user):
                return redirect(url_for("web_account.second_factor"))
            if login.must_enrol(user):
                return redirect(url_for("web_account.enrol_totp"))
            return _go_on()
    response = current_app.make_response(render_template(
        "account/login.html", errors=errors, username=username, expired=request.args.get("expired") == "1"))
    response.status_code = status
    if status == 429:
        response.headers["Retry-After"] = "900"
    return response


def second_factor() -> Any:
    if not g.web_session.second_factor_due:
        return _go_on()
    errors: dict[str, list[str]] = {}
    if request.method == "POST":
        db = request_session()
        user = db.merge(g.web_user)
        wait = login.throttled_for(db, user.username, request.remote_addr or "", _now())
        if wait:
            errors["code"] = [_("Too many failed sign-ins. Try again in %(minutes)s minutes.",
                                minutes=max(1, (wait + 59) // 60))]
        elif login.check_second_factor(user, request.form.get("code", ""), _now()):
            login.passed_second_factor(db.merge(g.web_session))
            db.commit()
            return _go_on()
        else:
            db.add(login.LoginFailure(username=user.username, address=(request.remote_addr or "unknown")[:64],
                                      at=_now()))
            db.commit()
            errors["code"] = [_("That code is not right or was used already. Enter the current 6-digit code.")]
        return render_template("account/second_factor.html", errors=errors), 401 if "code" in errors else 200
    return render_template("account/second_factor.html", errors=errors)


def enrol_totp() -> Any:
    user = g.web_user
    if user.totp_secret is not None:
        return redirect(url_for("web_account.account"))
    secret = session.get(PENDING_SECRET)
    if not isinstance(secret, str):
        secret = login.new_totp_secret()
        session[PENDING_SECRET] = secret
    errors: dict[str, list[str]] = {}
    if request.method == "POST":
        db = request_session()
        row = db.merge(user)
        if login.enrol_second_factor(row, secret, request.form.get("code", ""), _now()):
            record(db, actor=actor(), action="update", object_type="user", object_id=str(row.id), case_id=None,
                   now=_now(), detail={"fields": ["totp"]})
            db.commit()
            session.pop(PENDING_SECRET, None)
            flash(_("Two-step sign-in is on. You will be asked for a code each time you sign in."), "success")
            return _go_on()
        errors["code"] = [_("That code is not right. Enter the 6-digit code your app shows now.")]
    config = current_app.extensions["ccm"].config
    grouped = " ".join(secret[i:i + 4] for i in range(0, len(secret), 4))
    qr_svg = login.totp_qr_svg(user, secret, config.name)
    return render_template("account/enrol_totp.html", errors=errors, qr_svg=qr_svg, secret=grouped,
                           required=login.must_enrol(user)), 422 if errors else 200


def logout() -> Response:
    token = session.get(SESSION_KEY)
    db = request_session()
    if isinstance(token, str):
        login.end_session(db, token)
        record(db, actor=actor(), action="logout", object_type="user", object_id=str(g.web_user.id), case_id=None,
               now=_now())
        db.commit()
    session.clear()
    flash(_("You have signed out."), "success")
    return redirect(url_for("web_account.login"))


def account() -> Any:
    return render_template("account/account.html", errors={}, min_length=MIN_PASSWORD_LENGTH)


def change_password() -> Any:
    errors: dict[str, list[str]] = {}
    db = request_session()
    user = db.merge(g.web_user)
    current = request.form.get("current_password", "")
    new = request.form.get("new_password", "")
    if not check_password(user, current):
        errors["current_password"] = [_("This is not your current password.")]
    elif new != request.form.get("confirm_password", ""):
        errors["confirm_password"] = [_("The two new passwords are not the same.")]
    else:
        try:
            set_password(user, new)
        except AccountError:
            errors["new_password"] = [_("Use at least %(count)s characters.", count=MIN_PASSWORD_LENGTH)]
    if errors:
        db.rollback()
        return render_template("account/account.html", errors=errors, min_length=MIN_PASSWORD_LENGTH), 422
    login.end_user_sessions(db, user.id, keep=g.web_session)
    record(db, actor=actor(), action="update", object_type="user", object_id=str(user.id), case_id=None,
           now=_now(), detail={"fields": ["password"]})
    db.commit()
    flash(_("Your password is changed. Your other sessions were signed out."), "success")
    return redirect(url_for("web_account.account"))


def turn_off_totp() -> Any:
    db = request_session()
    user = db.merge(g.web_user)
    if user.role == "admin" or user.totp_required:
        flash(_("Two-step sign-in is required for your account and cannot be turned off."), "error")
        return redirect(url_for("web_account.account"))
    user.totp_secret = None
    user.totp_last_step = None
    record(db, actor=actor(), action="update", object_type="user", object_id=str(user.id), case_id=None,
           now=_now(), detail={"fields": ["totp"]})
    db.commit()
    flash(_("Two-step sign-in is off."), "success")
    return redirect(url_for("web_account.account"))


def set_language() -> Response:
    choice = request.form.get("language", "")
    target = request.form.get("next")
    response = redirect(target if safe_next(target) else url_for("web_home.home"))
    if choice not in SUPPORTED:
        return response
    user = g.get("web_user")
    if user is not None:
        db = request_session()
        db.merge(user).language = choice
        db.commit()
    response.set_cookie(COOKIE, choice, max_age=365 * 24 * 3600, httponly=True, samesite="Lax",
                        secure=request.is_secure)
    return response
