"""min_free and space_warning: what they accept, what they mean on a large and a small disk,
and bad values reported naming the field (exit 78)."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from nasbox import space

GIB, MIB = 1 << 30, 1 << 20
SYNC = {"source": "/data/docs", "destination": "/backup/docs", "schedule": "daily"}
SCRUB = {"directory": "/backup/docs", "database": "/var/par", "redundancy": "5%", "schedule": "weekly"}


@pytest.mark.parametrize("value, size, percent", [
    ("10G", 10 * GIB, None), ("500M", 500 * MIB, None), ("1T", 1 << 40, None), ("1.5g", 3 * GIB // 2, None),
    ("64K", 64 << 10, None), ("2P", 2 << 50, None), ("123", 123, None), (0, 0, None), (4096, 4096, None),
    ("5%", None, 5.0), ("0.5%", None, 0.5), ("0%", None, 0.0), ("99%", None, 99.0),
])
def test_min_free_values(value: int | str, size: int | None, percent: float | None) -> None:
    assert space.parse_min_free(value) == space.MinFree(size=size, percent=percent)


@pytest.mark.parametrize("value", ["lots", "-1", -1, True, "100%", "150%", "10 G", "10GB", "%", "", "5%%", "G"])
def test_bad_min_free_values(value: object) -> None:
    with pytest.raises(ValueError, match="a size such as 10G"):
        space.parse_min_free(value)  # type: ignore[arg-type]


def test_the_default_is_the_smaller_of_5_percent_and_10_gib() -> None:
    default = space.parse_min_free(None)
    assert default.of(4 * 10**12) == 10 * GIB  # a 4 TB backup disk keeps 10 GiB, not 200 GB
    assert default.of(64 * MIB) == 64 * MIB * 5 // 100  # a 64 MiB disk keeps 3.2 MiB
    assert str(default) == "the smaller of 5% and 10.0 GiB"
    assert space.parse_min_free("20%").of(1000) == 200 and space.parse_min_free("1M").of(10) == MIB


def test_shortfall_against_this_machines_filesystem(tmp_path: Path) -> None:
    free = space.usage(str(tmp_path)).free
    assert space.shortfall(str(tmp_path / "not" / "made" / "yet"), 0, 0) is None  # its nearest existing ancestor
    short = space.shortfall(str(tmp_path), free + GIB, 0)
    assert short is not None and short.startswith(f"not enough space for {tmp_path}: it needs about ")
    assert "and min_free (0 B) keeps 0 B free" in short
    assert space.shortfall(str(tmp_path), 0, f"{free + GIB}") is not None  # min_free alone
    inodes = os.statvfs(tmp_path).f_favail
    if os.statvfs(tmp_path).f_files:
        assert "inodes free" in (space.shortfall(str(tmp_path), 0, 0, inodes=inodes + 1) or "")


def test_config_takes_min_free_and_space_warning(load) -> None:
    config = load({"SPACE_WARNING": "80%"}, {"sync": {"docs": {**SYNC, "min_free": "20G"}},
                                             "scrub": {"docs": {**SCRUB, "min_free": "3%"}}})
    assert (config.sync["docs"].min_free, config.scrub["docs"].min_free) == ("20G", "3%")
    assert config.server.space_warning == 80
    defaults = load({}, {"server": {"space_warning": "95%"}, "sync": {"docs": SYNC}})
    assert defaults.sync["docs"].min_free is None and defaults.server.space_warning == 95
    assert load({}, {}).server.space_warning == 90


def test_bad_values_name_the_field(problems) -> None:
    found = problems({"SPACE_WARNING": "80"}, {"sync": {"docs": {**SYNC, "min_free": "lots"}},
                                               "scrub": {"docs": {**SCRUB, "min_free": True}}})
    expected = ("a size such as 10G, 500M or 1T (K, M, G, T, P: powers of 1024), bytes as an integer, "
                "or a percentage below 100% such as 5%")
    assert sorted(found) == [
        "env SPACE_WARNING: expected a percentage from 1% to 100%, with its '%', got '80'",
        "nasbox.yaml: scrub.docs.min_free: expected a size such as 10G, bytes as an integer, or a percentage "
        "such as 5%, got True",
        f"nasbox.yaml: sync.docs.min_free: expected {expected}, got 'lots'",
    ]


def test_config_check_exits_78_on_a_bad_min_free(tmp_path: Path) -> None:
    (tmp_path / "nasbox.yaml").write_text(yaml.safe_dump({"scrub": {"docs": {**SCRUB, "min_free": "100%"}}}))
    checked = subprocess.run([sys.executable, "-m", "nasbox", "config", "check"], capture_output=True, text=True,
                             env={**os.environ, "NASBOX_CONFIG": str(tmp_path / "nasbox.yaml")})
    assert checked.returncode == 78
    assert "scrub.docs.min_free: expected a size such as 10G" in checked.stdout + checked.stderr
