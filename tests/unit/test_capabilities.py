"""The capabilities nasbox needs for what is configured: read from the kernel, and what it
says at start about the ones lacking or held in vain."""
from __future__ import annotations

import logging

from nasbox import capabilities

ALL = {"SYS_ADMIN", "DAC_READ_SEARCH", "NET_ADMIN"}
MOUNT = {"MOUNT_NAS": "/mnt/nas 10.0.0.2 backup:pw docs /"}


def test_effective_reads_capeff():
    docker_default = "Name:\tx\nCapInh:\t0000000000000000\nCapEff:\t00000000a80425fb\n"
    assert capabilities.effective(docker_default) == set()
    granted = 0xA80425FB | 1 << 21 | 1 << 2 | 1 << 12
    assert capabilities.effective(f"CapEff:\t{granted:016x}\n") == ALL
    assert capabilities.effective("no such line\n") == set()


def test_a_box_that_mounts_nothing_holds_sys_admin_in_vain(load):
    config = load({"SHARE_DOCS": "write docs /data/docs alice:a"})
    assert capabilities.report(config, ALL, None) == [
        (logging.INFO, "the container holds DAC_READ_SEARCH, which nothing configured needs: drop it from cap_add"),
        (logging.INFO, "the container holds SYS_ADMIN, which nothing configured needs: drop it from cap_add"),
    ]
    assert capabilities.report(config, {"NET_ADMIN"}, None) == []


def test_what_is_lost_without_each_capability(load, tmp_path):
    config = load({**MOUNT, "SHARE_DOCS": f"write docs {tmp_path}/docs alice:a",
                   "SYNC_DOCS": f"{tmp_path}/docs {tmp_path}/backup daily", "SYNC_DOCS_VERSIONS": "last=3"})
    assert capabilities.report(config, set(), None) == [
        (logging.WARNING, "no SYS_ADMIN and DAC_READ_SEARCH capabilities: the CIFS mounts nas cannot be mounted, "
                          "and their jobs are skipped (add SYS_ADMIN and DAC_READ_SEARCH to cap_add)"),
        (logging.WARNING, "no SYS_ADMIN capability: shares show no Previous Versions of the sync jobs docs "
                          "(add SYS_ADMIN to cap_add)"),
        (logging.WARNING, "no NET_ADMIN capability: addresses that keep failing to log in are not banned "
                          "(add NET_ADMIN to cap_add)"),
    ]
    assert capabilities.report(config, ALL, "unconfined") == []
    assert capabilities.report(config, ALL, "docker-default (enforce)") == [
        (logging.WARNING, "the AppArmor profile docker-default (enforce) forbids mounts: the CIFS mounts nas cannot "
                          "be mounted, and their jobs are skipped; shares show no Previous Versions of the sync jobs "
                          "docs (add security_opt apparmor:unconfined)"),
    ]
