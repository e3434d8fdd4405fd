"""The dashboard is a supervised program only with an administrator password."""
from __future__ import annotations

import logging

from nasbox import supervisor


def test_web_runs_only_with_an_admin_password(load, caplog, tmp_path):
    without = load({"SHARE_A": "write a /a alice:pw"})
    with_password = load({"SHARE_A": "write a /a alice:pw", "WEB_ADMIN_PASSWORD": "Secret-1"})
    assert "web" not in [p.name for p in supervisor.programs(without)]
    web = next(p for p in supervisor.programs(with_password) if p.name == "web")
    assert web.argv[1:] == ["web"]
    rendered = supervisor.render(supervisor.programs(with_password), tmp_path, "info")
    assert "Secret-1" not in rendered
    with caplog.at_level(logging.INFO):
        supervisor.web_notice(without)
        supervisor.web_notice(with_password)
    notices = [r.getMessage() for r in caplog.records if "web dashboard" in r.getMessage()]
    assert notices == ["web dashboard: not started; set WEB_ADMIN_PASSWORD (or server.web.admin_password) to serve it"]
