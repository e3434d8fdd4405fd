"""smb.conf rendering, checked against golden files and by Samba's own testparm."""
from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from nasbox.samba import smbconf

GOLDEN = Path(__file__).parent / "golden"

CASES = {
    "minimal": {"SHARE_DOCS": "write docs /data/docs alice:a"},
    "full": {
        "NAS_NAME": "HomeNAS", "WORKGROUP": "HOME", "LOG_LEVEL": "debug",
        "SHARE_DOCS_W": "write Documents /data/docs alice:a,bob:b",
        "SHARE_DOCS_R": "read Documents /data/docs carol:c,bob",
        "SHARE_MEDIA": "read media /data/media,/data/more carol",
    },
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_render_matches_golden_file(load, case):
    rendered = smbconf.render(load(CASES[case]))
    golden = GOLDEN / f"smb-{case}.conf"
    if os.environ.get("UPDATE_GOLDEN"):
        golden.write_text(rendered)
    assert rendered == golden.read_text()


def test_yaml_only_options_render(load):
    text = smbconf.render(load(yaml_data={
        "server": {"hosts_allow": ["192.168.1.0/24", "127.0.0.1"]},
        "shares": {"tm": {"access": "write", "paths": ["/tm"], "users": ["a:b"], "comment": "Backups",
                          "time_machine": True}},
    }))
    assert "    hosts allow = 192.168.1.0/24 127.0.0.1\n" in text
    assert "    path = /tm/%u\n    comment = Backups\n" in text.split("[tm]\n")[1]
    assert "    fruit:time machine = yes\n" in text


@pytest.mark.skipif(shutil.which("testparm") is None, reason="testparm not installed (run .ci/setup)")
@pytest.mark.parametrize("case", sorted(CASES))
def test_testparm_accepts_rendering(load, tmp_path, case):
    conf = tmp_path / "smb.conf"
    smbconf.write(load(CASES[case]), conf)
    dump = subprocess.run(["testparm", "--suppress-prompt", str(conf)], capture_output=True, text=True).stdout
    # testparm prints only what differs from Samba's defaults, in its own spelling.
    assert "\tserver min protocol = SMB2\n" in dump  # SMB2 means SMB2_10
    assert "\trestrict anonymous = 2\n" in dump
    assert "\twide links" not in dump  # the default, no


def test_write_refuses_what_testparm_rejects(load, tmp_path, monkeypatch):
    conf = tmp_path / "smb.conf"
    conf.write_text("# the previous configuration\n")
    monkeypatch.setattr(smbconf, "render", lambda config, **kw: "[global]\n  no such parameter = 1\n")
    with pytest.raises(Exception, match="testparm"):
        smbconf.write(load(CASES["minimal"]), conf)
    assert conf.read_text() == "# the previous configuration\n"
    assert not (tmp_path / "smb.conf.new").exists()
