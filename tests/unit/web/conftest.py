"""The dashboard over a real configuration, history and hold (tests.support.web)."""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient

from nasbox.config import Config
from nasbox.web.app import create_app
from tests.support import web


@pytest.fixture
def web_config(load: Callable[..., Config], tmp_path: Path) -> Config:
    return load(web.environment(tmp_path))


@pytest.fixture
def seeded(web_config: Config) -> Config:
    web.seed()
    return web_config


@pytest.fixture
def app(seeded: Config) -> Flask:
    return create_app(seeded)


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


def sign_in(client: FlaskClient, user: str, password: str) -> str:
    """Signs in; the CSRF token of the session."""
    answer = client.post("/login", data={"user": user, "password": password})
    assert answer.status_code == 302, answer.text
    return web.csrf_of(client.get("/").text)
