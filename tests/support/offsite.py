"""Real restic servers for the offsite tests, each started on this machine on loopback:

- REST: rclone's `serve restic` (Debian's rclone), on a directory of the test's;
- rclone: restic's rclone back end, to a WebDAV server (`rclone serve webdav`) with a login;
- S3: moto's server mode (PyPI `moto[server]`), in memory;
- SFTP: OpenSSH in a container built from the image nasbox is built on
  (tests/support/sftp/Dockerfile), its port published on 127.0.0.1, with a host key the test
  makes and pins, and a client key for root.

Each back end says how a job reaches it (the OFFSITE_<ID>... variables) and can be taken
down in the middle of a run: the REST and WebDAV servers are killed (connections refused), the S3 server
and the SFTP container are frozen (a server that stops answering), and brought back as they
were.
"""
from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

SFTP_IMAGE = os.environ.get("NASBOX_TEST_SFTP_IMAGE", "nasbox-test-sftp:offsite")
SFTP_DOCKERFILE = Path(__file__).parent / "sftp"
S3_KEY_ID, S3_SECRET = "AKIAOFFSITETEST", "s3-secret-Zq81bWx"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port: int, timeout: float = 30, process: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            if (process is not None and process.poll() is not None) or time.monotonic() > deadline:
                raise RuntimeError(f"nothing listens on 127.0.0.1:{port}") from None
            time.sleep(0.1)


def stop_process(process: subprocess.Popen) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGCONT)  # a frozen server must wake to end
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


@dataclass
class Backend:
    """A running server and how an offsite job reaches it."""

    name: str
    repository: str
    options: dict[str, str] = field(default_factory=dict)  # OFFSITE_<ID>_<OPTION> values
    secrets: tuple[str, ...] = ()  # credentials that must never show

    def environ(self, ident: str, source: Path, password: str, schedule: str = "daily",
                **options: str) -> dict[str, str]:
        env = {f"OFFSITE_{ident}": f"{source} {self.repository} '{schedule}'",
               f"OFFSITE_{ident}_PASSWORD": password}
        for option, value in {**self.options, **options}.items():
            env[f"OFFSITE_{ident}_{option}"] = value
        return env

    @contextmanager
    def down(self) -> Iterator[None]:
        """The server unreachable for the duration."""
        yield


class LocalServer(Backend):
    """A server process on loopback (_start), which a test can take down and bring back."""

    process: subprocess.Popen

    def _start(self) -> subprocess.Popen:
        raise NotImplementedError

    @contextmanager
    def down(self) -> Iterator[None]:
        """Killed: every connection is refused until it is started again on the same directory."""
        stop_process(self.process)
        try:
            yield
        finally:
            self.process = self._start()

    def stop(self) -> None:
        stop_process(self.process)


class RestBackend(LocalServer):
    """auth: (user, password) the server requires (HTTP basic), given in the repository's URL."""

    def __init__(self, directory: Path, auth: tuple[str, str] | None = None):
        self.directory, self.port, self.auth = directory, free_port(), auth
        self.log = directory.parent / "rclone.log"
        login = f"{auth[0]}:{auth[1]}@" if auth else ""
        super().__init__("rest", f"rest:http://{login}127.0.0.1:{self.port}/repo", secrets=auth[1:] if auth else ())
        self.process = self._start()

    def _start(self) -> subprocess.Popen:
        argv = ["rclone", "serve", "restic", str(self.directory), "--addr", f"127.0.0.1:{self.port}"]
        if self.auth:
            argv += ["--user", self.auth[0], "--pass", self.auth[1]]
        with open(self.log, "ab") as log:
            process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=log, start_new_session=True)
        wait_port(self.port, process=process)
        return process


class RcloneBackend(LocalServer):
    """A WebDAV server (`rclone serve webdav`, with a user and password) reached through
    restic's rclone back end: restic runs `rclone serve restic --stdio` as its child, and the
    remote `nasboxdav` is configured by the job's env alone (RCLONE_CONFIG_NASBOXDAV_...), its
    password obscured as rclone wants it and read from a file (`_FILE`)."""

    USER, PASSWORD = "dav-user", "dav-Pa55-word-k2"

    def __init__(self, directory: Path):
        self.directory, self.port = directory, free_port()
        directory.mkdir(parents=True)
        self.log = directory.parent / "rclone-webdav.log"
        self.password_file = directory.parent / "webdav-password"
        obscured = subprocess.run(["rclone", "obscure", self.PASSWORD], capture_output=True, text=True,
                                  check=True).stdout.strip()
        self.password_file.write_text(obscured + "\n")
        remote = "RCLONE_CONFIG_NASBOXDAV"
        env = (f"{remote}_TYPE=webdav {remote}_URL=http://127.0.0.1:{self.port} {remote}_USER={self.USER} "
               f"{remote}_PASS_FILE={self.password_file}")
        super().__init__("rclone", "rclone:nasboxdav:repo", {"ENV": env}, (self.PASSWORD, obscured))
        self.process = self._start()

    def _start(self) -> subprocess.Popen:
        argv = ["rclone", "serve", "webdav", str(self.directory), "--addr", f"127.0.0.1:{self.port}",
                "--user", self.USER, "--pass", self.PASSWORD]
        with open(self.log, "ab") as log:
            process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=log, start_new_session=True)
        wait_port(self.port, process=process)
        return process

    @contextmanager
    def frozen(self) -> Iterator[None]:
        """Stopped (SIGSTOP): connections are accepted and never answered."""
        os.killpg(self.process.pid, signal.SIGSTOP)
        try:
            yield
        finally:
            os.killpg(self.process.pid, signal.SIGCONT)


class S3Backend(Backend):
    def __init__(self) -> None:
        self.port = free_port()
        super().__init__("s3", f"s3:http://127.0.0.1:{self.port}/offsite-bucket/nasbox",
                         {"ENV": f"AWS_ACCESS_KEY_ID={S3_KEY_ID} AWS_SECRET_ACCESS_KEY={S3_SECRET}"},
                         (S3_KEY_ID, S3_SECRET))
        self.process = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)],
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        wait_port(self.port, process=self.process)

    @contextmanager
    def down(self) -> Iterator[None]:
        """Frozen (SIGSTOP): connections are accepted and never answered. moto keeps its
        buckets in memory, so it is woken rather than restarted."""
        os.killpg(self.process.pid, signal.SIGSTOP)
        try:
            yield
        finally:
            os.killpg(self.process.pid, signal.SIGCONT)

    def stop(self) -> None:
        stop_process(self.process)


def docker(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["docker", *args], capture_output=True, text=True, timeout=timeout)


def build_sftp_image() -> None:
    built = docker("build", "-q", "-t", SFTP_IMAGE, str(SFTP_DOCKERFILE), timeout=900)
    if built.returncode != 0:
        raise RuntimeError(f"cannot build {SFTP_IMAGE}: {built.stderr[-2000:]}")


def restic_of_image(image: str, directory: Path) -> Path:
    """The image's restic binary (Debian 13's, a static Go program) copied into directory,
    so that the host tests run the restic the container runs too."""
    created = docker("create", image)
    if created.returncode != 0:
        raise RuntimeError(f"cannot use the image {image} (build it first): {created.stderr}")
    container = created.stdout.strip()
    try:
        copied = docker("cp", f"{container}:/usr/bin/restic", str(directory / "restic"))
        if copied.returncode != 0:
            raise RuntimeError(f"the image {image} has no /usr/bin/restic: {copied.stderr}")
    finally:
        docker("rm", container)
    return directory / "restic"


def ssh_keygen(path: Path) -> str:
    """A new ed25519 key pair at path (and path.pub); the public key's line."""
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(path)], check=True)
    return path.with_suffix(".pub").read_text().strip()


class SftpBackend(Backend):
    """OpenSSH in a container, on a fixed port of 127.0.0.1 for its whole life, so that a
    restarted server (with another host key) answers where the pinned one did."""

    def __init__(self, root: Path):
        self.root, self.port = root, free_port()
        (root / "keys").mkdir(parents=True)
        (root / "data").mkdir()
        self.client_key = root / "client_key"
        ssh_keygen(self.client_key)
        (root / "ssh").mkdir(mode=0o700)
        shutil.copy(self.client_key.with_suffix(".pub"), root / "ssh" / "authorized_keys")
        (root / "ssh" / "authorized_keys").chmod(0o600)
        self.known_hosts = root / "known_hosts"
        self.container = f"nasbox-test-sftp-{os.getpid()}-{self.port}"
        super().__init__("sftp", f"sftp://root@127.0.0.1:{self.port}//srv/restic/repo",
                         {"SSH_KNOWN_HOSTS": str(self.known_hosts), "SSH_KEY": str(self.client_key)})
        self.host_key_line = self.start_with_new_host_key()
        self.pin(self.host_key_line)

    def pin(self, host_key_line: str) -> None:
        key_type, key = host_key_line.split()[:2]
        self.known_hosts.write_text(f"[127.0.0.1]:{self.port} {key_type} {key}\n")

    def start_with_new_host_key(self) -> str:
        """(Re)start the server with a host key of its own; its public line."""
        self.remove()
        for old in (self.root / "keys").iterdir():
            old.unlink()
        line = ssh_keygen(self.root / "keys" / "host_key")
        started = docker("run", "-d", "--name", self.container, "-p", f"127.0.0.1:{self.port}:22",
                         "-v", f"{self.root / 'keys'}:/etc/ssh/keys:ro",
                         "-v", f"{self.root / 'ssh'}:/root/.ssh:ro",
                         "-v", f"{self.root / 'data'}:/srv/restic", SFTP_IMAGE)
        if started.returncode != 0:
            raise RuntimeError(f"cannot start the SFTP server: {started.stderr}")
        self._wait_for_banner()
        return line

    def _wait_for_banner(self) -> None:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=2) as s:
                    if s.recv(64).startswith(b"SSH-"):
                        return
            except OSError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"the SFTP server did not answer:\n{docker('logs', self.container).stderr[-2000:]}")

    @contextmanager
    def down(self) -> Iterator[None]:
        """Frozen (docker pause): the port stays open, nothing answers."""
        docker("pause", self.container)
        try:
            yield
        finally:
            docker("unpause", self.container)

    def remove(self) -> None:
        docker("rm", "-f", self.container)

    def stop(self) -> None:
        self.remove()
