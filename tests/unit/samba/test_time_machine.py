"""Time Machine shares: the settings Time Machine needs, its size limit, and a folder of each
user's own (PATH/%u, made at start, mode 0700)."""
from __future__ import annotations

import os
import shutil
import subprocess

import pytest

from nasbox.samba import smbconf, time_machine
from nasbox.samba.previous_versions import shown_versions


def tm_share(path: str, **more) -> dict:
    return {"shares": {"tm": {"access": "write", "paths": [path], "users": ["alice:a", "bob:b"],
                              "time_machine": True, **more}}}


def test_rendering_gives_each_user_a_folder_and_what_time_machine_needs(load, tmp_path):
    text = smbconf.render(load(yaml_data=tm_share(f"{tmp_path}/tm", time_machine_max_size="500G")))
    share = text.split("\n[tm]\n")[1]
    assert f"    path = {tmp_path}/tm/%u\n" in share
    for line in ("fruit:time machine = yes", "fruit:time machine max size = 500G", "durable handles = yes",
                 "kernel oplocks = no", "kernel share modes = no", "posix locking = no"):
        assert f"    {line}\n" in share


@pytest.mark.skipif(shutil.which("testparm") is None, reason="testparm not installed (run .ci/setup)")
def test_testparm_reads_the_per_user_path(load, tmp_path):
    conf = tmp_path / "smb.conf"
    smbconf.write(load(yaml_data=tm_share(f"{tmp_path}/tm")), conf)
    dump = subprocess.run(["testparm", "--suppress-prompt", str(conf)], capture_output=True, text=True).stdout
    assert f"\tpath = {tmp_path}/tm/%u\n" in dump


def test_only_the_user_macro_escapes_the_percent_rule(load, tmp_path):
    config = load(yaml_data=tm_share(f"{tmp_path}/tm"))
    unsafe = config.shares["tm"].__class__(**{**config.shares["tm"].__dict__, "path": f"{tmp_path}/%S"})
    with pytest.raises(smbconf.UnsafeValue, match="'%'"):
        smbconf.render(config.__class__(**{**config.__dict__, "shares": {"tm": unsafe}}))


def test_problems(problems, tmp_path):
    found = problems(yaml_data={"shares": {
        "plain": {"access": "write", "paths": [f"{tmp_path}/p"], "users": ["alice:a"], "time_machine_max_size": "1T"},
        "tm": {"access": "write", "paths": [f"{tmp_path}/tm"], "users": ["alice"], "time_machine": True,
               "time_machine_max_size": "500 GB"},
    }})
    assert found == [
        "nasbox.yaml: shares.tm.time_machine_max_size: expected a size such as 500G or 2T (K, M, G or T), "
        "got '500 GB'",
        "nasbox.yaml: shares.plain.time_machine_max_size: expected time_machine: true beside it",
    ]


def test_prepare_makes_private_folders_and_leaves_existing_ones(load, tmp_path, caplog):
    share = tmp_path / "tm"
    (share / "bob").mkdir(parents=True, mode=0o755)
    config = load(yaml_data=tm_share(str(share)))
    time_machine.prepare(config, {"alice": 4001, "bob": 4002}, gid=4343)
    st = os.stat(share / "alice")
    assert (st.st_uid, st.st_gid, st.st_mode & 0o7777) == (4001, 4343, 0o700)
    assert os.stat(share / "bob").st_mode & 0o7777 == 0o755  # existing: never chowned or chmodded
    assert f"share tm: {share}/bob (owner 0, mode 755) is not bob's alone (uid 4002, mode 700)" in caplog.text


def test_a_time_machine_share_shows_no_previous_versions(load, tmp_path):
    config = load({"SYNC_TM": f"{tmp_path}/tm {tmp_path}/backup daily", "SYNC_TM_VERSIONS": "last=3"},
                  tm_share(f"{tmp_path}/tm"))
    assert shown_versions(config.shares["tm"], config) is None
