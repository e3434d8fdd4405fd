"""Shared by the benchmarks: nasbox-bench- containers on loopback ports, waiting for SMB,
timing commands and printing tables."""
from __future__ import annotations

import compileall
import contextlib
import functools
import itertools
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from nasbox.health import smb_answers

IMAGE = "nasbox:latest"
REPO_ROOT = Path(__file__).resolve().parents[1]  # the checkout whose `nasbox` the benchmarks run
NAME_PREFIX = "nasbox-bench-"
PORTS = range(14500, 14600)
READY_TIMEOUT = 60.0  # seconds from `docker run -d` until smbd must answer

USER, PASSWORD = "bench", "bench-pw"
SHARE, SHARE_PATH = "bench", "/data/bench"
# nasbox gives its first user UID PUID and group PGID, 1000 and 1000 by default; the
# bare-smbd container creates its user with the same UID so one host directory fits both.
BENCH_UID = BENCH_GID = 1000

NASBOX_ENV = {"USER_BENCH": f"{USER}:{PASSWORD}", "SHARE_BENCH": f"write {SHARE} {SHARE_PATH} {USER}"}

# Samba's defaults: only what a standalone server with one share needs.
MINIMAL_SMB_CONF = f"""[global]
    smb ports = 445
    server role = standalone server
    map to guest = never

[{SHARE}]
    path = {SHARE_PATH}
    valid users = {USER}
    writeable = yes
"""

# The bare-smbd container: its user and Samba password, then smbd in the foreground.
BARE_SMBD_SCRIPT = (
    f"useradd -M -s /usr/sbin/nologin -u {BENCH_UID} {USER}"
    f" && printf '%s\\n%s\\n' '{PASSWORD}' '{PASSWORD}' | smbpasswd -s -a {USER} >/dev/null"
    " && exec smbd --foreground --no-process-group --debug-stdout"
)

_names = itertools.count(1)


@functools.cache
def _compile_nasbox() -> None:
    """nasbox's modules to bytecode, as an installed package has them: with
    PYTHONDONTWRITEBYTECODE set, every command would compile them from source again."""
    compileall.compile_dir(REPO_ROOT / "nasbox", quiet=1)


def nasbox_command_env(work: Path, **variables: str) -> dict[str, str]:
    """The environment of a `python3 -m nasbox ...` a benchmark times: this checkout's package
    (compiled first), no YAML, its state under work, and the given variables (the jobs)."""
    _compile_nasbox()
    return {**os.environ, "PYTHONPATH": str(REPO_ROOT), "NASBOX_CONFIG": "/dev/null",
            "NASBOX_HOME": str(work / "home"), "NASBOX_RUN_DIR": str(work / "run"), **variables}


@contextlib.contextmanager
def nasbox_runner(env: dict[str, str]) -> Iterator[None]:
    """`nasbox runner` as the image's supervisor keeps it, with env (nasbox_command_env's):
    the `nasbox` commands a benchmark times with the same env are handed to it, as in the
    container."""
    from nasbox.relay import SOCKET_NAME

    process = subprocess.Popen([sys.executable, "-P", "-m", "nasbox", "runner"], env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while not (Path(env["NASBOX_RUN_DIR"]) / SOCKET_NAME).exists():
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"`nasbox runner` did not start (exit {process.poll()})")
            time.sleep(0.05)
        yield
    finally:
        process.terminate()
        process.wait(timeout=60)


@dataclass(frozen=True)
class Started:
    name: str
    port: int
    t0: float  # time.perf_counter() just before `docker run -d`


def exit_cleanly_on_sigterm() -> None:
    """SIGTERM raises SystemExit, so that `finally` blocks remove containers and files."""
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))


def docker(*args: str) -> str:
    result = subprocess.run(["docker", *args], capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"docker {' '.join(args[:2])}: {result.stderr.strip()}")
    return result.stdout.strip()


def require_image(image: str = IMAGE) -> None:
    try:
        docker("image", "inspect", "--format", "{{.Id}}", image)
    except RuntimeError:
        sys.exit(f"{image} is missing: build it first (docker build -t {image} .)")


def nasbox_args(data_dir: Path) -> list[str]:
    """docker run arguments: nasbox as users run it, configured from the environment."""
    env = [arg for key, value in NASBOX_ENV.items() for arg in ("-e", f"{key}={value}")]
    return [*env, "-v", f"{data_dir}:{SHARE_PATH}", IMAGE]


def bare_smbd_args(data_dir: Path, smb_conf: Path) -> list[str]:
    """docker run arguments: the same image, smbd alone with MINIMAL_SMB_CONF (at smb_conf)."""
    return ["-v", f"{smb_conf}:/etc/samba/smb.conf:ro", "-v", f"{data_dir}:{SHARE_PATH}",
            "--entrypoint", "sh", IMAGE, "-c", BARE_SMBD_SCRIPT]


@contextlib.contextmanager
def workspace(parent: str | None = None) -> Iterator[Path]:
    """A temporary directory holding share/ (owned by the bench user) and the minimal
    smb.conf; removed afterwards."""
    root = Path(tempfile.mkdtemp(prefix=NAME_PREFIX, dir=parent))
    try:
        share = root / "share"
        share.mkdir()
        os.chown(share, BENCH_UID, BENCH_GID)
        share.chmod(0o775)
        (root / "smb.conf").write_text(MINIMAL_SMB_CONF, encoding="utf-8")
        yield root
    finally:
        shutil.rmtree(root, ignore_errors=True)


def _port_is_free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _remove(name: str) -> None:
    # -v: also the anonymous volume of the image's VOLUME /config
    subprocess.run(["docker", "rm", "-f", "-v", name], capture_output=True)


def _run_detached(name: str, run_args: Sequence[str]) -> Started:
    """docker run -d on the first free port of PORTS; a port taken meanwhile is skipped."""
    for port in filter(_port_is_free, PORTS):
        t0 = time.perf_counter()
        result = subprocess.run(
            ["docker", "run", "-d", "--name", name, "-p", f"127.0.0.1:{port}:445", *run_args],
            capture_output=True, text=True)
        if result.returncode == 0:
            return Started(name, port, t0)
        _remove(name)  # created but not started
        if "already allocated" not in result.stderr and "address already in use" not in result.stderr:
            raise RuntimeError(f"docker run {name}: {result.stderr.strip()}")
    raise RuntimeError(f"no free port in {PORTS.start}-{PORTS.stop - 1}")


@contextlib.contextmanager
def container(tag: str, run_args: Sequence[str]) -> Iterator[Started]:
    """A detached nasbox-bench-<tag>-... container with 445 published on loopback; always removed."""
    name = f"{NAME_PREFIX}{tag}-{os.getpid()}-{next(_names)}"
    try:
        yield _run_detached(name, run_args)
    finally:
        _remove(name)


def logs_tail(name: str, lines: int = 20) -> str:
    result = subprocess.run(["docker", "logs", "--tail", str(lines), name],
                            capture_output=True, text=True)
    return (result.stdout + result.stderr).strip()


def wait_for_smb(started: Started, timeout: float = READY_TIMEOUT) -> float:
    """Seconds from `docker run -d` until smbd answers an SMB2 NEGOTIATE on the port."""
    while True:
        ok, why = smb_answers("127.0.0.1", started.port, timeout=1.0)
        elapsed = time.perf_counter() - started.t0
        if ok:
            return elapsed
        if elapsed > timeout:
            raise RuntimeError(f"{started.name}: no SMB after {timeout:.0f} s ({why})\n"
                               f"{logs_tail(started.name)}")
        time.sleep(0.02)


def timed(argv: Sequence[str]) -> tuple[float, subprocess.CompletedProcess[str]]:
    """(seconds, result) of a command that must succeed."""
    t0 = time.perf_counter()
    result = subprocess.run(list(argv), capture_output=True, text=True)
    seconds = time.perf_counter() - t0
    if result.returncode != 0:
        raise RuntimeError(f"{argv[0]} failed ({result.returncode}): {(result.stdout + result.stderr).strip()}")
    return seconds, result


def median(values: Sequence[float]) -> float:
    return statistics.median(values)


def print_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    """A Markdown table, columns padded: readable in a terminal and pasteable."""
    widths = [max(len(str(cell)) for cell in column) for column in zip(headers, *rows)]

    def line(cells: Sequence[str]) -> str:
        padded = [str(c).ljust(w) if i == 0 else str(c).rjust(w) for i, (c, w) in enumerate(zip(cells, widths))]
        return "| " + " | ".join(padded) + " |"

    print(line(headers))
    print("|" + "|".join("-" * (w + 1) + (":" if i else "-") for i, w in enumerate(widths)) + "|")
    for row in rows:
        print(line(row))
