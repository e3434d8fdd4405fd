"""/metrics, read back with prometheus_client's own parser."""
from __future__ import annotations

from collections.abc import Callable

from flask.testing import FlaskClient
from prometheus_client.parser import text_string_to_metric_families

from nasbox.config import Config
from nasbox.web.app import create_app
from tests.support.web import METRICS_TOKEN


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def test_metrics_carry_each_jobs_numbers_and_no_paths(client: FlaskClient, tmp_path):
    answer = client.get("/metrics")
    assert answer.status_code == 200 and answer.headers["Content-Type"].startswith("text/plain")
    found = samples(answer.text)
    scrub, sync = (("job", "backup"), ("kind", "scrub")), (("job", "docs"), ("kind", "sync"))
    assert found[("nasbox_job_last_run_repaired_files", scrub)] == 1
    assert found[("nasbox_job_last_run_unrepairable_files", scrub)] == 0
    assert found[("nasbox_job_last_run_bytes", scrub)] == 4096
    assert found[("nasbox_job_last_run_files", sync)] == 4
    assert found[("nasbox_job_last_run_duration_seconds", sync)] == 12.5
    assert found[("nasbox_job_last_run_status", (*scrub, ("status", "warning")))] == 1
    assert found[("nasbox_job_last_run_status", (*scrub, ("status", "good")))] == 0
    assert found[("nasbox_job_held", sync)] == 1 and found[("nasbox_job_held", scrub)] == 0
    last_start = found[("nasbox_job_last_run_start_timestamp_seconds", sync)]
    assert found[("nasbox_job_next_run_timestamp_seconds", sync)] > last_start
    assert found[("nasbox_smbd_up", ())] in (0, 1)
    sizes = [labels for name, labels in found if name == "nasbox_filesystem_size_bytes"]
    assert sizes and all(dict(labels)["holds"].startswith("share data") for labels in sizes)
    assert str(tmp_path) not in answer.text and "alice" not in answer.text


def test_a_metrics_token_is_required_once_configured(load: Callable[..., Config], seeded: Config):
    config = load({"WEB_ADMIN_PASSWORD": "x", "WEB_METRICS_TOKEN": METRICS_TOKEN})
    client = create_app(config).test_client()
    assert client.get("/metrics").status_code == 401
    assert client.get("/metrics", headers={"Authorization": "Bearer wrong"}).status_code == 401
    answer = client.get("/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"})
    assert answer.status_code == 200 and METRICS_TOKEN not in answer.text
    assert samples(answer.text)[("nasbox_smbd_up", ())] in (0, 1)
