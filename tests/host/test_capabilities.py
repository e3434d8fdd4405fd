"""Capabilities as the kernel grants them, and versions on a real btrfs."""
from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest

from nasbox import capabilities
from nasbox.config import load_config

pytestmark = pytest.mark.host

REPO = Path(__file__).resolve().parents[2]


def test_held_is_what_the_kernel_grants_this_process():
    """The real /proc/self/status of a process started without SYS_ADMIN."""
    code = "from nasbox import capabilities; print(sorted(capabilities.held()))"
    argv = ["setpriv", "--inh-caps=-sys_admin", "--bounding-set=-sys_admin", sys.executable, "-c", code]
    if os.geteuid() != 0 or "SYS_ADMIN" not in capabilities.held():
        pytest.fail("run as root with SYS_ADMIN: this test drops it for a child")
    result = subprocess.run(argv, capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(REPO)})
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "['DAC_READ_SEARCH', 'NET_ADMIN']"


def test_versions_kept_as_btrfs_snapshots_need_sys_admin(tmp_path):
    image, backup = tmp_path / "btrfs.img", tmp_path / "backup"
    backup.mkdir()
    subprocess.run(["truncate", "-s", "128M", str(image)], check=True)
    subprocess.run(["mkfs.btrfs", "-q", str(image)], check=True, capture_output=True)
    subprocess.run(["mount", "-o", "loop", str(image), str(backup)], check=True)
    try:
        config = load_config({
            "NASBOX_CONFIG": "/dev/null",
            "SYNC_DOCS": f"{tmp_path}/docs {backup}/docs daily", "SYNC_DOCS_VERSIONS": "last=3",
            "SYNC_PLAIN": f"{tmp_path}/docs {tmp_path}/plain daily", "SYNC_PLAIN_VERSIONS": "last=3",
        })
        assert capabilities.report(config, {"NET_ADMIN"}, None) == [
            (logging.WARNING, "no SYS_ADMIN capability: old versions of the sync jobs docs, btrfs snapshots, cannot "
                              "be removed (add SYS_ADMIN to cap_add)"),
        ]
    finally:
        subprocess.run(["umount", str(backup)], check=False)
