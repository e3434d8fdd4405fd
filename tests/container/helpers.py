"""Helpers of the container layer: host directories, a started nasbox container, the
checks that must hold across restarts.

Every container started here is named nasbox-test-<what>-<random> and removed afterwards.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from testcontainers.core.container import DockerContainer

from nasbox.health import smb_answers
from tests.support.access_matrix import READER, SHARE, WRITER, Matrix, populate
from tests.support.smbclient import Server, output, smbclient

# Another tag lets several work trees test their own image side by side.
IMAGE = os.environ.get("NASBOX_TEST_IMAGE", "nasbox:latest")
REPO_ROOT = Path(__file__).resolve().parents[2]
NAME_PREFIX = "nasbox-test-"
CAPS = ["SYS_ADMIN", "DAC_READ_SEARCH"]  # what compose grants; --privileged fails on these hosts
USERS = {"writer": "alice", "reader": "bob", "outsider": "carol"}
DEFAULT_UID = 1000  # PUID's default: alice, first in sorted order, gets it
READY_TIMEOUT_S = 60
STOP_GRACE_S = 30  # longer than the 10 s the stop test allows, so a slow stop shows as slow


def docker(*args: str, timeout: float = 120, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["docker", *args], capture_output=True, text=True, timeout=timeout, cwd=cwd)


@dataclass(frozen=True)
class Workspace:
    """Host directories bind-mounted into a container."""

    root: Path
    config: Path  # -> /config
    docs: Path  # -> /data/docs, the matrix's share
    other: Path  # -> /data/other, the outsider's own share

    def mounts(self) -> dict[Path, str]:
        return {self.config: "/config", self.docs: "/data/docs", self.other: "/data/other"}


@contextmanager
def workspace(docs_owner: int = DEFAULT_UID) -> Iterator[Workspace]:
    """Fresh host directories. Only the bind-mounted directories are seen inside the container,
    so mkdtemp's mode 0700 on the root does not matter. docs belongs to docs_owner, mode 0755:
    only a writer with that UID can create files there, so a wrong UID shows."""
    root = Path(tempfile.mkdtemp(prefix=NAME_PREFIX))
    ws = Workspace(root, root / "config", root / "docs", root / "other")
    try:
        for directory in (ws.config, ws.docs, ws.other):
            directory.mkdir()
        populate(ws.docs)
        os.chown(ws.docs, docs_owner, -1)
        ws.docs.chmod(0o755)
        ws.other.chmod(0o755)
        yield ws
    finally:
        shutil.rmtree(root)


class Nasbox:
    """A started nasbox container and what the tests ask of it."""

    def __init__(self, container: DockerContainer, ws: Workspace):
        self.container = container
        self.workspace = ws

    @property
    def name(self) -> str:
        return self.container.get_wrapped_container().name

    def inspect(self) -> dict[str, Any]:
        self.container.get_wrapped_container().reload()
        return self.container.get_wrapped_container().attrs

    def port(self) -> int:
        """The host port published for 445; Docker picks a new one at every start."""
        return int(self.container.get_docker_client().port(self.container.get_container_id(), 445))

    def server(self) -> Server:
        return Server("127.0.0.1", self.port())

    def netns(self) -> str:
        """The container's network namespace, to run host programs in as if inside it."""
        return f"/proc/{self.inspect()['State']['Pid']}/ns/net"

    def inside(self) -> Server:
        """smbd as a program inside the container reaches it: port 445 on its loopback."""
        return Server("127.0.0.1", 445, netns=self.netns())

    def address(self) -> str:
        """The container's address on Docker's default bridge."""
        return self.inspect()["NetworkSettings"]["IPAddress"]

    def matrix(self) -> Matrix:
        return Matrix(server=self.server(), share_dir=self.workspace.docs, other_dir=self.workspace.other,
                      users=dict(USERS))

    def exec(self, *argv: str) -> subprocess.CompletedProcess[str]:
        return docker("exec", self.name, *argv, timeout=60)

    def uid(self, user: str) -> int:
        result = self.exec("id", "-u", user)
        assert result.returncode == 0, f"id -u {user}: {result.stdout}{result.stderr}"
        return int(result.stdout)

    def logs(self) -> str:
        return self.container.get_wrapped_container().logs().decode(errors="replace")

    def wait_ready(self, timeout: float = READY_TIMEOUT_S) -> None:
        """Until smbd answers SMB2 NEGOTIATE through the published port."""
        deadline = time.monotonic() + timeout
        while True:
            state = self.inspect()["State"]
            if not state["Running"]:
                pytest.fail(f"{self.name} exited with {state['ExitCode']} before smbd answered; "
                            f"log:\n{self.logs()}")
            answered, why = smb_answers("127.0.0.1", self.port(), timeout=2)
            if answered:
                return
            if time.monotonic() > deadline:
                pytest.fail(f"{self.name}: smbd did not answer within {timeout} s ({why}); log:\n{self.logs()}")
            time.sleep(0.3)


@contextmanager
def nasbox_container(ws: Workspace, env: dict[str, str], what: str, ready: bool = True,
                     extra_mounts: dict[Path, str] | None = None, caps: list[str] = CAPS,
                     network: str | None = None, extra_ports: tuple[int, ...] = ()) -> Iterator[Nasbox]:
    """A nasbox container configured by env and ws's /config, port 445 (and extra_ports) on a
    random host port, on Docker's default bridge or the network named; removed on the way out
    whatever happened."""
    container = (
        DockerContainer(IMAGE)
        .with_name(f"{NAME_PREFIX}{what}-{uuid.uuid4().hex[:8]}")
        .with_kwargs(cap_add=caps, **({"network": network} if network else {}))
        .with_bind_ports(445)  # no host port given: Docker picks a free one
    )
    for port in extra_ports:
        container.with_bind_ports(port)
    for host_dir, inside in {**ws.mounts(), **(extra_mounts or {})}.items():
        container.with_volume_mapping(host_dir, inside, "rw")
    for key, value in env.items():
        container.with_env(key, value)
    try:
        container.start()
        box = Nasbox(container, ws)
        if ready:
            box.wait_ready()
        yield box
    finally:
        container.stop()  # force-removes the container


def stop_container(box: Nasbox) -> float:
    """`docker stop`; the seconds it took."""
    started = time.monotonic()
    result = docker("stop", "-t", str(STOP_GRACE_S), box.name, timeout=STOP_GRACE_S + 30)
    elapsed = time.monotonic() - started
    assert result.returncode == 0, result.stderr
    return elapsed


# The checks a restart must not break, each proving a real effect on both ends.

def assert_writer_can_write(box: Nasbox, tmp_path: Path, tag: str) -> None:
    local = tmp_path / f"{tag}.txt"
    local.write_text(f"written over SMB ({tag})\n")
    result = smbclient(box.server(), SHARE, USERS["writer"], WRITER[1], f"put {local} {tag}.txt")
    assert result.returncode == 0, output(result) + box.logs()
    assert (box.workspace.docs / f"{tag}.txt").read_text() == f"written over SMB ({tag})\n"


def assert_reader_can_read(box: Nasbox, tmp_path: Path, tag: str) -> None:
    target = tmp_path / tag
    target.mkdir()
    result = smbclient(box.server(), SHARE, USERS["reader"], READER[1], f"lcd {target}; get hello.txt")
    assert result.returncode == 0, output(result) + box.logs()
    assert (target / "hello.txt").read_text() == "hello from nasbox\n"


@contextmanager
def client_netns() -> Iterator[str]:
    """The network namespace of another container on Docker's default bridge: a client that
    reaches nasbox by its own address, not through the published port's proxy."""
    client = (DockerContainer(IMAGE).with_name(f"{NAME_PREFIX}client-{uuid.uuid4().hex[:8]}")
              .with_kwargs(entrypoint=["sleep", "infinity"]))
    try:
        client.start()
        wrapped = client.get_wrapped_container()
        wrapped.reload()
        yield f"/proc/{wrapped.attrs['State']['Pid']}/ns/net"
    finally:
        client.stop()
