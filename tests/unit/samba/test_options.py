"""Samba options passed through (`server.samba_options`, `shares.ID.samba_options`): looked up
in Samba's own parameter table, refused where they would break what nasbox promises, written
after nasbox's own lines, and read by testparm at start and by `config check`."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from nasbox.samba import options, smbconf

pytestmark = pytest.mark.skipif(shutil.which("testparm") is None, reason="testparm not installed (run .ci/setup)")

REPO = Path(__file__).resolve().parents[3]
SHARE = {"access": "write", "paths": ["/data/docs"], "users": ["alice:a"]}


def with_options(server: dict | None = None, share: dict | None = None) -> dict:
    data: dict = {"shares": {"docs": {**SHARE, **({"samba_options": share} if share is not None else {})}}}
    if server is not None:
        data["server"] = {"samba_options": server}
    return data


def test_table_reads_scopes_types_enums_and_synonyms():
    table = options.parse_table(
        "[local]\n"
        "guest ok=P_BOOL, (synonyms: public)\n"
        "public=P_BOOL,FLAG_SYNONYM (synonym of guest ok)\n"
        "writeable=P_BOOLREV,FLAG_SYNONYM (inverse synonym of read only)\n"
        "csc policy=P_ENUM,manual|documents|programs|disable,\n"
        "[global]\n"
        "smb ports=P_CMDLIST,\n"
    )
    assert table["guestok"] == options.Parameter("guest ok", "local", "P_BOOL")
    assert table["public"].name == "guest ok"
    assert table["writeable"] == options.Parameter("read only", "local", "P_BOOLREV")
    assert table["cscpolicy"].values == ("manual", "documents", "programs", "disable")
    assert table["smbports"].scope == "global"


@pytest.mark.parametrize(("section", "name", "value", "why"), [
    # who reaches a share, whatever the spelling Samba accepts
    ("share", "path", "/etc", "paths, users and access"),
    ("share", "Valid  USERS", "bob", "paths, users and access"),
    ("share", "writeable", True, "Samba reads it as 'read only'"),
    ("share", "force user", "root", "paths, users and access"),
    ("share", "admin users", "alice", "paths, users and access"),
    ("share", "public", True, "Samba reads it as 'guest ok'"),
    ("share", "guest only", True, "no guest"),
    ("global", "map to guest", "Bad User", "no guest"),
    ("global", "usershare max shares", 10, "has not checked"),
    # SMB1, weaker authentication
    ("global", "min protocol", "NT1", "Samba reads it as 'server min protocol'"),
    ("global", "server min protocol", "SMB2_02", "SMB 2.1 or newer"),
    ("global", "server min protocol", "default", "SMB 2.1 or newer"),
    ("global", "ntlm auth", "yes", "NTLMv2 only"),
    ("global", "lanman auth", True, "NTLMv2 only"),
    ("global", "restrict anonymous", 0, "no guest"),
    # programs, often run as root
    ("share", "root preexec", "/bin/sh -c id", "run a program"),
    ("share", "preexec", "touch /tmp/x", "run a program"),
    ("share", "magic script", "run.sh", "run a program"),
    ("global", "add user script", "/bin/true", "run a program"),
    ("global", "passwd program", "/bin/true", "run a program"),
    ("global", "panic action", "/bin/sh", "run a program"),
    ("share", "virusfilter:infected file command", "/bin/rm", "run a program"),
    # other configuration, smbd's own files, its log
    ("global", "include", "/tmp/more.conf", "has not checked"),
    ("share", "copy", "other", "has not checked"),
    ("global", "config file", "/tmp/smb.conf", "has not checked"),
    ("global", "lock directory", "/tmp", "where nasbox keeps them"),
    ("global", "private dir", "/tmp", "where nasbox keeps them"),
    ("global", "log file", "/etc/passwd", "login ban"),
    ("global", "logging", "file", "login ban"),
    ("global", "debug encryption", True, "keys or passwords"),
    # links, hidden folders, nasbox's own keys
    ("share", "wide links", True, "through links"),
    ("global", "unix extensions", True, "real links on disk"),
    ("global", "allow insecure wide links", True, "through links"),
    ("share", "veto files", "/nothing/", "hides its own folders"),
    ("share", "printable", True, "no printers"),
    ("global", "netbios name", "OTHER", "server.name"),
    ("global", "log level", 10, "server.log_level"),
    ("global", "smb ports", 139, "port 445"),
    ("global", "multicast dns register", True, "server.discovery"),
    ("share", "fruit:time machine", True, "time_machine"),
    ("share", "shadow:snapdir", "/etc", "versions of sync jobs"),
    ("share", "recycle:repository", "/tmp", "recycle"),
    ("share", "vfs objects", "widelinks", "refused module widelinks"),
    ("share", "vfs object", "catia fruit streams_xattr fake_perms", "refused module fake_perms"),
])
def test_refused_options_name_the_reason(section, name, value, why):
    problem = options.problem(name, value, section, options.parameter_table())
    assert problem is not None and problem.startswith("refused")
    assert why in problem


@pytest.mark.parametrize(("section", "name", "value", "why"), [
    ("global", "no such option", "1", "Samba has no such option (misspelled?)"),
    ("share", "browsable ", "no", None),  # trailing space: Samba ignores it, and so does the lookup
    ("share", "browsabel", "no", "Samba has no such option"),
    ("share", "server string", "x", "a server-wide option"),
    ("share", "browseable", "maybe", "expected true or false"),
    ("share", "csc policy", "sometimes", "expected one of manual, documents, programs, disable"),
    ("share", "max connections", "lots", "expected a whole number"),
    ("share", "create mask", "0999", "expected an octal mode"),
    ("global", "server string", "%h's files", "'%' (Samba expands %-macros)"),
    ("global", "server min protocol", "SMB3", None),
    ("global", "ntlm auth", "disabled", None),
    ("share", "vfs objects", "full_audit catia fruit streams_xattr", None),
    ("share", "fruit:resource", "file", None),
])
def test_unknown_and_badly_formed_options(section, name, value, why):
    problem = options.problem(name, value, section, options.parameter_table())
    assert problem == why if why is None else why in problem


def test_options_come_after_nasbox_lines_and_modules_above_nasbox_modules(load):
    config = load(yaml_data=with_options(
        server={"server string": "Family files", "vfs objects": "full_audit", "smb2 leases": False},
        share={"browseable": False, "vfs objects": "acl_xattr catia fruit streams_xattr", "fruit:resource": "file"},
    ))
    text = smbconf.render(config)
    glob, share = text.split("\n[docs]\n")
    assert glob.index("server string = nasbox (nasbox)") < glob.index("    server string = Family files\n")
    assert "    smb2 leases = no\n" in glob  # YAML booleans as Samba writes them
    assert "    vfs objects = full_audit catia fruit streams_xattr\n" in glob
    assert share.index("browseable = yes") < share.index("    browseable = no\n")
    assert "    vfs objects = full_audit acl_xattr catia fruit streams_xattr\n" in share
    assert share.rstrip().endswith("fruit:resource = file")
    assert smbconf.check(config) is None


def test_problems_name_every_option_with_its_place(problems):
    found = problems(yaml_data=with_options(
        server={"public": True, "aio read size": "lots", "server string": "ok"},
        share={"root preexec": "/bin/id", "browsabel": "no"},
    ))
    # Shares are checked after the server, whose web section needs the users: the order is theirs.
    assert sorted(found) == sorted([
        "nasbox.yaml: server.samba_options.public: refused (Samba reads it as 'guest ok'): nasbox lets no guest "
        "or anonymous user in",
        "nasbox.yaml: server.samba_options.aio read size: Samba refuses the value: testparm exited 1: "
        "set_variable_helper(lots): value is not a valid size specifier! | Error loading services.",
        "nasbox.yaml: shares.docs.samba_options.browsabel: Samba has no such option (misspelled?); module options "
        "are written module:option",
        "nasbox.yaml: shares.docs.samba_options.root preexec: refused: it makes smbd run a program (as root, for "
        "several such options)",
    ])


def test_items_of_one_share_agree_on_options(problems):
    data = with_options(share={"browseable": False})
    data["shares"]["docs_readers"] = {**SHARE, "name": "docs", "access": "read", "users": ["bob:b"],
                                      "samba_options": {"browseable": True}}
    assert problems(yaml_data=data) == [
        "nasbox.yaml: shares.docs_readers.samba_options: expected the same samba_options as the share of the "
        "same name in nasbox.yaml: shares.docs",
    ]


def run_check(tmp_path: Path, data: dict) -> subprocess.CompletedProcess[str]:
    conf = tmp_path / "nasbox.yaml"
    conf.write_text(yaml.safe_dump(data))
    env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "PYTHONPATH": str(REPO), "NASBOX_CONFIG": str(conf),
           "NASBOX_HOME": os.environ["NASBOX_HOME"]}
    return subprocess.run([sys.executable, "-m", "nasbox", "config", "check"], capture_output=True, text=True,
                          env=env, timeout=60)


def test_config_check_exits_78_on_a_refused_or_misspelled_option(tmp_path):
    assert run_check(tmp_path, with_options(share={"browseable": False})).returncode == 0
    for option, said in (({"guest ok": True}, "guest ok: refused"), ({"browsabel": False}, "no such option")):
        result = run_check(tmp_path, with_options(share=option))
        assert result.returncode == 78, result.stderr
        assert said in result.stderr


def test_testparm_reads_the_whole_file(load, monkeypatch):
    """Options that testparm takes one by one may still clash: the whole file is read too."""
    config = load(yaml_data=with_options(share={"browseable": False}))
    monkeypatch.setattr(smbconf, "render", lambda config, **kw: "[global]\n    fooo = 1\n")
    assert "Unknown parameter" in smbconf.check(config)
