from __future__ import annotations

from pathlib import Path
from typing import Callable

import pytest
import yaml

from nasbox.config import Config, ConfigError, load_config


@pytest.fixture
def load(tmp_path: Path) -> Callable[..., Config]:
    """load(env=..., yaml_data=...) -> Config, from a temporary nasbox.yaml and a clean env."""
    def _load(env: dict[str, str] | None = None, yaml_data: dict | None = None) -> Config:
        path = tmp_path / "nasbox.yaml"
        path.write_text(yaml.safe_dump(yaml_data or {}))
        return load_config({"NASBOX_CONFIG": str(path), **(env or {})})
    return _load


@pytest.fixture
def problems(load: Callable[..., Config]) -> Callable[..., list[str]]:
    """problems(env=..., yaml_data=...) -> the list of problem lines (fails if valid)."""
    def _problems(env: dict[str, str] | None = None, yaml_data: dict | None = None) -> list[str]:
        with pytest.raises(ConfigError) as caught:
            load(env, yaml_data)
        return caught.value.problems
    return _problems
