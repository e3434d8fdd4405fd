"""`nasbox scheduler`: the supervised scheduler daemon (not for people to run)."""

from __future__ import annotations

from nasbox.config import load_config
from nasbox.history import History
from nasbox.scheduler import Scheduler


def scheduler() -> int:
    history = History()
    try:
        return Scheduler(load_config(), history).run_forever()
    finally:
        history.close()
