"""The process supervisor: its rendered configuration and the watchdog that ends it.

PID 1 is tini; it starts `nasbox run`, which prepares everything and then becomes
supervisord. supervisord runs the services in the foreground with their logs on stdout.
"""

from __future__ import annotations

import logging
import os
import shlex
import signal
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from nasbox import state
from nasbox.config import Config
from nasbox.discovery.daemons import daemons
from nasbox.samba.smbconf import UnsafeValue, environment
from nasbox.text import is_one_line

log = logging.getLogger(__name__)

SUPERVISORD = Path(sys.prefix) / "bin" / "supervisord"
NASBOX = Path(sys.prefix) / "bin" / "nasbox"


@dataclass(frozen=True)
class Program:
    name: str
    argv: list[str]
    start_seconds: int = 2
    stop_wait_seconds: int = 10
    priority: int = 999  # supervisord starts lower ones first and stops them last

    @property
    def command(self) -> str:
        return shlex.join(self.argv)


def clean_environment(config: Config, argv: list[str]) -> list[str]:
    """argv run with an empty environment but PATH and TZ: the container's environment may
    hold passwords, and only nasbox's own programs need it."""
    return ["env", "-i", "PATH=/usr/sbin:/usr/bin:/sbin:/bin", f"TZ={config.server.timezone}", *argv]


def programs(config: Config) -> list[Program]:
    services = [
        # smbd under nasbox.samba.login_ban, which tells `nasbox status` through the run directory.
        Program("smbd", clean_environment(config, [f"NASBOX_RUN_DIR={state.run_dir()}", str(NASBOX), "smbd"])),
        # Long enough for its running jobs to end rsync and par2 and record the stop.
        Program("scheduler", [str(NASBOX), "scheduler"], start_seconds=1, stop_wait_seconds=30),
        # Up before the scheduler hands it a run; stopped after the scheduler has stopped its runs.
        Program("runner", [str(NASBOX), "runner"], start_seconds=1, stop_wait_seconds=30, priority=100),
    ]
    if config.mounts:  # retries mounts that are down, undoes them all on stop
        services.append(Program("mounts", [str(NASBOX), "mount", "--keep"], start_seconds=1))
    services += [Program(name, clean_environment(config, argv)) for name, argv in daemons(config, state.run_dir())]
    if config.server.web.admin_password is not None:  # without one the dashboard is not served
        services.append(Program("web", [str(NASBOX), "web"], start_seconds=2))
    return services


def web_notice(config: Config) -> None:
    """Said once at the container's start when the dashboard is not served."""
    if config.server.web.admin_password is None:
        log.info("web dashboard: not started; set WEB_ADMIN_PASSWORD (or server.web.admin_password) to serve it")


def supervisor_value(value: object) -> str:
    """A value for supervisord.conf: on one line, and with '%' doubled, since supervisord
    expands %(name)s in its values."""
    text = str(value)
    if not is_one_line(text):
        raise UnsafeValue(f"refusing to write {text!r} into the supervisor's configuration")
    return text.replace("%", "%%")


def render(services: list[Program], run_dir: Path, log_level: str) -> str:
    return (
        environment(supervisor_value)
        .get_template("supervisord.conf.j2")
        .render(
            programs=services,
            run_dir=run_dir,
            log_level=log_level.replace("warning", "warn"),
            watchdog=shlex.join([str(NASBOX), "supervisor-watchdog"]),
        )
    )


def exec_supervisord(conf: Path) -> None:
    """Replace this process with supervisord (so not through commands.run: nothing returns)."""
    os.execv(SUPERVISORD, [str(SUPERVISORD), "--nodaemon", "--configuration", str(conf)])


def watchdog(stdin: TextIO = sys.stdin, stdout: TextIO = sys.stdout) -> int:
    """A supervisor event listener: on PROCESS_STATE_FATAL, stop supervisord (its parent)."""
    while True:
        stdout.write("READY\n")
        stdout.flush()
        header_line = stdin.readline()
        if not header_line:
            return 0
        header = dict(field.split(":", 1) for field in header_line.split())
        payload = stdin.read(int(header["len"]))
        body = dict(field.split(":", 1) for field in payload.split())
        print(
            f"nasbox: {body.get('processname')} cannot be kept running; stopping the container",
            file=sys.stderr,
            flush=True,
        )
        stdout.write("RESULT 2\nOK")
        stdout.flush()
        os.kill(os.getppid(), signal.SIGTERM)
