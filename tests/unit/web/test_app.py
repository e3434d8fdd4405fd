"""The dashboard through Flask's test client: sign-in, pages, API, actions and their guards."""
from __future__ import annotations

import json
import re

from flask.testing import FlaskClient

from nasbox import state
from nasbox.samba import login_ban
from nasbox.sync.engine import Holds
from tests.support.web import ADMIN_PASSWORD, SECRETS, VIEWER_PASSWORD, csrf_of
from tests.unit.web.conftest import sign_in

ACTIONS = ["/actions/run/sync/docs", "/actions/release/sync/docs", "/actions/notify-test"]


def test_pages_and_api_need_a_session(client: FlaskClient):
    for path in ("/", "/jobs/sync/docs", "/clients"):
        answer = client.get(path)
        assert answer.status_code == 302 and answer.headers["Location"] == "/login"
    for path in ("/api/status", "/api/jobs/sync/docs/history"):
        assert client.get(path).status_code == 401


def test_session_cookie_is_httponly_and_samesite(client: FlaskClient):
    answer = client.post("/login", data={"user": "admin", "password": ADMIN_PASSWORD})
    cookie = answer.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie
    assert ADMIN_PASSWORD not in cookie


def test_wrong_password_is_refused_and_counts_toward_the_ban(client: FlaskClient):
    for _ in range(login_ban.MAX_FAILURES):
        answer = client.post("/login", data={"user": "admin", "password": "wrong"})
        assert answer.status_code == 401 and "Set-Cookie" not in answer.headers
    # the ban that guards smbd is told of each failure
    assert login_ban.take_reported_failures() == ["127.0.0.1"] * login_ban.MAX_FAILURES
    refused = client.post("/login", data={"user": "admin", "password": ADMIN_PASSWORD})
    assert refused.status_code == 429 and "Set-Cookie" not in refused.headers


def test_a_user_who_is_no_viewer_cannot_sign_in(client: FlaskClient, seeded):
    assert client.post("/login", data={"user": "bob", "password": VIEWER_PASSWORD}).status_code == 401
    assert client.post("/login", data={"user": "alice", "password": ADMIN_PASSWORD}).status_code == 401


def test_overview_shows_the_hold_the_repair_and_the_admin_buttons(client: FlaskClient):
    sign_in(client, "admin", ADMIN_PASSWORD)
    page = client.get("/").text
    assert 'id="held-docs"' in page and "would delete 900 of 1000 files" in page
    assert "1 file repaired: photo.jpg" in page
    assert 'id="release-docs"' in page and 'id="run-sync-docs"' in page and 'id="notify-test"' in page


def test_a_viewer_sees_but_has_no_buttons_and_may_not_act(client: FlaskClient):
    csrf = sign_in(client, "alice", VIEWER_PASSWORD)
    page = client.get("/").text
    assert 'id="held-docs"' in page
    assert "<button type=\"submit\" id=" not in page
    for path in ACTIONS:
        assert client.post(path, data={"csrf": csrf, "confirmed": "yes"}).status_code == 403
    assert Holds(state.state_dir()).get("docs") is not None


def test_actions_without_a_session_or_with_a_bad_csrf_token_are_refused(client: FlaskClient):
    for path in ACTIONS:
        assert client.post(path, data={"confirmed": "yes"}).status_code == 403
    csrf = sign_in(client, "admin", ADMIN_PASSWORD)
    for path in ACTIONS:
        assert client.post(path, data={"confirmed": "yes"}).status_code == 403
        assert client.post(path, data={"csrf": csrf[:-1] + "x", "confirmed": "yes"}).status_code == 403
    assert Holds(state.state_dir()).get("docs") is not None


def test_release_asks_first_then_releases(client: FlaskClient):
    csrf = sign_in(client, "admin", ADMIN_PASSWORD)
    asked = client.post("/actions/release/sync/docs", data={"csrf": csrf})
    assert asked.status_code == 200 and 'id="confirm"' in asked.text
    assert Holds(state.state_dir()).get("docs") is not None
    done = client.post("/actions/release/sync/docs", data={"csrf": csrf_of(asked.text), "confirmed": "yes"})
    assert done.status_code == 302
    assert Holds(state.state_dir()).get("docs") is None
    assert 'id="held-docs"' not in client.get("/").text


def test_job_page_charts_every_run(client: FlaskClient):
    sign_in(client, "admin", ADMIN_PASSWORD)
    page = client.get("/jobs/sync/docs").text
    charts = re.findall(r"<svg class=\"chart\".*?</svg>", page, re.S)
    assert len(charts) == 3
    assert all(chart.count("<circle") == 5 for chart in charts)
    assert page.count("<tr><td>") == 5
    assert client.get("/jobs/sync/nope").status_code == 404
    assert client.get("/jobs/nokind/docs").status_code == 404


def test_a_scrub_jobs_page_shows_its_parity_coverage(client: FlaskClient):
    sign_in(client, "admin", ADMIN_PASSWORD)
    coverage = re.search(r'<section class="card" id="coverage">(.*?)</section>', client.get("/jobs/scrub/backup").text,
                         re.S)
    assert coverage is not None
    assert "40 files protected by 2.0 MiB of parity" in coverage.group(1)
    assert re.search(r"least recently verified was verified \d{4}-\d\d-\d\d \d\d:\d\d", coverage.group(1))
    assert 'id="coverage"' not in client.get("/jobs/sync/docs").text


def test_api_status_is_the_status_document_and_history_lists_runs(client: FlaskClient):
    sign_in(client, "alice", VIEWER_PASSWORD)
    doc = client.get("/api/status").get_json()
    assert {"login_ban", "shares", "mounts", "jobs", "filesystems"} <= set(doc)
    docs = next(j for j in doc["jobs"] if j["name"] == "docs")
    assert docs["held"] == "the run would delete 900 of 1000 files"
    runs = client.get("/api/jobs/scrub/backup/history").get_json()
    assert runs[0]["stats"]["repaired"] == 1 and runs[0]["status"] == "warning"


def test_no_secret_in_any_page_answer_or_metric(client: FlaskClient):
    answers = [client.get("/login").text, client.get("/metrics").text]
    sign_in(client, "admin", ADMIN_PASSWORD)
    for path in ("/", "/jobs/sync/docs", "/jobs/scrub/backup", "/clients", "/api/status",
                 "/api/jobs/sync/docs/history", "/metrics"):
        answer = client.get(path)
        assert answer.status_code == 200, path
        answers.append(answer.text + json.dumps(dict(answer.headers)))
    for secret in SECRETS:
        assert not any(secret in text for text in answers)
