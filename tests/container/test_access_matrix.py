"""The access rules of shares against the real image, configured once from environment
variables only and once from /config/nasbox.yaml only; plus what a running container answers."""
from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from tests.container.helpers import USERS, Nasbox, nasbox_container, workspace
from tests.support.access_matrix import (
    FOREIGN,
    OTHER_SHARE,
    OUTSIDER,
    READER,
    SHARE,
    WRITER,
    AccessMatrix,
    Matrix,
    matrix_env,
    refused,
    snapshot,
)
from tests.support.smbclient import output, raw_read, smbcacls, smbclient

pytestmark = pytest.mark.container

ITEM_VARIABLE = re.compile(r"^(SHARE|USER|SYNC|SCRUB|MOUNT|NOTIFY)_")
YAML_WRITER_UID = 1234  # not PUID's default, so the YAML's `uid` is seen to apply


def matrix_yaml() -> dict:
    """The matrix_env() configuration in YAML's shape."""
    w, r, o = USERS["writer"], USERS["reader"], USERS["outsider"]
    return {
        "users": {
            w: {"password": WRITER[1], "uid": YAML_WRITER_UID},
            r: {"password": READER[1]},
            o: {"password": OUTSIDER[1]},
        },
        "shares": {
            "docs_w": {"name": SHARE, "access": "write", "paths": ["/data/docs"], "users": [w]},
            "docs_r": {"name": SHARE, "access": "read", "paths": ["/data/docs"], "users": [r]},
            "other": {"name": OTHER_SHARE, "access": "write", "paths": ["/data/other"], "users": [o]},
        },
    }


class RunningContainerChecks:
    """What every healthy container answers, whichever source configured it."""

    def test_config_check_passes(self, nasbox: Nasbox) -> None:
        result = nasbox.exec("nasbox", "config", "check")
        assert result.returncode == 0, result.stdout + result.stderr
        assert "configuration is valid" in result.stdout

    def test_health_command_passes(self, nasbox: Nasbox) -> None:
        # The image's HEALTHCHECK command.
        result = nasbox.exec("nasbox", "health")
        assert result.returncode == 0, result.stdout + result.stderr
        assert "smbd: ok" in result.stdout


EVERYONE_FULL = "ACL:Everyone:ALLOWED/0x0/FULL"


class InsideRules:
    """Rules checked with clients that have no port option (smbcacls, Samba's Python bindings):
    they run in the container's network namespace and reach smbd on 445 there."""

    def test_dotdot_sent_as_it_is_reaches_nothing_outside_the_share(self, nasbox: Nasbox) -> None:
        # Readable by the writer on disk, one `..` away from the share.
        (nasbox.workspace.other / "raw-marker.txt").write_text("in the other share\n")
        (nasbox.workspace.other / "raw-marker.txt").chmod(0o644)
        escapes = ["..\\other\\raw-marker.txt", "sub\\..\\..\\other\\raw-marker.txt",
                   "..\\..\\etc\\passwd", "sub\\..\\..\\..\\etc\\passwd"]
        result = raw_read(nasbox.inside(), SHARE, USERS["writer"], WRITER[1], ["hello.txt", *escapes])
        lines = result.stdout.splitlines()
        assert lines[0] == "read hello.txt", output(result)  # the client works
        assert [line.split(" ", 2)[:2] for line in lines[1:]] == [["refused", path] for path in escapes], \
            output(result)

    def test_reader_cannot_set_acls_even_on_a_file_she_owns(self, nasbox: Nasbox) -> None:
        docs = nasbox.workspace.docs
        (docs / "owned-by-reader.txt").write_text("the reader's own\n")
        os.chown(docs / "owned-by-reader.txt", nasbox.uid(USERS["reader"]), -1)
        for path in ("owned-by-reader.txt", "open/open.txt", "hello.txt"):
            before = snapshot(docs)
            result = smbcacls(nasbox.inside(), SHARE, USERS["reader"], READER[1], path, "--add", EVERYONE_FULL)
            assert result.returncode != 0 and refused(result), f"{path}: {output(result)}"
            assert snapshot(docs) == before

    def test_writer_cannot_set_acls_on_a_file_she_does_not_own(self, nasbox: Nasbox) -> None:
        before = snapshot(nasbox.workspace.docs)
        result = smbcacls(nasbox.inside(), SHARE, USERS["writer"], WRITER[1], FOREIGN, "--add", EVERYONE_FULL)
        assert result.returncode != 0 and refused(result), output(result)
        assert snapshot(nasbox.workspace.docs) == before

    def test_writer_can_set_acls_on_her_own_file(self, nasbox: Nasbox, tmp_path: Path) -> None:
        # The refusals above come from the rules, not from a tool that never works.
        local = tmp_path / "acl.txt"
        local.write_text("her own\n")
        put = smbclient(nasbox.server(), SHARE, USERS["writer"], WRITER[1], f"put {local} acl-by-writer.txt")
        assert put.returncode == 0, output(put)
        result = smbcacls(nasbox.inside(), SHARE, USERS["writer"], WRITER[1], "acl-by-writer.txt",
                          "--add", "ACL:Everyone:ALLOWED/0x0/R")
        assert result.returncode == 0, output(result)


class TestEnvConfigured(AccessMatrix, RunningContainerChecks, InsideRules):
    @pytest.fixture(scope="class")
    def nasbox(self) -> Iterator[Nasbox]:
        with workspace() as ws:
            with nasbox_container(ws, matrix_env(USERS, "/data/docs", "/data/other"), "env") as box:
                yield box

    @pytest.fixture
    def matrix(self, nasbox: Nasbox) -> Matrix:
        return nasbox.matrix()

    def test_configured_from_env_only(self, nasbox: Nasbox) -> None:
        assert list(nasbox.workspace.config.glob("*.yaml")) == []
        assert nasbox.uid(USERS["writer"]) == 1000  # PUID's default, first in sorted order


class TestYamlConfigured(AccessMatrix, RunningContainerChecks):
    @pytest.fixture(scope="class")
    def nasbox(self) -> Iterator[Nasbox]:
        with workspace(docs_owner=YAML_WRITER_UID) as ws:
            (ws.config / "nasbox.yaml").write_text(yaml.safe_dump(matrix_yaml(), sort_keys=False))
            with nasbox_container(ws, {}, "yaml") as box:
                yield box

    @pytest.fixture
    def matrix(self, nasbox: Nasbox) -> Matrix:
        return nasbox.matrix()

    def test_configured_from_yaml_only(self, nasbox: Nasbox) -> None:
        env = nasbox.inspect()["Config"]["Env"]
        assert [e for e in env if ITEM_VARIABLE.match(e)] == []
        shown = nasbox.exec("nasbox", "config", "show", "--json")
        assert shown.returncode == 0, shown.stderr
        assert sorted(json.loads(shown.stdout)["users"]) == sorted(USERS.values())
        assert nasbox.uid(USERS["writer"]) == YAML_WRITER_UID
