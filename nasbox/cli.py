"""The `nasbox` command: parse arguments, set up logging, dispatch to nasbox.actions.
Exit codes are nasbox.exits'."""

from __future__ import annotations

import argparse
import logging
import os
import re
import sys

from nasbox import exits, state
from nasbox.config import ConfigError
from nasbox.jobkind import JobKind
from nasbox.kinds import KINDS
from nasbox.text import OneLineFormatter

ORIGINS = ("versions", "offsite")
FROM_HELP = (
    "versions: a sync job's versions (the default); offsite: an offsite job's restic snapshots (TIME may "
    "also be a snapshot's ID)"
)


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="nasbox", description="A NAS appliance in one container.")
    verbs = top.add_subparsers(dest="verb", required=True, metavar="COMMAND")
    verbs.add_parser("run", help="prepare everything and start the services (the container's command)")

    config = verbs.add_parser("config", help="check or show the configuration")
    config_verbs = config.add_subparsers(dest="config_verb", required=True, metavar="ACTION")
    config_verbs.add_parser("check", help="validate; exit 0, or 78 listing every problem")
    show = config_verbs.add_parser("show", help="the effective configuration, secrets masked")
    show.add_argument("--json", action="store_true", help="print JSON instead of YAML")

    for kind in KINDS.values():
        kind.add_arguments(add_job_verb(verbs, kind))

    versions = verbs.add_parser("versions", help="the versions a sync job keeps, or those holding one path")
    versions.add_argument("job", metavar="JOB", help="a sync job that keeps versions (an offsite job with --from)")
    versions.add_argument("path", nargs="?", metavar="PATH", help="a file or directory, relative to the job's source")
    versions.add_argument("--json", action="store_true", help="print JSON instead of a table")
    versions.add_argument("--from", dest="origin", choices=ORIGINS, default="versions", help=FROM_HELP)

    restore = verbs.add_parser("restore", help="put a file or directory back as a version of its backup holds it")
    restore.add_argument("job", metavar="JOB", help="the sync job whose versions hold PATH")
    restore.add_argument("path", metavar="PATH", help="a file or directory, relative to the job's source")
    restore.add_argument(
        "--at",
        required=True,
        metavar="TIME",
        help="the newest version taken at or before TIME: ISO 8601 (without an offset in the server's time "
        "zone; a date alone is the start of that day), or a version's name as `nasbox versions` prints it",
    )
    restore.add_argument("--to", metavar="DIR", help="restore into DIR/<name of PATH> instead of the source")
    restore.add_argument("--force", action="store_true", help="overwrite files newer than the version's")
    restore.add_argument("--dry-run", action="store_true", help="show what would be restored; change nothing")
    restore.add_argument("--no-wait", action="store_true", help="exit 75 at once when the sync job is running")
    restore.add_argument("--from", dest="origin", choices=ORIGINS, default="versions", help=FROM_HELP)

    mount = verbs.add_parser("mount", help="(re)try the configured CIFS mounts, or show them")
    mount.add_argument("--status", action="store_true", help="show each mount and whether it is mounted")
    mount.add_argument("--keep", action="store_true", help=argparse.SUPPRESS)  # the supervised keeper

    status = verbs.add_parser("status", help="shares, mounts, and every job with its next and last run")
    status.add_argument("--json", action="store_true", help="print JSON instead of tables")

    notify = verbs.add_parser("notify", help="send a test notification to every target")
    notify.add_argument("--test", action="store_true", required=True, help="send the test notification")

    verbs.add_parser("scheduler")  # the supervised daemon; unlisted: a parser without help is not shown
    verbs.add_parser("runner")  # runs the commands `nasbox` processes hand it, supervised
    verbs.add_parser("smbd")  # smbd under the login ban, supervised
    verbs.add_parser("web")  # the web dashboard, supervised

    health = verbs.add_parser("health", help="exit 0 while smbd answers (the image's HEALTHCHECK)")
    health.add_argument("--port", type=int, default=445, help=argparse.SUPPRESS)
    verbs.add_parser("supervisor-watchdog")
    return top


def verbs() -> set[str]:
    """The names of nasbox's commands (the image's entrypoint passes these to nasbox)."""
    commands = next(a for a in parser()._actions if isinstance(a, argparse._SubParsersAction))
    return set(commands.choices)


def add_job_verb(verbs: argparse._SubParsersAction, kind: JobKind) -> argparse.ArgumentParser:
    """`nasbox KIND [JOB...] --now [--no-wait]`: what every job kind's verb takes."""
    parser = verbs.add_parser(kind.name, help=kind.summary)
    parser.add_argument("jobs", nargs="*", metavar="JOB", help=f"{kind.name} jobs to run (default: all)")
    parser.add_argument("--now", action="store_true", required=True, help="run now (scheduled runs need no command)")
    parser.add_argument("--no-wait", action="store_true", help="exit 75 at once when the job is running")
    # What started the run, for the history and notifications; set by the scheduler.
    parser.add_argument("--trigger", default="now", type=trigger_word, help=argparse.SUPPRESS)
    return parser


def trigger_word(text: str) -> str:
    if not re.fullmatch(r"[a-z][a-z-]*", text):
        raise argparse.ArgumentTypeError(f"expected a word of lower-case letters and '-', got {text!r}")
    return text


def setup_logging() -> None:
    level = os.environ.get("LOG_LEVEL", "info").upper()
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(OneLineFormatter("%(asctime)s nasbox %(levelname)s %(message)s", "%Y-%m-%dT%H:%M:%S%z"))
    # force: a command the runner runs replaces the runner's handler, whose stream is not the caller's.
    logging.basicConfig(
        level=level if level in ("DEBUG", "INFO", "WARNING", "ERROR") else "INFO", handlers=[handler], force=True
    )
    # Their debug lines quote whole notification URLs, tokens included.
    for chatty in ("urllib3", "apprise"):
        logging.getLogger(chatty).setLevel(logging.WARNING)


def dispatch(args: argparse.Namespace) -> int:
    # Imported here so that a quick command such as `health` loads only what it needs.
    if args.verb == "run":
        from nasbox.actions.run import run

        return run()
    if args.verb == "config":
        from nasbox.actions import config

        return config.check() if args.config_verb == "check" else config.show(args.json)
    if args.verb in KINDS:
        from nasbox.actions.jobs import run_now

        return run_now(KINDS[args.verb], args)
    if args.verb == "versions":
        from nasbox.actions.versions import versions

        return versions(args.job, args.path, args.json, args.origin)
    if args.verb == "restore":
        from nasbox.actions.restore import restore

        return restore(args)
    if args.verb == "mount":
        from nasbox.actions import mount

        return mount.keep() if args.keep else mount.mount(args.status)
    if args.verb == "status":
        from nasbox.actions.status import status

        return status(args.json)
    if args.verb == "notify":
        from nasbox.actions.notify import notify_test

        return notify_test()
    if args.verb == "scheduler":
        from nasbox.actions.scheduler import scheduler

        return scheduler()
    if args.verb == "runner":
        from nasbox.runner import serve

        return serve()
    if args.verb == "web":
        from nasbox.actions.web import web

        return web()
    if args.verb == "smbd":
        from nasbox.samba import samba_cmds
        from nasbox.samba.login_ban import run_smbd

        return run_smbd(samba_cmds.smbd())
    if args.verb == "health":
        from nasbox.actions.health import health

        return health(args.port)
    if args.verb == "supervisor-watchdog":
        from nasbox.supervisor import watchdog

        return watchdog()
    raise AssertionError(args.verb)


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    os.umask(state.PRIVATE_UMASK)
    setup_logging()
    try:
        return dispatch(args)
    except ConfigError as e:
        print("configuration invalid:", file=sys.stderr)
        for problem in e.problems:
            print(f"  {problem}", file=sys.stderr)
        return exits.CONFIG
