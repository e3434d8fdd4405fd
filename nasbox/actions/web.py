"""`nasbox web`: the supervised web dashboard (not for people to run)."""

from __future__ import annotations

import logging

from nasbox.config import load_config

log = logging.getLogger(__name__)

THREADS = 4


def web() -> int:
    config = load_config()
    if config.server.web.admin_password is None:
        log.error("web dashboard: no administrator password (server.web.admin_password or WEB_ADMIN_PASSWORD)")
        return 1
    # Loaded here: the other commands need none of it.
    import waitress

    from nasbox.web.app import create_app

    log.info("web dashboard on port %d", config.server.web.port)
    waitress.serve(create_app(config), host="0.0.0.0", port=config.server.web.port, threads=THREADS, ident="nasbox")
    return 0
