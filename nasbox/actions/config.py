"""`nasbox config check` and `nasbox config show [--json]`."""

from __future__ import annotations

import json
import sys

import yaml

from nasbox.config import load_config
from nasbox.config.show import masked


def check() -> int:
    load_config()
    print("configuration is valid")
    return 0


def show(as_json: bool) -> int:
    data = masked(load_config())
    if as_json:
        json.dump(data, sys.stdout, indent=2)
        print()
    else:
        yaml.safe_dump(data, sys.stdout, sort_keys=False, default_flow_style=False)
    return 0
