"""Container layer: the real image on a real Docker engine, reached by the real smbclient
through the published port. These fixtures make sure the engine is there and the image is
the working tree's."""
from __future__ import annotations

import shutil
import subprocess

import pytest

from tests.container.helpers import IMAGE, REPO_ROOT, docker


@pytest.fixture(scope="session")
def docker_engine() -> None:
    """Fail, never skip: a container layer that did not run must not look green."""
    if shutil.which("docker") is None:
        pytest.fail("container layer: the docker CLI is not installed (run .ci/setup)", pytrace=False)
    try:
        info = docker("info", "--format", "{{.ServerVersion}}", timeout=30)
    except subprocess.TimeoutExpired:
        pytest.fail("container layer: the Docker engine did not answer `docker info` within 30 s", pytrace=False)
    if info.returncode != 0 or not info.stdout.strip():
        pytest.fail(f"container layer: the Docker engine is not reachable (start dockerd, or run .ci/setup):\n"
                    f"{info.stderr.strip()}", pytrace=False)


@pytest.fixture(scope="session", autouse=True)
def image(docker_engine: None) -> str:
    """The image built from this working tree, so the layer never tests a stale one."""
    build = docker("build", "-t", IMAGE, str(REPO_ROOT), timeout=1800)
    if build.returncode != 0:
        pytest.fail(f"docker build of {REPO_ROOT} failed:\n{(build.stdout + build.stderr)[-5000:]}", pytrace=False)
    return IMAGE
