"""`nasbox run`: the container's entrypoint.

Validate everything first and change nothing when the configuration is bad; then create the
accounts and Samba passwords, render smb.conf and the supervisor's configuration, and hand
the process over to supervisord.
"""

from __future__ import annotations

import logging
from pathlib import Path

from nasbox import capabilities, mounts, state, supervisor
from nasbox.config import load_config
from nasbox.discovery import daemons as discovery
from nasbox.samba import accounts, login_ban, recycle, samba_cmds, shares, smbconf, time_machine, version_views
from nasbox.samba.previous_versions import shown_jobs

log = logging.getLogger(__name__)


def run() -> int:
    config = load_config()
    account_plan = accounts.plan(config, state.state_dir())

    state.make_private(*state.own_directories())
    accounts.apply(config, account_plan, state.state_dir())
    mounts.mount_all(config)  # before the shares, which may lie on a mount; an offline one is retried
    shares.prepare(config, account_plan.uids, account_plan.gid)
    recycle.prepare(config, account_plan.gid)
    time_machine.prepare(config, account_plan.uids, account_plan.gid)
    version_views.prepare(config, shown_jobs(config))
    smbconf.write(config, Path(samba_cmds.SMB_CONF))
    discovery.prepare(config, state.run_dir())
    conf = state.run_dir() / "supervisord.conf"
    conf.write_text(
        supervisor.render(supervisor.programs(config), state.run_dir(), config.server.log_level), encoding="utf-8"
    )
    capabilities.start_notice(config)
    login_ban.start_notice()
    supervisor.web_notice(config)
    log.info("starting: %d users, %d shares", len(config.users), len(config.shares))
    supervisor.exec_supervisord(conf)
    return 0  # not reached: exec_supervisord replaces this process
