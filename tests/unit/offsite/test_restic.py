"""What restic says, read: exit codes of 0.14 (Debian 12) and 0.18 (Debian 13, the image),
messages, times with nanoseconds."""
from __future__ import annotations

from datetime import UTC, datetime

import pytest

from nasbox.offsite.restic import Outcome, Ran, outcome_of, parse_time

# Messages as restic 0.14.0 and 0.18.0 print them (seen on this machine).
MISSING_014_LOCAL = ("Fatal: unable to open config file: stat /r/config: no such file or directory\n"
                     "Is there a repository at the following location?\n/r\n")
MISSING_014_REST = "Fatal: unable to open config file: <config/> does not exist\nIs there a repository at ...\n"
MISSING_014_S3 = "Fatal: unable to open config file: Stat: The specified key does not exist.\n"
NO_BUCKET_014 = "Fatal: unable to open config file: Stat: The specified bucket does not exist\n"
UNREACHABLE_014 = ("Fatal: unable to open config file: client.Head: Head \"http://127.0.0.1:1/x/config\": dial tcp "
                   "127.0.0.1:1: connect: connection refused\nIs there a repository at the following location?\n")
WRONG_PASSWORD = "Fatal: wrong password or no key found\n"
LOCKED_014 = ("unable to create lock in backend: repository is already locked by PID 21636 on vm by root "
              "(UID 0, GID 0)\nlock was created at 2026-11-28 22:23:26 (3.1s ago)\n")
NO_PARENT_018 = '{"message_type":"exit_error","code":1,"message":"no matching ID found for prefix \\"deadbeef\\""}\n'


@pytest.mark.parametrize(("code", "stderr", "outcome"), [
    (0, "", Outcome.DONE),
    (3, "", Outcome.INCOMPLETE),
    (1, MISSING_014_LOCAL, Outcome.MISSING),
    (1, MISSING_014_REST, Outcome.MISSING),
    (1, MISSING_014_S3, Outcome.MISSING),
    (1, NO_BUCKET_014, Outcome.MISSING),
    (10, "Fatal: repository does not exist: ...", Outcome.MISSING),
    (1, UNREACHABLE_014, Outcome.FAILED),
    (1, WRONG_PASSWORD, Outcome.WRONG_PASSWORD),
    (12, WRONG_PASSWORD, Outcome.WRONG_PASSWORD),
    (1, LOCKED_014, Outcome.LOCKED),
    (11, "", Outcome.LOCKED),
    (1, NO_PARENT_018, Outcome.NO_SUCH_SNAPSHOT),
    (130, "", Outcome.INTERRUPTED),
    (-9, "", Outcome.INTERRUPTED),
    (2, "panic: ...", Outcome.FAILED),
    (99, "", Outcome.FAILED),  # a code restic has not defined yet: a failure, as its docs say
])
def test_outcomes(code, stderr, outcome):
    assert outcome_of(code, stderr) is outcome


def test_message_is_the_fatal_line_with_what_ssh_said():
    ran = Ran(Outcome.FAILED, 1, "", "subprocess ssh: Host key verification failed.\n"
              "Fatal: unable to open repository at sftp:x:/y: unable to start the sftp session, error: EOF\n")
    assert ran.message == ("subprocess ssh: Host key verification failed. | Fatal: unable to open repository at "
                           "sftp:x:/y: unable to start the sftp session, error: EOF")
    assert Ran(Outcome.NO_SUCH_SNAPSHOT, 1, "", NO_PARENT_018).message == 'no matching ID found for prefix "deadbeef"'
    assert Ran(Outcome.TIMED_OUT, None, "", "Stat(<config/>) returned error, retrying after 1s: refused\n",
               60).message == ("restic did not finish within 60 s; last: Stat(<config/>) returned error, retrying "
                               "after 1s: refused")


def test_times_with_nanoseconds():
    assert parse_time("2026-11-28T22:23:26.456817286Z") == datetime(2026, 11, 28, 22, 23, 26, 456817, tzinfo=UTC)
    assert parse_time("2026-11-28T23:23:26.5+01:00") == datetime(2026, 11, 28, 22, 23, 26, 500000, tzinfo=UTC)
    assert parse_time("2026-11-28T22:23:26Z") == datetime(2026, 11, 28, 22, 23, 26, tzinfo=UTC)
