"""Notifications delivered to real servers on 127.0.0.1: an HTTP server for
webhooks, Apprise's json:// and healthchecks pings, aiosmtpd for mail."""
from __future__ import annotations

import copy
import email
import email.policy
import json
import logging
import os
import shutil
import socket
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from nasbox.actions.notify import notify_test
from nasbox.config import load_config
from nasbox.config.environment import is_nasbox_variable
from nasbox.config.model import Config
from nasbox.notify import deliver as notify  # as a module: pytest would collect test_event
from nasbox.notify.event import Event
from nasbox.result import JobResult

pytestmark = pytest.mark.host

STARTED = 1_700_000_000.0  # 2023-11-14T22:13:20+00:00
PRODUCT_BACKOFF_S = notify.BACKOFF_S  # before the fixture below sets it to 0


def free_port() -> int:
    """A port nothing listens on: connecting to it is refused."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def config_with(**environ: str) -> Config:
    return load_config({"NASBOX_CONFIG": "/dev/null", **environ})


def event(status: str = "warning", summary: str = "3 files repaired", *, phase: str = "finish",
          trigger: str = "now", skipped: bool = False) -> Event:
    result = JobResult(job="photos", kind="sync", status=status, summary=summary,
                       started=STARTED, finished=STARTED + 12.5,
                       details=["repaired a.jpg", "repaired b.jpg"], stats={"files": 3, "bytes": 4096},
                       skipped=skipped)
    return Event(phase=phase, result=result, trigger=trigger, host="testbox")


def start_event(trigger: str = "now") -> Event:
    result = JobResult(job="photos", kind="sync", status="info", summary="started",
                       started=STARTED, finished=STARTED)
    return Event(phase="start", result=result, trigger=trigger, host="testbox")


@pytest.fixture(autouse=True)
def no_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(notify, "BACKOFF_S", 0)


# --- a recording HTTP server -------------------------------------------------------------

@dataclass
class Request:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


class Recorder(ThreadingHTTPServer):
    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        self.requests: list[Request] = []
        self.statuses: list[int] = []  # the answers to the next requests; 200 after them

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.server_port}{path}"

    @property
    def paths(self) -> list[str]:
        return [r.path for r in self.requests]


class Handler(BaseHTTPRequestHandler):
    server: Recorder

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.server.requests.append(Request(self.command, self.path, dict(self.headers), body))
        self.send_response(self.server.statuses.pop(0) if self.server.statuses else 200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass  # keep the test output clean


@pytest.fixture
def http() -> Iterator[Recorder]:
    server = Recorder()
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()
    thread.join()


# --- webhook ---------------------------------------------------------------------------

def test_webhook_posts_every_contract_field(http: Recorder) -> None:
    config = config_with(NOTIFY_HOOK=f"webhook {http.url('/hook')}")
    assert notify.deliver(config, event()) == []
    [request] = http.requests
    assert (request.method, request.path) == ("POST", "/hook")
    assert request.headers["Content-Type"] == "application/json"
    subject = "[nasbox testbox] sync photos: warning"
    assert request.json() == {
        "subject": subject,
        "job": "sync photos",
        "status": "warning",
        "message": "3 files repaired",
        "details": "repaired a.jpg\nrepaired b.jpg",
        "text": f"{subject}\n3 files repaired",
        "host": "testbox",
        "started": "2023-11-14T22:13:20+00:00",
        "finished": "2023-11-14T22:13:32+00:00",
        "duration_s": 12.5,
        "stats": {"files": 3, "bytes": 4096},
    }


def test_webhook_is_retried_with_backoff(http: Recorder, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(notify, "BACKOFF_S", 0.2)
    http.statuses = [500, 500]
    config = config_with(NOTIFY_HOOK=f"webhook {http.url('/hook')}")
    began = time.monotonic()
    assert notify.deliver(config, event()) == []
    assert time.monotonic() - began >= 0.2 + 0.4
    assert http.paths == ["/hook"] * 3


def test_a_down_target_costs_bounded_time_and_changes_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(notify, "BACKOFF_S", PRODUCT_BACKOFF_S)  # the real waits: 1 s, then 2 s
    config = config_with(NOTIFY_DOWN=f"webhook http://127.0.0.1:{free_port()}/hook")
    sent = event("error", "rsync failed")
    before = copy.deepcopy(sent.result)
    began = time.monotonic()
    problems = notify.deliver(config, sent)
    assert 3 <= time.monotonic() - began < 10
    assert problems == ["down (webhook): [Errno 111] Connection refused"]
    assert sent.result == before
    assert (sent.result.status, sent.result.summary) == ("error", "rsync failed")


@pytest.mark.parametrize("answer", ["down", 500])
def test_failure_logs_name_the_target_but_not_its_token(http: Recorder, answer: str | int,
                                                        caplog: pytest.LogCaptureFixture) -> None:
    port = free_port() if answer == "down" else http.server_port
    http.statuses = [500] * 3
    config = config_with(NOTIFY_SECRET=f"webhook http://127.0.0.1:{port}/hooks/s3cr3t-t0ken?key=k3y")
    with caplog.at_level(logging.WARNING):
        problems = notify.deliver(config, event())
    assert len(problems) == 1 and len(caplog.records) == 3
    assert "secret (webhook)" in caplog.text and "http://127.0.0.1/" in caplog.text
    for text in (caplog.text, problems[0]):
        assert "s3cr3t" not in text and "k3y" not in text


# --- the on filter and the hourly parity update -------------------------------------------

def test_on_filter(http: Recorder) -> None:
    config = config_with(NOTIFY_OPS=f"webhook {http.url('/ops')} error")
    assert notify.deliver(config, event("good", "all well")) == []
    assert http.requests == []
    assert notify.deliver(config, event("error", "rsync failed")) == []
    assert [r.json()["status"] for r in http.requests] == ["error"]


def test_parity_update_notifies_only_warnings_and_errors(http: Recorder) -> None:
    config = config_with(NOTIFY_ALL=f"webhook {http.url('/all')}",
                         NOTIFY_PING=f"healthchecks {http.url('/ping')}")
    for quiet in (start_event("update"), event("good", trigger="update"), event("info", trigger="update")):
        assert notify.deliver(config, quiet) == []
    assert http.requests == []
    assert notify.deliver(config, event("warning", trigger="update")) == []
    assert sorted(http.paths) == ["/all", "/ping"]


# --- healthchecks ------------------------------------------------------------------------

@pytest.mark.parametrize(("status", "ping"), [("good", "/ping/abc"), ("info", "/ping/abc"),
                                              ("warning", "/ping/abc"), ("error", "/ping/abc/fail")])
def test_healthchecks_pings_start_then_the_outcome(http: Recorder, status: str, ping: str) -> None:
    config = config_with(NOTIFY_HC=f"healthchecks {http.url('/ping/abc')}",
                         NOTIFY_HOOK=f"webhook {http.url('/hook')}")
    assert notify.deliver(config, start_event()) == []  # the webhook hears of finishes only
    assert notify.deliver(config, event(status, "the summary")) == []
    assert http.paths == ["/ping/abc/start", ping, "/hook"]
    assert all(r.method == "POST" for r in http.requests)
    assert "Message: the summary" in http.requests[1].body.decode()


def test_healthchecks_hears_of_a_skipped_run_as_a_failure(http: Recorder) -> None:
    config = config_with(NOTIFY_HC=f"healthchecks {http.url('/ping/abc')} error")  # `on` is for messages
    assert notify.deliver(config, event("warning", "skipped: /data is missing", skipped=True)) == []
    assert notify.deliver(config, event("good", "all well")) == []
    assert http.paths == ["/ping/abc/fail", "/ping/abc"]
    assert http.requests[0].body.decode().startswith("Skipped")


def test_healthchecks_body_is_cut_to_the_services_limit(http: Recorder) -> None:
    config = config_with(NOTIFY_HC=f"healthchecks {http.url('/ping/abc')}")
    assert notify.deliver(config, event("good", "é" * 100_000)) == []
    body = http.requests[0].body
    assert 99_999 <= len(body) <= 100_000 and body.decode().startswith("Job: sync photos")


# --- apprise ------------------------------------------------------------------------------

def test_apprise_json_url_gets_title_and_body(http: Recorder) -> None:
    config = config_with(NOTIFY_APP=f"apprise json://127.0.0.1:{http.server_port}/apprise")
    sent = event()
    assert notify.deliver(config, sent) == []
    [request] = http.requests
    assert request.path == "/apprise"
    assert request.json()["title"] == sent.subject
    assert request.json()["message"] == sent.body_text().rstrip()  # Apprise trims the end
    assert request.json()["type"] == "warning"


def test_a_failing_apprise_target_is_a_problem_not_an_exception() -> None:
    config = config_with(NOTIFY_APP=f"apprise json://127.0.0.1:{free_port()}/apprise")
    [problem] = notify.deliver(config, event())
    assert problem.startswith("app (apprise): ")


# --- mailbox ------------------------------------------------------------------------------

@dataclass
class Mail:
    sender: str
    recipients: list[str]
    message: email.message.EmailMessage


class Inbox:
    """An aiosmtpd handler keeping what it receives, and the logins it accepted."""

    def __init__(self) -> None:
        self.mails: list[Mail] = []
        self.logins: list[str] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        self.mails.append(Mail(envelope.mail_from, list(envelope.rcpt_tos), message))
        return "250 OK"

    def authenticate(self, server: Any, session: Any, envelope: Any, mechanism: str,
                     data: LoginPassword) -> AuthResult:
        ok = (data.login, data.password) == (b"nas", b"pw")
        if ok:
            self.logins.append(data.login.decode())
        return AuthResult(success=ok, handled=False)  # handled=False: aiosmtpd answers 535


@pytest.fixture
def smtp_server() -> Iterator[Any]:
    """start(auth=False, **options): aiosmtpd on a free port, stopped afterwards. With auth,
    it requires a login (nas, pw), over plain text as many LAN relays allow."""
    controllers: list[Controller] = []

    def start(auth: bool = False, **options: Any) -> tuple[Inbox, int]:
        inbox, port = Inbox(), free_port()
        if auth:
            options = {"authenticator": inbox.authenticate, "auth_required": True,
                       "auth_require_tls": False, **options}
        controller = Controller(inbox, hostname="127.0.0.1", port=port, **options)
        controller.start()
        controllers.append(controller)
        return inbox, port

    yield start
    for controller in controllers:
        controller.stop()


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A self-signed certificate for 127.0.0.1 (its key beside it): clients trust it only
    when SSL_CERT_FILE names it."""
    if shutil.which("openssl") is None:
        pytest.skip("openssl is needed to make a test certificate")
    directory = tmp_path_factory.mktemp("tls")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                    "-keyout", str(directory / "key.pem"), "-out", str(directory / "cert.pem")],
                   check=True, capture_output=True)
    return directory / "cert.pem"


@pytest.fixture(scope="module")
def server_tls(certificate: Path) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(certificate, certificate.with_name("key.pem"))
    return context


def assert_mail(inbox: Inbox, sender: str, sent: Event) -> None:
    [mail] = inbox.mails
    assert mail.sender == sender and mail.recipients == ["ops@example.com"]
    assert mail.message["Subject"] == sent.subject == "[nasbox testbox] sync photos: warning"
    assert (mail.message["From"], mail.message["To"]) == (sender, "ops@example.com")
    body = mail.message.get_content().replace("\r\n", "\n")  # as it came over SMTP
    for line in ("Job: sync photos", "Status: warning", "Message: 3 files repaired",
                 "repaired a.jpg\nrepaired b.jpg"):
        assert line in body


def mail_config(port: int, security: str, **more: str) -> Config:
    return config_with(SMTP_HOST="127.0.0.1", SMTP_PORT=str(port), SMTP_SECURITY=security,
                       NOTIFY_MAIL="mailbox ops@example.com", **more)


def test_mail_without_security_or_login(smtp_server: Any) -> None:
    inbox, port = smtp_server()
    sent = event()
    assert notify.deliver(mail_config(port, "none", NAS_NAME="homenas"), sent) == []
    assert_mail(inbox, "nasbox@homenas", sent)


@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")
def test_mail_with_login(smtp_server: Any) -> None:
    inbox, port = smtp_server(auth=True)
    sent = event()
    config = mail_config(port, "none", SMTP_USER="nas", SMTP_PASSWORD="pw", SMTP_FROM="nas@example.com")
    assert notify.deliver(config, sent) == []
    assert inbox.logins == ["nas"]
    assert_mail(inbox, "nas@example.com", sent)


@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")
def test_mail_with_a_wrong_password_is_a_problem(smtp_server: Any) -> None:
    inbox, port = smtp_server(auth=True)
    config = mail_config(port, "none", SMTP_USER="nas", SMTP_PASSWORD="wrong")
    [problem] = notify.deliver(config, event())
    assert problem.startswith("mail (mailbox): (535") and "wrong" not in problem
    assert inbox.mails == []


def test_mail_with_starttls_and_login(smtp_server: Any, server_tls: ssl.SSLContext, certificate: Path,
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    inbox, port = smtp_server(tls_context=server_tls, require_starttls=True, auth=True,
                              auth_require_tls=True)
    monkeypatch.setenv("SSL_CERT_FILE", str(certificate))
    config = mail_config(port, "starttls", SMTP_USER="nas", SMTP_PASSWORD="pw", SMTP_FROM="nas@example.com")
    sent = event()
    assert notify.deliver(config, sent) == []
    assert inbox.logins == ["nas"]
    assert_mail(inbox, "nas@example.com", sent)


def test_mail_with_implicit_tls(smtp_server: Any, server_tls: ssl.SSLContext, certificate: Path,
                                monkeypatch: pytest.MonkeyPatch) -> None:
    inbox, port = smtp_server(ssl_context=server_tls)
    monkeypatch.setenv("SSL_CERT_FILE", str(certificate))
    sent = event()
    assert notify.deliver(mail_config(port, "tls", SMTP_FROM="nas@example.com"), sent) == []
    assert_mail(inbox, "nas@example.com", sent)


@pytest.mark.parametrize("security", ["starttls", "tls"])
def test_mail_refuses_an_untrusted_certificate(smtp_server: Any, server_tls: ssl.SSLContext,
                                               monkeypatch: pytest.MonkeyPatch, security: str) -> None:
    options = {"tls_context": server_tls} if security == "starttls" else {"ssl_context": server_tls}
    inbox, port = smtp_server(**options)
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    [problem] = notify.deliver(mail_config(port, security), event())
    assert "CERTIFICATE_VERIFY_FAILED" in problem
    assert inbox.mails == []


# --- nasbox notify --test ------------------------------------------------------------------

@pytest.fixture
def environment(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """The process environment with no nasbox settings but an empty configuration file."""
    for name in list(os.environ):
        if is_nasbox_variable(name.removesuffix("_FILE")):
            monkeypatch.delenv(name)
    monkeypatch.setenv("NASBOX_CONFIG", "/dev/null")
    return monkeypatch


def test_notify_test_reports_each_target(http: Recorder, environment: pytest.MonkeyPatch,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    environment.setenv("NOTIFY_WEB", f"webhook {http.url('/hook')} error")  # the test ignores `on`
    environment.setenv("NOTIFY_DOWN", f"webhook http://127.0.0.1:{free_port()}/hook")
    assert notify_test() == 1
    assert sorted(capsys.readouterr().out.splitlines()) == [
        "down (webhook): FAILED: [Errno 111] Connection refused",
        "web (webhook): delivered",
    ]
    [request] = http.requests
    assert (request.json()["job"], request.json()["status"]) == ("notify test", "info")
    assert request.json()["message"] == "nasbox test notification"


def test_notify_test_succeeds_when_all_deliver(http: Recorder, environment: pytest.MonkeyPatch,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    environment.setenv("NOTIFY_WEB", f"webhook {http.url('/hook')}")
    assert notify_test() == 0
    assert capsys.readouterr().out == "web (webhook): delivered\n"


def test_notify_test_without_targets(environment: pytest.MonkeyPatch,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    assert notify_test() == 0
    assert "no notification targets" in capsys.readouterr().out


def test_a_target_can_be_for_some_jobs_only(http: Recorder, tmp_path) -> None:
    path = tmp_path / "nasbox.yaml"
    path.write_text(f"notify: {{ping: {{type: healthchecks, target: '{http.url('/ping/big')}', jobs: [big]}}}}\n")
    config = load_config({"NASBOX_CONFIG": str(path)})
    assert notify.deliver(config, event("good", "all well")) == []  # the event is for "photos"
    assert http.requests == []
    big = Event("finish", JobResult("big", "scrub", "good", "fine", 1.0, 2.0), "scheduled", "nasbox")
    assert notify.deliver(config, big) == []
    assert http.paths == ["/ping/big"]


def test_debug_logging_does_not_print_tokens(http: Recorder) -> None:
    """With LOG_LEVEL=debug, requests' and Apprise's own debug lines would quote the URLs."""
    script = ("import sys; from nasbox.cli import main; sys.exit(main(['notify', '--test']))")
    env = {**os.environ, "NASBOX_CONFIG": "/dev/null", "LOG_LEVEL": "debug",
           "NOTIFY_HOOK": f"webhook {http.url('/hooks/T0KEN-S3CRET')}",
           "NOTIFY_APP": f"apprise json://127.0.0.1:{http.server_port}/app/T0KEN-S3CRET"}
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=60)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "T0KEN" not in out.stdout + out.stderr
    assert len(http.requests) == 2
