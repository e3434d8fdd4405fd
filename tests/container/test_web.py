"""The web dashboard in the image: served on its published port by the supervised `nasbox
web`, its metrics read by prometheus_client's parser, its secrets nowhere in its answers or
the container's log."""
from __future__ import annotations

import re
import subprocess
import sys
import time

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from tests.container.helpers import CAPS, USERS, Nasbox, client_netns, nasbox_container, workspace
from tests.container.test_login_ban import ENV as BAN_ENV
from tests.container.test_login_ban import logs_in
from tests.support.access_matrix import SHARE, WRITER, matrix_env
from tests.support.smbclient import Server

pytestmark = pytest.mark.container

ADMIN_PASSWORD = "Web-adm1n-pw"
METRICS_TOKEN = "Web-metr1cs-token"
ENV = {**matrix_env(USERS, "/data/docs", "/data/other"),
       "WEB_ADMIN_PASSWORD": ADMIN_PASSWORD, "WEB_METRICS_TOKEN": METRICS_TOKEN}


def web_base(box: Nasbox) -> str:
    port = int(box.container.get_docker_client().port(box.container.get_container_id(), 8080))
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            requests.get(f"{base}/login", timeout=2)
            return base
        except requests.ConnectionError:
            if time.monotonic() > deadline:
                pytest.fail(f"the dashboard did not answer on {base}; log:\n{box.logs()}")
            time.sleep(0.3)


def test_dashboard_metrics_and_api_in_the_container() -> None:
    with workspace() as ws, nasbox_container(ws, ENV, "web", extra_ports=(8080,)) as box:
        base = web_base(box)
        assert requests.get(f"{base}/metrics", timeout=10).status_code == 401
        metrics = requests.get(f"{base}/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"}, timeout=10)
        assert metrics.status_code == 200
        samples = {s.name: s.value for f in text_string_to_metric_families(metrics.text) for s in f.samples}
        assert samples["nasbox_smbd_up"] == 1
        assert samples["nasbox_smb_sessions"] == 0
        assert "nasbox_filesystem_size_bytes" in samples

        session = requests.Session()
        assert session.post(f"{base}/login", data={"user": "admin", "password": "wrong"}, timeout=10).status_code == 401
        signed = session.post(f"{base}/login", data={"user": "admin", "password": ADMIN_PASSWORD}, timeout=10)
        assert signed.status_code == 200 and "Health" in signed.text  # followed to the overview
        assert re.search(r'id="health-smbd">smbd: answering', signed.text)
        status = session.get(f"{base}/api/status", timeout=10).json()
        assert status["shares"] and {j["kind"] for j in status["jobs"]} <= {"sync", "scrub"}
        assert session.get(f"{base}/clients", timeout=10).status_code == 200

        answers = metrics.text + signed.text + str(status)
        log = box.logs()
        for secret in (ADMIN_PASSWORD, METRICS_TOKEN):
            assert secret not in answers and secret not in log
        # A client that stays connected (smbclient waits for commands) and holds a file open.
        (ws.docs / "open.txt").write_text("held open\n")
        client = subprocess.Popen(
            ["smbclient", "-p", str(box.port()), "-U", f"{WRITER[0]}%{WRITER[1]}", f"//127.0.0.1/{SHARE}"],
            stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, text=True)
        try:
            deadline = time.monotonic() + 20
            while "nasbox_smb_sessions 1.0" not in session.get(f"{base}/metrics", timeout=10, headers={
                    "Authorization": f"Bearer {METRICS_TOKEN}"}).text:
                assert time.monotonic() < deadline, "the connected client never showed in the metrics"
                time.sleep(0.5)
            clients = session.get(f"{base}/clients", timeout=10).text
            assert f"<td>{WRITER[0]}</td>" in clients and f"<td>{SHARE}</td>" in clients
        finally:
            client.communicate("exit\n", timeout=10)

        argv = box.exec("sh", "-c", "for f in /proc/[0-9]*/cmdline; do tr '\\0' ' ' < $f; echo; done")
        assert ADMIN_PASSWORD not in argv.stdout and "nasbox web" in argv.stdout


# A sign-in from the client's own network namespace (the host's Python, nothing in the client
# image needed): prints the HTTP status.
SIGN_IN = """
import sys, urllib.error, urllib.parse, urllib.request
data = urllib.parse.urlencode({"user": "admin", "password": sys.argv[2]}).encode()
try:
    print(urllib.request.urlopen(sys.argv[1], data, timeout=10).status)
except urllib.error.HTTPError as e:
    print(e.code)
except OSError:
    print(0)
"""


def sign_in_from(netns: str, url: str, password: str) -> int:
    result = subprocess.run(["nsenter", f"--net={netns}", sys.executable, "-c", SIGN_IN, url, password],
                            capture_output=True, text=True, timeout=30)
    return int(result.stdout.strip() or 0)


def test_wrong_web_passwords_ban_the_address_from_smb_too() -> None:
    env = {**BAN_ENV, "WEB_ADMIN_PASSWORD": ADMIN_PASSWORD}
    with workspace() as ws, nasbox_container(ws, env, "web-ban", caps=[*CAPS, "NET_ADMIN"]) as box, \
            client_netns() as netns:
        smb = Server(box.address(), 445, netns=netns)
        url = f"http://{box.address()}:8080/login"
        assert logs_in(smb)
        deadline = time.monotonic() + 30
        while (status := sign_in_from(netns, url, "wrong")) == 0:  # the dashboard is still starting
            assert time.monotonic() < deadline, box.logs()
            time.sleep(0.5)
        statuses = [status] + [sign_in_from(netns, url, "wrong") for _ in range(4)]
        assert statuses == [401] * 5
        assert sign_in_from(netns, url, ADMIN_PASSWORD) == 429  # the dashboard refuses the address
        deadline = time.monotonic() + 30
        while logs_in(smb):  # and smbd's ban takes the failures in within its check interval
            assert time.monotonic() < deadline, f"never banned from SMB; log:\n{box.logs()}"
            time.sleep(1)
        assert "after 5 failed logins" in box.logs()
        assert logs_in(box.server())  # only that address
        assert ADMIN_PASSWORD not in box.logs()
