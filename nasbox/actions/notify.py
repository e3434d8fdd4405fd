"""`nasbox notify --test`: a test notification to every target, whatever its `on` list."""

from __future__ import annotations

from nasbox.config import load_config
from nasbox.notify.deliver import deliver, label, test_event


def notify_test() -> int:
    config = load_config()
    if not config.notify:
        print("no notification targets configured (NOTIFY_<ID> or notify: in the configuration file)")
        return 0
    problems = deliver(config, test_event(config), all_targets=True)
    for target in config.notify.values():
        prefix = label(target) + ": "
        failure = next((p.removeprefix(prefix) for p in problems if p.startswith(prefix)), None)
        print(prefix + ("delivered" if failure is None else f"FAILED: {failure}"))
    return 1 if problems else 0
