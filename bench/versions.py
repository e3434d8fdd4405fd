"""Versions of a sync destination: what taking one, pruning 30 and restoring a file cost,
beside `cp -al`, `rm -rf` and `cp -a` of the same trees (and a bare `btrfs subvolume
snapshot` on btrfs), in one run.

    python3 bench/versions.py [--files 100000] [--runs 3] [--filesystems ext4,btrfs]

Each filesystem is a loop-mounted image of its own (sparse, in a scratch directory). The
tree: FILES files of 1 KiB in directories of 100. Every nasbox figure is a `nasbox sync JOB
--now` run through the command line with one file changed, timed until its data is on disk;
the cost of the version is that run's time less the same run in a job without versions.
Space is what the filesystem reports as used (df: blocks and inodes) before and after.
"""
from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import yaml

from nasbox.config import load_config
from nasbox.sync.engine import Sync
from nasbox.versions.store import VERSIONS_DIR, Versions

KIB = 1024


@contextmanager
def filesystem(kind: str, scratch: Path) -> Iterator[Path]:
    image, mountpoint = scratch / f"{kind}.img", scratch / kind
    subprocess.run(["truncate", "-s", "8G", str(image)], check=True)
    mkfs = ["mkfs.ext4", "-q", "-F", "-N", "2000000"] if kind == "ext4" else ["mkfs.btrfs", "-q", "-f"]
    subprocess.run([*mkfs, str(image)], check=True, capture_output=True)
    mountpoint.mkdir()
    subprocess.run(["mount", "-o", "loop", str(image), str(mountpoint)], check=True)
    try:
        yield mountpoint
    finally:
        subprocess.run(["umount", str(mountpoint)], check=False)
        image.unlink()


def make_tree(root: Path, count: int) -> None:
    for i in range(count):
        directory = root / f"d{i // 100:04}"
        if i % 100 == 0:
            directory.mkdir(parents=True)
        (directory / f"f{i:06}").write_bytes(os.urandom(KIB))


def used(path: Path) -> tuple[int, int]:
    """(bytes, inodes) in use on path's filesystem, after the data reached it."""
    os.sync()
    if subprocess.run(["findmnt", "-n", "-o", "FSTYPE", "--target", str(path)], capture_output=True,
                      text=True).stdout.strip() == "btrfs":
        subprocess.run(["btrfs", "filesystem", "sync", str(path)], check=True)
    st = os.statvfs(path)
    return (st.f_blocks - st.f_bfree) * st.f_frsize, st.f_files - st.f_ffree


def timed(argv: list[str], env: dict[str, str] | None = None) -> float:
    started = time.perf_counter()
    subprocess.run(argv, check=True, env=env, stdout=subprocess.DEVNULL)
    os.sync()
    return time.perf_counter() - started


def write_config(path: Path, source: Path, destination: Path, keep: dict | None) -> dict[str, str]:
    job = {"source": str(source), "destination": str(destination), "schedule": "daily", "max_change": "100%"}
    if keep:
        job["versions"] = {"keep": keep}
    path.write_text(yaml.safe_dump({"sync": {"docs": job}}))
    return {**os.environ, "NASBOX_CONFIG": str(path)}


def nasbox_sync(env: dict[str, str], source: Path, run: int) -> float:
    (source / "d0000" / "f000000").write_bytes(os.urandom(KIB) + str(run).encode())
    return timed([sys.executable, "-m", "nasbox", "sync", "docs", "--now"], env)


def median(values: list[float]) -> str:
    return f"{statistics.median(values):.2f} s ({min(values):.2f}-{max(values):.2f})"


def bench(kind: str, root: Path, files: int, runs: int) -> list[tuple[str, str, str]]:
    rows: list[tuple[str, str, str]] = []
    source, destination, plain = root / "source", root / "backup", root / "plain"
    make_tree(source, files)
    if kind == "btrfs":
        subprocess.run(["btrfs", "-q", "subvolume", "create", str(destination)], check=True)
    with_versions = write_config(root / "versions.yaml", source, destination, {"last": 100})
    without = write_config(root / "plain.yaml", source, plain, None)
    nasbox_sync(with_versions, source, 0)  # the first copies
    nasbox_sync(without, source, 0)

    taken, bare, baseline, space = [], [], [], []
    for run in range(1, runs + 1):
        baseline.append(nasbox_sync(without, source, run))
        before = used(root)
        taken.append(nasbox_sync(with_versions, source, run))
        after = used(root)
        space.append((after[0] - before[0], after[1] - before[1]))
        copy = root / f"copy{run}"
        if kind == "btrfs":
            bare.append(timed(["btrfs", "-q", "subvolume", "snapshot", "-r", str(destination), str(copy)]))
        else:
            bare.append(timed(["cp", "-al", str(destination), str(copy)]))
    extra = [t - b for t, b in zip(taken, baseline, strict=True)]
    what = "btrfs subvolume snapshot -r" if kind == "btrfs" else "cp -al"
    rows.append((f"{kind}: sync of one changed file, with a version", median(taken), f"without: {median(baseline)}"))
    rows.append((f"{kind}: the version's own cost (the difference)", median(extra), f"{what}: {median(bare)}"))
    size, inodes = space[-1]
    rows.append((f"{kind}: space one version takes (df)", f"{size / KIB:.0f} KiB, {inodes} inodes",
                 f"data: {files} files, {files * KIB / KIB / KIB:.0f} MiB apparent"))

    # Pruning 30: versions made in process with a clock an hour apart, then one run keeps one.
    moments = iter(datetime(2026, 1, 1, tzinfo=UTC) + timedelta(hours=h) for h in range(10_000))
    config = load_config({"NASBOX_CONFIG": str(root / "versions.yaml")})
    while len(Versions(str(destination)).all()) < 31:
        (source / "d0000" / "f000001").write_bytes(os.urandom(KIB))
        clock = next(moments)
        Sync(config.sync["docs"], config, state_dir=root / "state", clock=lambda c=clock: c).run()
    prune_env = write_config(root / "prune.yaml", source, destination, {"last": 1})
    before = used(root)
    prune = nasbox_sync(prune_env, source, 999)
    freed = before[1] - used(root)[1]
    copies = [root / f"rm{i}" for i in range(30)]
    for copy in copies:
        subprocess.run(["cp", "-al", str(destination), str(copy)] if kind == "ext4" else
                       ["btrfs", "-q", "subvolume", "snapshot", str(destination), str(copy)], check=True)
    os.sync()
    remove = ["rm", "-rf", *map(str, copies)] if kind == "ext4" else \
        ["btrfs", "-q", "subvolume", "delete", *map(str, copies)]
    rows.append((f"{kind}: sync that prunes 30 versions", f"{prune:.2f} s ({freed} inodes freed)",
                 f"{' '.join(remove[:2])} of 30: {timed(remove):.2f} s"))

    # Restoring one file, through the command line, beside cp -a from the version.
    newest = Versions(str(destination)).all()[-1]
    middle = f"d{files // 200:04}/f{files // 2:06}"
    target = root / "restored"
    target.mkdir()
    restore = timed([sys.executable, "-m", "nasbox", "restore", "docs", middle, "--at", newest.name,
                     "--to", str(target)], prune_env)
    copy = timed(["cp", "-a", str(Path(newest.path) / middle), str(root / "copied")])
    rows.append((f"{kind}: restore of one file", f"{restore:.2f} s", f"cp -a: {copy:.2f} s"))
    shutil.rmtree(root / "state", ignore_errors=True)
    assert not (source / VERSIONS_DIR).exists()
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--files", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--filesystems", default="ext4,btrfs")
    parser.add_argument("--scratch", type=Path, default=Path(tempfile.gettempdir()))
    args = parser.parse_args()
    rows: list[tuple[str, str, str]] = []
    with tempfile.TemporaryDirectory(dir=args.scratch, prefix="nasbox-bench-versions-") as scratch:
        home = Path(scratch) / "home"
        os.environ.update({"NASBOX_HOME": str(home), "NASBOX_RUN_DIR": str(Path(scratch) / "run")})
        for kind in args.filesystems.split(","):
            with filesystem(kind, Path(scratch)) as root:
                rows += bench(kind, root, args.files, args.runs)
    width = max(len(r[0]) for r in rows)
    print(f"{'what':<{width}}  nasbox | baseline")
    for what, nasbox, baseline in rows:
        print(f"{what:<{width}}  {nasbox} | {baseline}")


if __name__ == "__main__":
    main()
