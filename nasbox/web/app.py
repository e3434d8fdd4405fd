"""The dashboard's routes: pages and the JSON API behind a sign-in, actions for the
administrator (confirmed, CSRF-protected), and /metrics (open, or behind a bearer token)."""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from flask import Flask, Response, abort, g, jsonify, redirect, render_template, request

from nasbox import resources, status
from nasbox.actions.health import scheduler_alive
from nasbox.config.model import Config
from nasbox.health import smb_answers
from nasbox.history import History
from nasbox.kinds import KINDS
from nasbox.web import actions, auth, clients, metrics, pages

log = logging.getLogger(__name__)

HISTORY_RUNS = 500  # runs a job page shows
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; style-src 'self'; img-src 'self' data:; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


def create_app(config: Config) -> Flask:
    web_root = resources.templates_dir() / "web"
    app = Flask(__name__, template_folder=str(web_root), static_folder=str(web_root / "static"))
    app.config["MAX_CONTENT_LENGTH"] = 64 * 1024
    sessions = auth.Sessions()
    failures = auth.LoginFailures()
    tz = ZoneInfo(config.server.timezone)

    def history() -> History:
        if "history" not in g:
            g.history = History()
        return g.history

    @app.teardown_appcontext
    def close_history(_: BaseException | None) -> None:
        opened = g.pop("history", None)
        if opened is not None:
            opened.close()

    @app.after_request
    def secure(response: Response) -> Response:
        response.headers.update(SECURITY_HEADERS)
        return response

    def signed_in(api: bool = False) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        def wrap(view: Callable[..., Any]) -> Callable[..., Any]:
            @functools.wraps(view)
            def checked(*args: Any, **kwargs: Any) -> Any:
                g.session = sessions.get(request.cookies.get(auth.SESSION_COOKIE))
                if g.session is None:
                    return (jsonify(error="sign in first"), 401) if api else redirect("/login")
                return view(*args, **kwargs)

            return checked

        return wrap

    def action(view: Callable[..., Any]) -> Callable[..., Any]:
        """The administrator's, with the session's CSRF token; asked to confirm first."""

        @functools.wraps(view)
        def checked(*args: Any, **kwargs: Any) -> Any:
            g.session = sessions.get(request.cookies.get(auth.SESSION_COOKIE))
            if g.session is None or not g.session.admin:
                abort(403)
            if not auth.same(request.form.get("csrf", ""), g.session.csrf):
                abort(403)
            if request.form.get("confirmed") != "yes":
                return render_template("confirm.html", what=view.__doc__, form=request.path, session=g.session)
            return view(*args, **kwargs)

        return checked

    def job_or_404(kind: str, name: str) -> Any:
        if kind not in KINDS or name not in KINDS[kind].jobs(config):
            abort(404)
        return KINDS[kind].jobs(config)[name]

    @app.get("/login")
    def login_form() -> Any:
        return render_template("login.html", error=None)

    @app.post("/login")
    def login() -> Any:
        address = request.remote_addr or "0.0.0.0"
        if failures.refused(address):
            return render_template("login.html", error="too many failed sign-ins; try again later"), 429
        user, password = request.form.get("user", ""), request.form.get("password", "")
        admin = auth.role(config, user, password)
        if admin is None:
            failures.failure(address)
            log.warning("web: failed sign-in from %s", address)
            return render_template("login.html", error="wrong user name or password"), 401
        response = redirect("/")
        response.set_cookie(
            auth.SESSION_COOKIE,
            sessions.start(user, admin),
            max_age=auth.SESSION_S,
            httponly=True,
            samesite="Strict",
            secure=request.is_secure,
        )
        return response

    @app.post("/logout")
    @signed_in()
    def logout() -> Any:
        if auth.same(request.form.get("csrf", ""), g.session.csrf):
            sessions.end(request.cookies.get(auth.SESSION_COOKIE))
        response = redirect("/login")
        response.delete_cookie(auth.SESSION_COOKIE)
        return response

    @app.get("/")
    @signed_in()
    def overview() -> Any:
        return render_template(
            "overview.html",
            session=g.session,
            doc=status.document(config, history()),
            smbd=smb_answers(timeout=2),
            scheduler=scheduler_alive(),
            shares=config.shares.values(),
        )

    @app.get("/jobs/<kind>/<name>")
    @signed_in()
    def job_page(kind: str, name: str) -> Any:
        job = job_or_404(kind, name)
        runs = history().runs(kind, name, limit=HISTORY_RUNS)
        return render_template(
            "job.html",
            session=g.session,
            kind=kind,
            job=job,
            held=KINDS[kind].status(config, job).get("held"),
            charts=pages.charts(kind, runs),
            rows=pages.rows(runs, tz),
            log_tail=pages.log_tail(kind, name),
            coverage=pages.coverage(kind, runs, tz),
        )

    @app.get("/clients")
    @signed_in()
    def clients_page() -> Any:
        return render_template("clients.html", session=g.session, clients=clients.clients())

    @app.get("/api/status")
    @signed_in(api=True)
    def api_status() -> Any:
        return jsonify(status.document(config, history()))

    @app.get("/api/jobs/<kind>/<name>/history")
    @signed_in(api=True)
    def api_history(kind: str, name: str) -> Any:
        job_or_404(kind, name)
        return jsonify(pages.history_json(history().runs(kind, name)))

    @app.post("/actions/run/<kind>/<name>")
    @action
    def run_now(kind: str, name: str) -> Any:
        """Run this job now?"""
        job_or_404(kind, name)
        actions.run_now(kind, name)
        log.info("web: %s started %s %s", g.session.user, kind, name)
        return redirect(f"/jobs/{kind}/{name}")

    @app.post("/actions/release/sync/<name>")
    @action
    def release(name: str) -> Any:
        """Release this job's hold? Its next run then makes the deletions and rewrites it held back."""
        job_or_404("sync", name)
        actions.release_hold(name)
        log.info("web: %s released the hold of sync %s", g.session.user, name)
        return redirect("/")

    @app.post("/actions/notify-test")
    @action
    def notify_test() -> Any:
        """Send a test notification to every target?"""
        problems = actions.test_notification(config)
        log.info("web: %s sent a test notification", g.session.user)
        return render_template("notified.html", session=g.session, targets=config.notify, problems=problems)

    @app.get("/metrics")
    def metrics_page() -> Any:
        token = config.server.web.metrics_token
        if token is not None and not auth.same(request.headers.get("Authorization", ""), f"Bearer {token}"):
            return Response("a bearer token is required\n", 401, {"WWW-Authenticate": "Bearer"})
        found = clients.clients()
        text = metrics.exposition(
            status.document(config, history()),
            history(),
            smbd_up=smb_answers(timeout=2)[0],
            sessions=None if found.error else len(found.sessions),
        )
        return Response(text, 200, {"Content-Type": metrics.CONTENT_TYPE})

    @app.template_filter("when")
    def when(timestamp: str | None) -> str:
        return "-" if timestamp is None else datetime.fromisoformat(timestamp).strftime("%Y-%m-%d %H:%M")

    return app
