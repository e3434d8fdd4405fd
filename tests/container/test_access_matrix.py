"""The access rules of shares against the real image, configured once from environment
variables only and once from /config/nasbox.yaml only; plus what a running container answers."""
from __future__ import annotations

import json
import re
from collections.abc import Iterator

import pytest
import yaml

from tests.container.helpers import USERS, Nasbox, nasbox_container, workspace
from tests.support.access_matrix import (
    OTHER_SHARE, OUTSIDER, READER, SHARE, WRITER, AccessMatrix, Matrix, matrix_env,
)

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


class TestEnvConfigured(AccessMatrix, RunningContainerChecks):
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
