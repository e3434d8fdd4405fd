"""CIFS mounts: the command nasbox builds, the credentials file, the offline path for real
(this kernel has no CIFS, so mount fails exactly as it does for an offline share), and a
real mount of a real smbd where the kernel supports CIFS."""
from __future__ import annotations

import http.server
import json
import logging
import os
import stat
import threading
from pathlib import Path

import pytest

from nasbox import mounts
from nasbox.config import ConfigError, load_config
from tests.support.access_matrix import SHARE, WRITER, Matrix

pytestmark = pytest.mark.host

PASSWORD = "s3cr3t pass,word="  # spaces, commas and '=' must not leak into options


def config_with(tmp_path: Path, mountpoint: Path, **extra: str):
    return load_config({"NASBOX_CONFIG": "/dev/null", "PUID": "1500", "PGID": "1600",
                        "MOUNT_NAS": f"{mountpoint} 192.0.2.10 backup docs /photos/2024",
                        "MOUNT_NAS_PASSWORD": PASSWORD, **extra})


@pytest.fixture
def credentials_dir(monkeypatch) -> Path:
    directory = Path("/dev/shm") / f"nasbox-test-credentials-{os.getpid()}"
    monkeypatch.setattr(mounts, "CREDENTIALS_DIR", directory)
    yield directory
    for path in directory.glob("*"):
        path.unlink()
    if directory.exists():
        directory.rmdir()


def test_mount_command_and_options(tmp_path):
    config = config_with(tmp_path, tmp_path / "nas")
    mount = config.mounts["nas"]
    argv = mounts.mount_command(mount, config, Path("/dev/shm/x/nas"))
    assert argv == ["mount", "-t", "cifs", "//192.0.2.10/docs/photos/2024", str(tmp_path / "nas"), "-o",
                    "credentials=/dev/shm/x/nas,vers=3.0,uid=1500,gid=1600,file_mode=0664,dir_mode=0775,iocharset=utf8"]
    assert PASSWORD not in " ".join(argv)


def test_options_can_be_overridden_but_not_the_credentials(tmp_path):
    path = tmp_path / "nasbox.yaml"
    path.write_text(f"""
mounts:
  nas:
    mountpoint: {tmp_path / 'nas'}
    host: nas.local
    share: docs
    username: backup
    password: pw
    options: {{vers: "2.1", seal: true, iocharset: false}}
""")
    config = load_config({"NASBOX_CONFIG": str(path)})
    options = mounts.options(config.mounts["nas"], config, Path("/dev/shm/c/nas"))
    assert options.split(",") == ["credentials=/dev/shm/c/nas", "vers=2.1", "uid=1000", "gid=1000",
                                  "file_mode=0664", "dir_mode=0775", "seal"]
    assert mounts.unc(config.mounts["nas"]) == "//nas.local/docs"
    path.write_text(path.read_text().replace("iocharset: false", "credentials: /etc/shadow"))
    with pytest.raises(ConfigError, match="mounts.nas.options.credentials: credentials are not mount options"):
        load_config({"NASBOX_CONFIG": str(path)})


def test_credentials_file_is_private_and_on_tmpfs(tmp_path, credentials_dir):
    config = config_with(tmp_path, tmp_path / "nas")
    path = mounts.write_credentials(config.mounts["nas"], credentials_dir)
    assert path == credentials_dir / "nas"
    assert path.read_text() == f"username=backup\npassword={PASSWORD}\n"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(credentials_dir.stat().st_mode) == 0o700
    assert mounts._is_tmpfs(credentials_dir)
    with pytest.raises(OSError, match="not on a tmpfs"):
        mounts.write_credentials(config.mounts["nas"], tmp_path / "on-disk")
    assert not (tmp_path / "on-disk" / "nas").exists()


def test_offline_share_is_reported_and_nothing_is_left_mounted(tmp_path, credentials_dir, caplog):
    """mount -t cifs really runs and fails (no CIFS in this kernel, as with a share that is off)."""
    mountpoint = tmp_path / "nas"
    config = config_with(tmp_path, mountpoint)
    with caplog.at_level(logging.DEBUG):
        state = mounts.mount_one(config.mounts["nas"], config)
    assert not state.mounted and state.error
    assert "mount exited" in state.error
    assert mountpoint.is_dir() and not any(mountpoint.iterdir())
    assert mounts.mounted_source(str(mountpoint)) is None
    assert mounts.down_mount_for(str(mountpoint / "sub"), config) == config.mounts["nas"]
    assert PASSWORD not in caplog.text and PASSWORD not in state.error


def test_never_mounts_over_data(tmp_path, credentials_dir):
    mountpoint = tmp_path / "nas"
    mountpoint.mkdir()
    (mountpoint / "local-data.txt").write_text("mine")
    config = config_with(tmp_path, mountpoint)
    state = mounts.mount_one(config.mounts["nas"], config)
    assert not state.mounted and "not empty" in state.error
    assert (mountpoint / "local-data.txt").read_text() == "mine"
    assert not (credentials_dir / "nas").exists()  # nothing tried


def cifs_supported() -> bool:
    return "cifs" in Path("/proc/filesystems").read_text().split()


@pytest.mark.skipif(not cifs_supported(), reason="this kernel has no CIFS support (not in /proc/filesystems); "
                    "a real mount cannot succeed here")
def test_real_mount_of_a_real_smbd(matrix: Matrix, tmp_path, credentials_dir):
    mountpoint = tmp_path / "mnt"
    path = tmp_path / "nasbox.yaml"
    path.write_text(f"""
mounts:
  nas:
    mountpoint: {mountpoint}
    host: {matrix.server.host}
    share: {SHARE}
    username: {matrix.users['writer']}
    password: {WRITER[1]}
    options: {{port: {matrix.server.port}}}
""")
    config = load_config({"NASBOX_CONFIG": str(path)})
    try:
        state = mounts.mount_one(config.mounts["nas"], config)
        assert state.mounted, state.error
        assert (mountpoint / "hello.txt").read_text() == "hello from nasbox\n"
    finally:
        mounts.unmount_all(config)
    assert mounts.mounted_source(str(mountpoint)) is None


def test_programs_nasbox_runs_do_not_inherit_secrets(monkeypatch):
    from nasbox import commands
    monkeypatch.setenv("MOUNT_NAS_PASSWORD", "hunter2")
    monkeypatch.setenv("SHARE_DOCS", "write docs /d alice:hunter3")
    monkeypatch.setenv("SMTP_PASSWORD", "hunter4")
    monkeypatch.setenv("TZ", "Europe/Berlin")
    seen = commands.run(["env"]).stdout
    assert "hunter" not in seen
    assert "TZ=Europe/Berlin" in seen  # what is not secret still reaches them


def test_a_mount_that_is_down_is_notified_once(tmp_path, credentials_dir):
    """A real HTTP server hears of a mount that is down at start, and not again while it stays down."""
    seen: list[bytes] = []

    class Hook(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            seen.append(self.rfile.read(int(self.headers["Content-Length"])))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Hook)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        config = config_with(tmp_path, tmp_path / "nas", NOTIFY_OPS=f"webhook http://127.0.0.1:{server.server_port}/h")
        mounts.mount_all(config)
        mounts.mount_all(config)  # still down: no second message
    finally:
        server.shutdown()
    [payload] = [json.loads(body) for body in seen]
    assert (payload["job"], payload["status"]) == ("mount nas", "warning")
    assert "//192.0.2.10/docs/photos/2024 is not available" in payload["message"]
    assert PASSWORD not in payload["message"] + payload["details"]
