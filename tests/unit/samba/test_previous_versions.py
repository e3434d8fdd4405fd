"""Which versions a share shows as Previous Versions, how smb.conf says so, and the shares a
versioned destination refuses."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from nasbox.samba import smbconf
from nasbox.samba.previous_versions import ShownVersions, shown_jobs, shown_versions
from nasbox.samba.version_views import view

REPO = Path(__file__).resolve().parents[3]


@pytest.fixture
def place(tmp_path: Path) -> Path:
    for directory in ("data/docs/sub/deeper", "backup/docs/sub", "other"):
        (tmp_path / directory).mkdir(parents=True)
    return tmp_path


def env_for(place: Path, shares: dict[str, str], versions: bool = True, **more: str) -> dict[str, str]:
    """User a; SYNC_DOCS from data/docs to backup/docs (with versions); shares as NAME: PATH
    (read access, relative to place) unless the value says otherwise."""
    env = {"USER_A": "a:pw", "SYNC_DOCS": f"{place}/data/docs {place}/backup/docs daily", **more}
    if versions:
        env["SYNC_DOCS_VERSIONS"] = "last=3"
    for name, spec in shares.items():
        access, _, path = spec.rpartition(" ")
        env[f"SHARE_{name.upper()}"] = f"{access or 'read'} {name} {place / path} a"
    return env


def shown(load, place: Path, share_path: str, **more: str) -> ShownVersions | None:
    config = load(env_for(place, {"s": share_path}, **more))
    return shown_versions(config.shares["s"], config)


@pytest.mark.parametrize("share_path, inside", [
    ("data/docs", "."), ("data/docs/sub", "sub"), ("data/docs/sub/deeper", "sub/deeper"),
    ("backup/docs", "."), ("backup/docs/sub", "sub"),
])
def test_a_share_of_the_source_or_destination_shows_the_jobs_versions_at_its_place(
        load, place, share_path, inside):
    assert shown(load, place, share_path) == ShownVersions("docs", str(view("docs")), inside)


@pytest.mark.parametrize("share_path", ["data", "backup", "other", "backup/docs/.nasbox-versions"])
def test_a_share_holding_a_root_beside_it_or_in_the_versions_directory_shows_none(load, place, share_path):
    (place / "backup/docs/.nasbox-versions").mkdir(exist_ok=True)
    assert shown(load, place, share_path) is None


def test_a_job_without_versions_shows_none(load, place):
    assert shown(load, place, "data/docs", versions=False) is None


def test_a_share_reached_through_a_symlink_or_a_second_path_is_found_where_it_leads(load, place):
    (place / "linked").symlink_to(place / "data" / "docs" / "sub")
    assert shown(load, place, "linked") == ShownVersions("docs", str(view("docs")), "sub")
    assert shown(load, place, "data/../data/docs/sub/deeper") == ShownVersions(
        "docs", str(view("docs")), "sub/deeper")


def test_the_nearest_job_wins_then_the_first_by_name(load, place):
    # whole: all of data, versioned too; docs (nearer to data/docs/sub) wins there.
    nearer = shown(load, place, "data/docs/sub", SYNC_WHOLE=f"{place}/data {place}/other/whole daily",
                   SYNC_WHOLE_VERSIONS="daily=3")
    assert nearer == ShownVersions("docs", str(view("docs")), "sub")
    # An equally near job: its name comes before docs.
    tie = shown(load, place, "data/docs", SYNC_ALSO=f"{place}/data/docs {place}/other/also daily",
                SYNC_ALSO_VERSIONS="daily=3")
    assert tie == ShownVersions("also", str(view("also")), ".")


def test_shown_jobs_are_those_some_share_shows(load, place):
    config = load(env_for(place, {"docs": "data/docs", "whole": "data"},
                          SYNC_OTHER=f"{place}/other {place}/backup/other daily", SYNC_OTHER_VERSIONS="last=1"))
    assert shown_jobs(config) == {"docs"}


def test_rendering_adds_shadow_copy2_below_the_other_modules_with_every_option(load, place):
    config = load(env_for(place, {"docs": "data/docs", "sub": "data/docs/sub", "plain": "other"}))
    text = smbconf.render(config)
    sections = {part.split("]", 1)[0]: part for part in text.split("\n[")[1:]}
    assert f"""
    vfs objects = catia fruit streams_xattr shadow_copy2
    shadow:mountpoint = {place}/data/docs/sub
    shadow:snapdir = {view("docs")}
    shadow:snapsharepath = sub
    shadow:format = @GMT-%Y.%m.%d-%H.%M.%S
    shadow:localtime = no
    shadow:sort = desc
    shadow:fixinodes = yes
""" in sections["sub"]
    assert f"    shadow:mountpoint = {place}/data/docs\n    shadow:snapdir = {view('docs')}\n" \
           "    shadow:format" in sections["docs"]
    assert "shadow:" not in sections["plain"] and "vfs objects" not in sections["plain"]
    assert "    vfs objects = catia fruit streams_xattr\n" in sections["global"]


def test_percent_is_written_only_in_nasbox_own_unexpanded_values():
    assert smbconf.smb_value(smbconf.Unexpanded("@GMT-%Y")) == "@GMT-%Y"
    for value in ("/data/%U", smbconf.Unexpanded("@GMT-%Y\n[global]"), smbconf.Unexpanded("x\\")):
        with pytest.raises(smbconf.UnsafeValue):
            smbconf.smb_value(value)


@pytest.mark.skipif(shutil.which("testparm") is None, reason="testparm not installed (run .ci/setup)")
def test_testparm_accepts_a_share_with_versions(load, place, tmp_path):
    conf = tmp_path / "smb.conf"
    smbconf.write(load(env_for(place, {"sub": "data/docs/sub"})), conf)
    dump = subprocess.run(["testparm", "--suppress-prompt", str(conf)], capture_output=True, text=True).stdout
    assert "\tvfs objects = catia fruit streams_xattr shadow_copy2\n" in dump
    assert "\tshadow:format = @GMT-%Y.%m.%d-%H.%M.%S\n" in dump
    assert "\tshadow:snapsharepath = sub\n" in dump


@pytest.mark.parametrize("share_path", ["backup/docs", "backup/docs/sub", "backup"])
def test_write_users_on_a_share_reaching_a_versioned_destination_are_refused(problems, place, share_path):
    found = problems(env_for(place, {"bk": f"write {share_path}"}))
    assert found == [
        f"env SYNC_DOCS: versions: share bk gives a write access to {place / share_path}, which reaches "
        f"{place}/backup/docs: a file changed in place there would change in every version of sync docs; "
        "expected only read users on that share"]


@pytest.mark.parametrize("shares, versions", [
    ({"bk": "read backup/docs", "docs": "write data/docs"}, True),
    ({"bk": "write backup/docs"}, False),
])
def test_read_users_on_the_destination_write_users_on_the_source_and_unversioned_jobs_pass(
        load, place, shares, versions):
    load(env_for(place, shares, versions=versions))


def test_config_check_exits_78_naming_the_share_and_the_job(place):
    env = {"PATH": os.environ["PATH"], "NASBOX_HOME": os.environ["NASBOX_HOME"], "NASBOX_CONFIG": "/dev/null",
           **env_for(place, {"bk": "write backup/docs"})}
    result = subprocess.run([sys.executable, "-m", "nasbox", "config", "check"], capture_output=True, text=True,
                            env=env, cwd=REPO, timeout=60)
    assert result.returncode == 78, result.stdout + result.stderr
    assert "share bk gives a write access" in result.stderr and "every version of sync docs" in result.stderr


def test_a_folder_samba_would_read_otherwise_in_the_versions_is_refused(problems, place):
    # The share's path is written plainly; where it leads has a name Samba would expand.
    (place / "data" / "docs" / "100%U").mkdir()
    (place / "plain").symlink_to(place / "data" / "docs" / "100%U")
    assert problems(env_for(place, {"pct": "plain"})) == [
        "env SYNC_DOCS: versions: share pct shows the versions of this job, and Samba cannot find its folder "
        "in them by the name '100%U': it holds '%' (Samba expands %-macros); expected a share path leading to a folder without it"]
