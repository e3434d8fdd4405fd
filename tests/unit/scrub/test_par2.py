"""par2's command lines and how parity is sized: pure logic, no par2 run."""

from __future__ import annotations

import pytest

from nasbox.scrub import par2


@pytest.mark.parametrize(
    "size, redundancy",
    [(1, 5), (4096, 5), (65_536, 5), (1 << 20, 5), (100 << 20, 5), (1 << 30, 10), (12_345, 3), (999_999, 100)],
)
def test_parity_stays_close_to_the_redundancy_asked(size: int, redundancy: int) -> None:
    block_size, recovery = par2.sizing(size, redundancy)
    assert block_size % 4 == 0 and recovery >= 1
    source_blocks = -(-size // block_size)
    assert source_blocks <= par2.MAX_BLOCKS
    if source_blocks >= 100 // redundancy:  # enough blocks for whole recovery blocks to fit the ratio
        assert recovery * 100 <= source_blocks * redundancy + 100, (block_size, recovery, source_blocks)


def test_names_are_never_options_and_are_read_as_par2_reads_them() -> None:
    argv = par2.create(b"/data", b"parity.par2", [b"/data/-r100", b"/data/d/x"], 4096, 5, 1)
    assert argv[-5:] == [b"-B", b"/data", b"parity.par2", b"/data/-r100", b"/data/d/x"]
    assert b"-s4096" in argv and b"-c5" in argv
    with pytest.raises(ValueError):  # a path par2 would take for an option is never given to it
        par2.create(b"/data", b"parity.par2", [b"/data/a", b"-r100"], 4096, 5, 1)
    with pytest.raises(ValueError):
        par2.create(b"/data", b"-parity.par2", [b"/data/a"], 4096, 5, 1)
    with pytest.raises(ValueError):
        par2.repair(b"--", b"/db/p.par2")
    assert par2.path_as_par2_reads_it(b"a\\b\x01c") == b"a/b%01c"
