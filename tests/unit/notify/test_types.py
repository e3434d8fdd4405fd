"""Every notification type the schema accepts has a module that owns it, and none of them
lets a token through to a log or `config show`."""
from __future__ import annotations

import pytest

from nasbox.config.checker import schema
from nasbox.notify import TYPES

TOKEN = "s3cr3t-t0ken"
TARGETS = {
    "webhook": f"https://hooks.example.com/services/{TOKEN}?key={TOKEN}",
    "healthchecks": f"https://hc.example.com/ping/{TOKEN}",
    "apprise": f"tgram://{TOKEN}/12345",
    "mailbox": "admin@example.com",
}


def test_types_are_the_schemas_enum():
    enum = schema()["properties"]["notify"]["additionalProperties"]["properties"]["type"]["enum"]
    assert sorted(TYPES) == sorted(enum) == sorted(TARGETS)


@pytest.mark.parametrize("kind", sorted(TARGETS))
def test_each_type_checks_redacts_and_masks_its_target(kind):
    module, target = TYPES[kind], TARGETS[kind]
    assert module.check(target) is None
    assert module.check("not a target") is not None
    assert TOKEN not in module.redact(target)
    reason = f"failed to reach {target}"
    for secret in module.secrets(target):
        reason = reason.replace(secret, "***")
    assert TOKEN not in reason
    assert isinstance(module.NEEDS_SMTP, bool) and isinstance(module.EVERY_EVENT, bool)
