"""`cd compose && docker compose up -d` starts a working NAS from the example
configuration, on host port 445."""
from __future__ import annotations

import errno
import shutil
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from nasbox.health import smb_answers
from tests.container.helpers import READY_TIMEOUT_S, REPO_ROOT, STOP_GRACE_S, docker
from tests.support.smbclient import Server, output, smbclient

pytestmark = pytest.mark.container

COMPOSE_DIR = REPO_ROOT / "compose"
BIND_DIRS = ("config", "data", "backup")  # the stack's relative bind mounts
CONTAINER = "nasbox"  # container_name in compose.yaml


def require_port_445_free() -> None:
    why = None
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # TIME_WAIT leftovers are fine
        try:
            s.bind(("0.0.0.0", 445))
        except OSError as e:
            why = "in use" if e.errno == errno.EADDRINUSE else e.strerror
    if why:
        pytest.fail(f"host port 445 is not free ({why}): the compose stack publishes it; "
                    "stop the host smbd or the container holding it", pytrace=False)
    existing = docker("ps", "-a", "--filter", f"name=^{CONTAINER}$", "--format", "{{.Names}} {{.Status}}")
    if existing.stdout.strip():
        pytest.fail(f"a container named {CONTAINER!r} already exists ({existing.stdout.strip()}); "
                    "remove it before the compose test", pytrace=False)


def compose(*args: str, timeout: float = 300) -> str:
    result = docker("compose", *args, cwd=COMPOSE_DIR, timeout=timeout)
    assert result.returncode == 0, f"docker compose {' '.join(args)}:\n{result.stdout}{result.stderr}"
    return result.stdout + result.stderr


@pytest.fixture
def compose_stack() -> Iterator[Path]:
    """The stack up, in place; yields the host directory behind /data. Down afterwards, and
    the bind directories it created removed."""
    require_port_445_free()
    created = [COMPOSE_DIR / d for d in BIND_DIRS if not (COMPOSE_DIR / d).exists()]
    try:
        compose("up", "-d")
        deadline = time.monotonic() + READY_TIMEOUT_S
        while not (answer := smb_answers("127.0.0.1", 445, timeout=2))[0]:
            if time.monotonic() > deadline:
                logs = docker("compose", "logs", cwd=COMPOSE_DIR)
                pytest.fail(f"the compose stack did not answer on port 445 ({answer[1]}):\n{logs.stdout}{logs.stderr}")
            time.sleep(0.3)
        yield COMPOSE_DIR / "data"
    finally:
        docker("compose", "down", "--volumes", "--timeout", str(STOP_GRACE_S), cwd=COMPOSE_DIR, timeout=120)
        for directory in created:
            shutil.rmtree(directory, ignore_errors=True)


def test_compose_up_serves_the_demo_share(compose_stack: Path, tmp_path: Path) -> None:
    local = tmp_path / "from-compose-test.txt"
    local.write_text("hello through compose\n")
    server = Server("127.0.0.1", 445)
    result = smbclient(server, "demo", "demo", "change-me", f"put {local} from-compose-test.txt; ls")
    assert result.returncode == 0, output(result)
    assert "from-compose-test.txt" in result.stdout, output(result)
    assert (compose_stack / "demo" / "from-compose-test.txt").read_text() == "hello through compose\n"
