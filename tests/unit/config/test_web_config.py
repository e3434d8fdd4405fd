"""server.web: the dashboard's port, administrator password, viewers and metrics token."""
from __future__ import annotations

from nasbox.config.environment import child_environment
from nasbox.config.show import masked


def test_defaults_serve_nothing(load):
    web = load({"SHARE_A": "write a /a alice:pw"}).server.web
    assert (web.port, web.admin_password, web.viewers, web.metrics_token) == (8080, None, (), None)


def test_environment_sets_every_field(load, tmp_path):
    secret = tmp_path / "pw"
    secret.write_text("s3cret admin\n")
    web = load({
        "SHARE_A": "write a /a alice:pw,bob:pw2",
        "WEB_PORT": "9090",
        "WEB_ADMIN_PASSWORD_FILE": str(secret),
        "WEB_VIEWERS": "alice,bob",
        "WEB_METRICS_TOKEN": "tok-123",
    }).server.web
    assert web.port == 9090
    assert web.admin_password == "s3cret admin"
    assert web.viewers == ("alice", "bob")
    assert web.metrics_token == "tok-123"


def test_yaml_file_secrets(load, tmp_path):
    token = tmp_path / "token"
    token.write_text("tok\n")
    web = load(yaml_data={
        "users": {"alice": {"password": "a"}},
        "server": {"web": {"admin_password": "pw", "metrics_token_file": str(token), "viewers": ["alice"]}},
    }).server.web
    assert (web.admin_password, web.metrics_token, web.viewers) == ("pw", "tok", ("alice",))


def test_secrets_are_masked_in_show_and_repr(load):
    config = load({"WEB_ADMIN_PASSWORD": "adm1n-secret", "WEB_METRICS_TOKEN": "metr1c-secret"})
    shown = masked(config)["server"]["web"]
    assert "adm1n-secret" not in repr(config) and "metr1c-secret" not in repr(config)
    assert "adm1n-secret" not in str(shown) and "metr1c-secret" not in str(shown)


def test_children_do_not_inherit_web_secrets():
    kept = child_environment({"WEB_ADMIN_PASSWORD": "x", "WEB_METRICS_TOKEN_FILE": "/f", "PATH": "/bin"})
    assert kept == {"PATH": "/bin"}


def test_bad_port_names_its_variable(problems):
    assert problems({"WEB_PORT": "70000"}) == ["env WEB_PORT: expected a TCP port from 1 to 65535, got 70000"]


def test_bad_values_name_the_field_and_hide_secrets(problems):
    found = problems(
        {"SHARE_A": "write a /a alice:pw", "WEB_VIEWERS": "alice,carol,admin"},
        yaml_data={"server": {"web": {"admin_password": "x", "admin_password_file": "/nope"}}},
    )
    text = "\n".join(found)
    assert "carol is not a configured user" in text
    assert "admin is the administrator's sign-in name" in text
    assert "both admin_password and admin_password_file" in text


def test_an_empty_token_is_not_echoed(problems):
    found = problems(yaml_data={"server": {"web": {"metrics_token": ""}}})
    assert len(found) == 1 and "server.web.metrics_token" in found[0] and "got" not in found[0]


def test_a_web_variable_overrides_only_its_key(load):
    web = load({"WEB_PORT": "9000"}, yaml_data={"server": {"web": {"admin_password": "pw", "port": 8000}}}).server.web
    assert (web.port, web.admin_password) == (9000, "pw")
