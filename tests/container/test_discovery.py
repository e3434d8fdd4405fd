"""Found on the network, first-class for Macs: real clients on a Docker network of the test's
own (mDNS and WS-Discovery ignore loopback).

- A client container from the image's base probes as Windows does (WS-Discovery Probe, then
  the device's metadata) and browses as a Mac does (python-zeroconf: `_smb._tcp`, `_adisk._tcp`,
  `_device-info._tcp`); the host, on the same bridge, asks for the NetBIOS name. A box with
  discovery off on the same network answers none of them.
- Samba's torture suite for Apple clients against a Time Machine share, and against stock
  Samba with the same fruit settings in the same run.
- The recycle bin of a share with two users: each user's deletions are kept.
"""
from __future__ import annotations

import json
import os
import re
import subprocess
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.container.helpers import CAPS, DEFAULT_UID, NAME_PREFIX, REPO_ROOT, Nasbox, docker, nasbox_container, workspace
from tests.container.test_torture import passed, stock_samba, torture, why
from tests.support.smbclient import output, smbclient

pytestmark = pytest.mark.container

CLIENT_IMAGE = "nasbox-test-discovery-client"
PROBES = REPO_ROOT / "tests" / "support" / "discovery"
PROBE_SECONDS = 5
DEFAULT_GID = DEFAULT_UID  # PGID's default, 1000


@pytest.fixture(scope="module")
def client_image(image: str) -> str:
    build = docker("build", "-q", "-t", CLIENT_IMAGE, str(PROBES), timeout=900)
    if build.returncode != 0:
        pytest.fail(f"docker build of the discovery client failed:\n{build.stdout}{build.stderr}", pytrace=False)
    return CLIENT_IMAGE


@pytest.fixture
def network() -> Iterator[str]:
    """A bridge network of the test's own: only its containers (and the host's end) are on it."""
    name = f"{NAME_PREFIX}net-{uuid.uuid4().hex[:8]}"
    created = docker("network", "create", name)
    assert created.returncode == 0, created.stderr
    try:
        yield name
    finally:
        docker("network", "rm", name)


def configure(ws_config: Path, data: dict[str, Any]) -> None:
    (ws_config / "nasbox.yaml").write_text(yaml.safe_dump(data))


def address(box: Nasbox, network: str) -> str:
    return box.inspect()["NetworkSettings"]["Networks"][network]["IPAddress"]


def probe(network: str, script: str) -> Any:
    """Run a probe of tests/support/discovery in a client container on the network."""
    result = docker("run", "--rm", "--network", network, CLIENT_IMAGE, "python3", f"/probes/{script}",
                    str(PROBE_SECONDS), timeout=120)
    assert result.returncode == 0, f"{script}:\n{result.stdout}{result.stderr}"
    return json.loads(result.stdout)


def nmblookup(address: str, name: str) -> str:
    """A NetBIOS name query sent to address from the host, which is on the same bridge."""
    result = subprocess.run(["nmblookup", "--configfile=/dev/null", "-U", address, name],
                            capture_output=True, text=True, timeout=60)
    return result.stdout + result.stderr


def test_announced_to_clients_on_the_network_and_silent_when_off(client_image, network):
    loud = {
        "server": {"name": "HomeNAS", "workgroup": "HOME", "discovery": ["wsd", "mdns", "netbios"]},
        "users": {"alice": {"password": "pw-a"}},
        "shares": {"docs": {"access": "write", "paths": ["/data/docs"], "users": ["alice"]},
                   "backups": {"access": "write", "paths": ["/data/other"], "users": ["alice"],
                               "time_machine": True}},
    }
    quiet = {"server": {"name": "QuietNAS", "workgroup": "HOME"}, "users": loud["users"],
             "shares": {"docs": loud["shares"]["docs"]}}
    with workspace() as loud_ws, workspace() as quiet_ws:
        configure(loud_ws.config, loud)
        configure(quiet_ws.config, quiet)
        # No cap_add for the announcing box; the quiet one gets what compose used to grant.
        with nasbox_container(loud_ws, {}, "loud", caps=[], network=network) as loud_box, \
                nasbox_container(quiet_ws, {}, "quiet", caps=CAPS, network=network) as quiet_box:
            loud_ip, quiet_ip = address(loud_box, network), address(quiet_box, network)
            wsd = probe(network, "wsd_probe.py")
            mdns = probe(network, "mdns_probe.py")
            netbios = nmblookup(loud_ip, "HOMENAS"), nmblookup(quiet_ip, "QUIETNAS")
            loud_log, quiet_log = loud_box.logs(), quiet_box.logs()

    # Windows: a ProbeMatch from the announcing box alone, and its name and workgroup in the
    # metadata Explorer reads.
    assert set(wsd) == {loud_ip}, wsd
    assert "<pub:Computer>HOMENAS/Workgroup:HOME</pub:Computer>" in wsd[loud_ip]["metadata"], wsd
    # Macs: the SMB service on port 445, the model, and the Time Machine share.
    by_type = {entry["type"]: entry for entry in mdns}
    assert sorted(entry["name"] for entry in mdns) == [
        "HomeNAS._adisk._tcp.local.", "HomeNAS._device-info._tcp.local.", "HomeNAS._smb._tcp.local."], mdns
    smb = by_type["_smb._tcp.local."]
    assert (smb["port"], smb["server"], smb["addresses"]) == (445, "HomeNAS.local.", [loud_ip])
    assert by_type["_device-info._tcp.local."]["txt"] == ["model=RackMac"]
    assert by_type["_adisk._tcp.local."]["txt"] == ["dk0=adVN=backups,adVF=0x82", "sys=waMa=0,adVF=0x100"]
    # Old clients: the NetBIOS name, from the box that was asked for it.
    assert re.search(rf"^{re.escape(loud_ip)} HOMENAS<00>$", netbios[0], re.MULTILINE), netbios[0]
    assert "name_query failed to find name QUIETNAS" in netbios[1], netbios[1]

    # Each daemon's log on stdout; the warning that a bridge keeps announcements off the LAN.
    for line in ("avahi-daemon 0.8 starting up", "nmbd version", "INFO success: wsdd2 entered RUNNING state",
                 "discovery is on, but this container is on a Docker bridge network"):
        assert line in loud_log, loud_log
    assert "discovery" not in quiet_log.lower()
    # What each box says of its capabilities.
    assert "no NET_ADMIN capability: addresses that keep failing to log in are not banned" in loud_log
    assert "holds SYS_ADMIN" not in loud_log
    assert "the container holds SYS_ADMIN, which nothing configured needs: drop it from cap_add" in quiet_log
    assert "the container holds DAC_READ_SEARCH, which nothing configured needs" in quiet_log


# What Time Machine needs of a share beside the fruit settings, copied to stock Samba's share too.
SHARE_KEYS = ("durable handles", "kernel oplocks", "kernel share modes", "posix locking")
# smbtorture checks the AAPL answer against Samba's defaults (its capabilities and the length of
# the model name) and tests nothing of Apple's protocol past a mismatch: with nasbox's own fruit
# settings it runs the subtests that need no AAPL; with these, passed through samba_options to
# nasbox and written alike for stock Samba, the rest of vfs.fruit and Time Machine's size limit.
AS_SMBTORTURE_EXPECTS = {"fruit:model": "MacSamba", "fruit:nfs_aces": "yes", "fruit:copyfile": "yes"}


def fruit_settings(smb_conf: str, share: str) -> tuple[list[str], list[str]]:
    """The lines of nasbox's smb.conf that configure vfs_fruit: [global]'s and the share's."""
    sections = {part.split("]", 1)[0]: part for part in smb_conf.split("\n[")}
    pick = re.compile(r"^\s+((?:fruit:\S.*|vfs objects|ea support|" + "|".join(SHARE_KEYS) + r") = .*)$", re.MULTILINE)
    return pick.findall(sections["global"]), pick.findall(sections[share])


@pytest.mark.parametrize(("fruit_options", "suites"), [
    ({}, ("vfs.fruit",)),
    (AS_SMBTORTURE_EXPECTS, ("vfs.fruit", "vfs.fruit_timemachine")),
], ids=["nasbox-fruit", "aapl-as-smbtorture-expects"])
def test_time_machine_share_passes_the_fruit_torture_as_stock_samba_does(smbtorture_installed, fruit_options,
                                                                         suites):
    user, password = "alice", "torture-pw-1"
    data = {"server": {"samba_options": fruit_options},
            "users": {user: {"password": password}},
            "shares": {"tm": {"access": "write", "paths": ["/data/docs"], "users": [user], "time_machine": True,
                              "time_machine_max_size": "32K"}}}
    with workspace() as nasbox_ws, workspace() as stock_ws:
        configure(nasbox_ws.config, data)
        with nasbox_container(nasbox_ws, {}, "fruit-torture") as nasbox:
            served = nasbox.exec("cat", "/etc/samba/smb.conf").stdout
            glob, share = fruit_settings(served, "tm")
            assert "fruit:time machine = yes" in share and "fruit:time machine max size = 32K" in share
            stock_conf = "\n".join(["[global]", "    server role = standalone server", *(f"    {g}" for g in glob),
                                    "[tm]", "    path = /data/docs", "    read only = no",
                                    *(f"    {s}" for s in share), ""])
            with stock_samba(stock_ws, stock_conf) as stock, ThreadPoolExecutor(max_workers=2) as pool:
                (stock_outcomes, stock_text), (nasbox_outcomes, nasbox_text) = pool.map(
                    lambda box: torture(box, suites, share="tm"), (stock, nasbox))
            assert (nasbox_ws.docs / user).is_dir()  # the share the suite used: the user's own folder

    for suite in suites:
        assert any(name.startswith(f"{suite}.") for name in passed(stock_outcomes)), \
            f"stock Samba passed nothing of {suite}:\n{stock_text[-3000:]}"
    lost = sorted(passed(stock_outcomes) - passed(nasbox_outcomes))
    assert not lost, (
        f"nasbox's Time Machine share passes {len(lost)} fruit subtests fewer than stock Samba "
        f"({len(passed(nasbox_outcomes))} against {len(passed(stock_outcomes))}):\n"
        + "\n".join(f"  {name}: {why(name, nasbox_text)}" for name in lost))


@pytest.fixture(scope="module")
def smbtorture_installed() -> None:
    if subprocess.run(["which", "smbtorture"], capture_output=True).returncode != 0:
        pytest.fail("smbtorture is not installed (Debian package samba-testsuite; run .ci/setup)", pytrace=False)


def test_recycle_bin_keeps_what_every_user_of_the_share_deletes(tmp_path):
    """Samba moves a deleted file as the user who deletes it: the bin must take every user's."""
    data = {"users": {"alice": {"password": "pw-a"}, "bob": {"password": "pw-b"}},
            "shares": {"docs": {"access": "write", "paths": ["/data/other"], "users": ["alice", "bob"],
                                "recycle": "30d"}}}
    (tmp_path / "a.txt").write_text("alice's\n")
    (tmp_path / "b.txt").write_text("bob's\n")
    with workspace() as ws:
        configure(ws.config, data)
        os.chown(ws.other, 0, DEFAULT_GID)  # a folder both may write: the group every user has
        ws.other.chmod(0o2775)
        with nasbox_container(ws, {}, "recycle", caps=[]) as box:
            server = box.server()
            for user, password, name in (("alice", "pw-a", "a.txt"), ("bob", "pw-b", "b.txt")):
                make = "mkdir Shared; " if user == "alice" else ""  # alice's folder, and the bin's
                result = smbclient(server, "docs", user, password,
                                   f"{make}put {tmp_path / name} Shared/{name}; del Shared/{name}")
                assert result.returncode == 0 and "NT_STATUS" not in result.stdout, output(result) + box.logs()
            kept = ws.other / ".nasbox-recycle" / "Shared"
            assert sorted(p.name for p in kept.iterdir()) == ["a.txt", "b.txt"], box.logs()
            assert (kept / "b.txt").read_text() == "bob's\n"
            assert not list((ws.other / "Shared").iterdir())
