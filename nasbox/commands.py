"""The one place nasbox runs external programs to completion. (Three start a program and do
not wait for it here: the scheduler its job runs, the login ban smbd, `nasbox run`
supervisord, which replaces it; each says why.)

Command lines are argument lists (never a shell) and never hold secrets: passwords travel on
stdin or in files of mode 0600, so logging a command line is always safe. The programs get
nasbox's environment without its secret-bearing variables; a program that needs a
credential in its environment (restic's back ends) is given it with `env`, for that one
child only.
"""

from __future__ import annotations

import codecs
import contextlib
import logging
import os
import re
import subprocess
import threading
from collections.abc import Callable, Mapping, Sequence

from nasbox.config.environment import child_environment

log = logging.getLogger(__name__)


class CommandError(Exception):
    def __init__(self, argv: Sequence[str], returncode: int, output: str):
        tail = output.strip().splitlines()[-5:]
        super().__init__(f"{argv[0]} exited {returncode}" + (": " + " | ".join(tail) if tail else ""))
        self.argv = list(argv)
        self.returncode = returncode
        self.output = output


def run(
    argv: Sequence[str | bytes],
    *,
    stdin: str | None = None,
    check: bool = True,
    timeout: float | None = 120,
    separate_stderr: bool = False,
    cwd: bytes | None = None,
    pass_fds: tuple[int, ...] = (),
    env: Mapping[str, str] | None = None,
    on_output: Callable[[str], None] | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run argv to completion, its output captured as text: stdout and stderr together, or
    apart with separate_stderr. Bytes arguments (file names need not be UTF-8) are fine.
    cwd and pass_fds: the working directory and the descriptors the program gets; env:
    variables added to its environment (never logged).
    on_output hears each line of stdout as it comes (a carriage return ends one too, as in
    progress lines), for runs without a timeout or stdin."""
    shown = [os.fsdecode(a) for a in argv]
    log.debug("running %s", " ".join(shown))
    stderr = subprocess.PIPE if separate_stderr else subprocess.STDOUT
    if on_output is None:
        result = _completed(
            list(argv), stdin, stderr, child_environment(os.environ) | dict(env or {}), timeout, cwd, pass_fds
        )
    else:
        assert timeout is None and stdin is None and cwd is None and not pass_fds and env is None
        result = _streamed(list(argv), stderr, on_output)
    if check and result.returncode != 0:
        raise CommandError(shown, result.returncode, result.stdout + (result.stderr or ""))
    return result


def _completed(
    argv: list[str | bytes],
    stdin: str | None,
    stderr: int,
    env: dict[str, str],
    timeout: float | None,
    cwd: bytes | None,
    pass_fds: tuple[int, ...],
) -> subprocess.CompletedProcess[str]:
    """subprocess.run, except that a program stopped at its time limit takes the programs it
    started with it: restic's ssh or rclone would otherwise go on alone, holding a connection
    to a server that does not answer."""
    with subprocess.Popen(
        argv,
        stdin=subprocess.PIPE if stdin is not None else None,
        stdout=subprocess.PIPE,
        stderr=stderr,
        env=env,
        text=True,
        errors="replace",
        cwd=cwd,
        pass_fds=pass_fds,
    ) as process:
        try:
            out, err = process.communicate(stdin, timeout=timeout)
        except subprocess.TimeoutExpired:
            kill_with_descendants(process)
            raise
        except BaseException:
            process.kill()
            raise
    return subprocess.CompletedProcess(argv, process.returncode, out, err)


def kill_with_descendants(process: subprocess.Popen[str]) -> None:
    import psutil  # loaded when a time limit passes, not by every command that runs a program

    try:
        descendants = psutil.Process(process.pid).children(recursive=True)  # before they lose their parent
    except psutil.NoSuchProcess:
        descendants = []
    process.kill()
    for descendant in descendants:
        with contextlib.suppress(psutil.NoSuchProcess):
            descendant.kill()
    process.wait()


def _streamed(
    argv: list[str | bytes], stderr: int, on_output: Callable[[str], None]
) -> subprocess.CompletedProcess[str]:
    with subprocess.Popen(
        argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=stderr, env=child_environment(os.environ)
    ) as process:
        out, err = process.stdout, process.stderr
        assert out is not None
        errors: list[bytes] = []
        reader = threading.Thread(target=lambda: errors.append(err.read()) if err else None, daemon=True)
        reader.start()  # stderr is read beside stdout, so that neither pipe fills up
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        output, pending = [], ""
        for chunk in iter(lambda: os.read(out.fileno(), 1 << 16), b""):
            text = decoder.decode(chunk)
            output.append(text)
            *lines, pending = re.split(r"[\r\n]", pending + text)
            for line in lines:
                on_output(line)
        if pending:
            on_output(pending)
        reader.join()
        returncode = process.wait()
    error_text = b"".join(errors).decode(errors="replace") if err is not None else None
    return subprocess.CompletedProcess(argv, returncode, "".join(output), error_text)
