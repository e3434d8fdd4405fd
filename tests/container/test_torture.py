"""Compatibility with Samba's own torture suite: every subtest that stock Samba passes must
pass against nasbox's share too.

Both servers are the same image, so the same Samba build: nasbox as it runs, and its smbd
started by hand with a minimal smb.conf (a share, `read only = no`) and the same user. A
subtest that passes on stock and fails on nasbox is a difference made by nasbox's
configuration. smbtorture (Debian's samba-testsuite) runs on the host against both
published ports at once.
"""
from __future__ import annotations

import re
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager

import pytest
from testcontainers.core.container import DockerContainer

from tests.container.helpers import DEFAULT_UID, IMAGE, NAME_PREFIX, Nasbox, Workspace, nasbox_container, workspace

pytestmark = pytest.mark.container

USER, PASSWORD = "alice", "torture-pw-1"
SHARE = "docs"
# Quick and about what clients do all day: opening, reading, locking, metadata, share modes,
# oplocks. smb2.oplock is the slow one (about two minutes, mostly break timeouts).
SUITES = ("smb2.connect", "smb2.read", "smb2.rw", "smb2.getinfo", "smb2.lock", "smb2.create",
          "smb2.sharemode", "smb2.delete-on-close-perms", "smb2.rename", "smb2.ioctl", "smb2.session",
          "smb2.oplock")
TORTURE_TIMEOUT_S = 900
# Subtests stock Samba passes that nasbox refuses on purpose, and why.
INTENDED = {
    "smb2.session.bind_negative_smb202": "SMB 2.02 is below nasbox's minimum protocol, SMB 2.1",
    "smb2.session.reauth2": "re-authenticating as anonymous: nasbox refuses anonymous access",
    "smb2.session.reauth3": "re-authenticating as anonymous: nasbox refuses anonymous access",
}
STOCK_SMB_CONF = f"""[global]
    server role = standalone server
[{SHARE}]
    path = /data/docs
    read only = no
"""
# The image's smbd with nothing of nasbox: an account, its Samba password (read from a file,
# never from argv), smbd in the foreground.
STOCK_START = f"""set -e
useradd --uid {DEFAULT_UID} --no-create-home {USER}
(cat /stock/password; cat /stock/password) | smbpasswd -c /stock/smb.conf -s -a {USER}
exec smbd --foreground --no-process-group --debug-stdout -s /stock/smb.conf
"""
OUTCOME = re.compile(r"^(success|failure|error|skip|xfail|uxsuccess): (.+?)(?: \[)?$")


@contextmanager
def stock_samba(ws: Workspace, smb_conf: str = STOCK_SMB_CONF) -> Iterator[Nasbox]:
    """The image's smbd with a minimal smb.conf serving ws.docs; the same container handling
    as a nasbox container."""
    stock = ws.root / "stock"
    stock.mkdir()
    (stock / "smb.conf").write_text(smb_conf)
    (stock / "start").write_text(STOCK_START)
    (stock / "password").write_text(PASSWORD + "\n")
    container = (
        DockerContainer(IMAGE)
        .with_name(f"{NAME_PREFIX}stock-samba-{uuid.uuid4().hex[:8]}")
        .with_kwargs(entrypoint=["sh", "/stock/start"])
        .with_bind_ports(445)
        .with_volume_mapping(str(stock), "/stock", "ro")
        .with_volume_mapping(str(ws.docs), "/data/docs", "rw")
    )
    try:
        container.start()
        box = Nasbox(container, ws)
        box.wait_ready()
        yield box
    finally:
        container.stop()


def torture(box: Nasbox, tests: tuple[str, ...] = SUITES, share: str = SHARE) -> tuple[dict[str, str], str]:
    """Run tests (suites or single subtests) against box's share: each subtest's outcome, and
    smbtorture's whole output."""
    argv = ["smbtorture", "--configfile=/dev/null", "--fullname", f"//127.0.0.1/{share}",
            "-p", str(box.port()), "-U", f"{USER}%{PASSWORD}", *tests]
    result = subprocess.run(argv, capture_output=True, text=True, timeout=TORTURE_TIMEOUT_S)
    text = result.stdout + result.stderr
    return {m.group(2): m.group(1) for m in map(OUTCOME.match, text.splitlines()) if m}, text


def why(name: str, text: str) -> str:
    """The first line smbtorture gave for a subtest's failure."""
    found = re.search(rf"^(?:failure|error): {re.escape(name)} \[\n(.*)$", text, re.MULTILINE)
    return found.group(1).strip() if found else "no outcome reported"


def passed(outcomes: dict[str, str]) -> set[str]:
    return {name for name, outcome in outcomes.items() if outcome == "success"}


@pytest.fixture(scope="module")
def smbtorture() -> None:
    if shutil.which("smbtorture") is None:
        pytest.fail("smbtorture is not installed (Debian package samba-testsuite; run .ci/setup)", pytrace=False)


def test_nasbox_passes_every_torture_subtest_stock_samba_passes(smbtorture: None) -> None:
    env = {f"USER_{USER.upper()}": f"{USER}:{PASSWORD}", "SHARE_DOCS": f"write {SHARE} /data/docs {USER}"}
    with workspace() as nasbox_ws, workspace() as stock_ws, \
            nasbox_container(nasbox_ws, env, "torture") as nasbox, stock_samba(stock_ws) as stock, \
            ThreadPoolExecutor(max_workers=2) as pool:  # both at once: the run is mostly waiting
        (stock_outcomes, stock_text), (nasbox_outcomes, nasbox_text) = pool.map(torture, (stock, nasbox))
        lost = tuple(sorted(passed(stock_outcomes) - passed(nasbox_outcomes) - INTENDED.keys()))
        if lost:  # once more, alone: a difference nasbox's configuration makes comes back every time
            again, nasbox_text = torture(nasbox, lost)
            lost = tuple(name for name in lost if again.get(name) != "success")

    for suite in SUITES:  # a suite stock does not pass at all would compare nothing
        assert any(name == suite or name.startswith(f"{suite}.") for name in passed(stock_outcomes)), \
            f"stock Samba passed nothing of {suite}:\n{stock_text[-3000:]}"
    assert not lost, (
        f"nasbox passes {len(lost)} torture subtests fewer than stock Samba "
        f"({len(passed(nasbox_outcomes))} against {len(passed(stock_outcomes))}):\n"
        + "\n".join(f"  {name}: {why(name, nasbox_text)}" for name in lost))
