"""The web dashboard in the image: served on its published port by the supervised `nasbox
web`, its metrics read by prometheus_client's parser, its secrets nowhere in its answers or
the container's log."""
from __future__ import annotations

import re
import subprocess
import time

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from tests.container.helpers import USERS, Nasbox, nasbox_container, workspace
from tests.support.access_matrix import SHARE, WRITER, matrix_env

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
