"""SMB write (smbclient put) and read (smbclient get) throughput of one large file over the
published loopback port, against a local `cp` of the same file on the same disk.

Rows: local cp; nasbox with its rendered smb.conf; the same image running smbd alone with a
minimal smb.conf (Samba's defaults). Each figure is the median of --runs timed runs.

    python3 bench/throughput.py [--size-mib 1024] [--runs 3] [--cache drop|warm] [--dir DIR]
"""
from __future__ import annotations

import argparse
import datetime
import os
import platform
import re
import subprocess
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import _common as c

MB = 1e6
CHUNK = 4 << 20
# smbclient prints put/get rates in KiB/s: "(316598.9 kb/s)", "(287438.5 KiloBytes/sec)"
SMBCLIENT_RATE = re.compile(r"\(([\d.]+) (?:kb/s|KiloBytes/sec)\)")


@dataclass
class Rates:
    """MB/s of each timed run, plus smbclient's own figure where there is one."""
    write: list[float] = field(default_factory=list)
    read: list[float] = field(default_factory=list)
    reported: dict[str, list[float]] = field(default_factory=lambda: {"write": [], "read": []})


def make_source(path: Path, size: int) -> None:
    """Random bytes: nothing for compression or sparse files to shortcut."""
    with path.open("wb") as f:
        for offset in range(0, size, CHUNK):
            f.write(os.urandom(min(CHUNK, size - offset)))


def can_drop_caches() -> bool:
    try:
        drop_caches()
    except OSError:
        return False
    return True


def drop_caches() -> None:
    os.sync()
    with open("/proc/sys/vm/drop_caches", "w") as f:
        f.write("3\n")


def settle(cache: str) -> None:
    """Before each timed run: dirty data flushed; with cache=drop, the page cache emptied."""
    drop_caches() if cache == "drop" else os.sync()


def check_size(path: Path, size: int) -> None:
    if path.stat().st_size != size:
        raise RuntimeError(f"{path} has {path.stat().st_size} bytes, expected {size}")


def smbclient(port: int, command: str) -> list[str]:
    return ["smbclient", f"//127.0.0.1/{c.SHARE}", "-p", str(port),
            "-U", f"{c.USER}%{c.PASSWORD}", "-c", command]


def measure(kind: str, rates: Rates, size: int, cache: str, argv: list[str],
            dest: Path, label: str) -> None:
    """One timed run of argv producing dest (removed first, so every run creates a new file)."""
    dest.unlink(missing_ok=True)
    settle(cache)
    seconds, result = c.timed(argv)
    check_size(dest, size)
    rate = size / seconds / MB
    getattr(rates, kind).append(rate)
    line = f"  {label}, {kind}: {seconds:.2f} s, {rate:.1f} MB/s"
    if found := SMBCLIENT_RATE.search(result.stdout + result.stderr):
        reported = float(found.group(1)) * 1024 / MB
        rates.reported[kind].append(reported)
        line += f" (smbclient reports {reported:.1f} MB/s)"
    print(line, flush=True)


def local_cp(root: Path, size: int, runs: int, cache: str) -> Rates:
    """write: source -> share/; read: share/ -> fetched, as put and get move the data."""
    rates = Rates()
    stored, fetched = root / "share" / "local.bin", root / "fetched.bin"
    for _ in range(runs):
        measure("write", rates, size, cache, ["cp", "--reflink=never", str(root / "source.bin"), str(stored)],
                stored, "local cp")
    for _ in range(runs):
        measure("read", rates, size, cache, ["cp", "--reflink=never", str(stored), str(fetched)],
                fetched, "local cp")
    stored.unlink()
    return rates


def over_smb(label: str, tag: str, run_args: list[str], root: Path, size: int, runs: int,
             cache: str) -> Rates:
    """put then get of source.bin through a fresh container's published port."""
    rates = Rates()
    stored, fetched = root / "share" / "smb.bin", root / "fetched.bin"
    with c.container(tag, run_args) as started:
        c.wait_for_smb(started)
        for _ in range(runs):
            measure("write", rates, size, cache, smbclient(started.port, f"put {root / 'source.bin'} smb.bin"),
                    stored, label)
        for _ in range(runs):
            measure("read", rates, size, cache, smbclient(started.port, f"get smb.bin {fetched}"),
                    fetched, label)
    stored.unlink()
    return rates


def print_results(results: dict[str, Rates], runs: int) -> None:
    def cell(values: list[float]) -> str:
        return f"{c.median(values):.1f}" if values else "-"

    print(f"\nThroughput, MB/s (10^6 bytes/s), median of {runs}; wall time of the whole command\n")
    c.print_table(["", "write MB/s", "read MB/s"],
                  [[label, cell(r.write), cell(r.read)] for label, r in results.items()])
    print("\nsmbclient's own rate (transfer only, no connect/logon), MB/s, median\n")
    c.print_table(["", "write MB/s", "read MB/s"],
                  [[label, cell(r.reported["write"]), cell(r.reported["read"])]
                   for label, r in results.items() if r.reported["write"]])


def describe(args: argparse.Namespace, cache: str) -> str:
    smbclient_version = subprocess.run(["smbclient", "--version"], capture_output=True, text=True).stdout.strip()
    image = c.docker("image", "inspect", "--format", "{{.Id}}", c.IMAGE)[:19]
    caches = ("page cache dropped (sync; echo 3 > /proc/sys/vm/drop_caches) before every run: "
              "the source is read from disk, written data lands in the page cache"
              if cache == "drop" else "no cache dropping: the files are in the page cache")
    return (f"throughput benchmark, {datetime.date.today()}, {os.cpu_count()} cores, kernel "
            f"{platform.release()}, smbclient {smbclient_version.removeprefix('Version ')}, image {image}\n"
            f"file: {args.size_mib} MiB of random data in {args.dir or 'the temp dir'}; {caches}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size-mib", type=int, default=1024, help="file size in MiB (default 1024)")
    parser.add_argument("--runs", type=int, default=3, help="timed runs per direction (default 3)")
    parser.add_argument("--cache", choices=["drop", "warm"], default="drop",
                        help="drop the page cache before each run (default, needs root) or not")
    parser.add_argument("--dir", help="where the files go (default: the temp dir); one disk for all")
    args = parser.parse_args()
    c.exit_cleanly_on_sigterm()
    c.require_image()
    cache = args.cache
    if cache == "drop" and not can_drop_caches():
        print("cannot write /proc/sys/vm/drop_caches: running with --cache warm")
        cache = "warm"
    size = args.size_mib << 20
    print(describe(args, cache))

    with c.workspace(args.dir) as root:
        make_source(root / "source.bin", size)
        variants: dict[str, Callable[[], Rates]] = {
            "local cp": lambda: local_cp(root, size, args.runs, cache),
            "nasbox smb.conf": lambda: over_smb(
                "nasbox smb.conf", "io", c.nasbox_args(root / "share"), root, size, args.runs, cache),
            "Samba defaults": lambda: over_smb(
                "Samba defaults", "io-bare", c.bare_smbd_args(root / "share", root / "smb.conf"),
                root, size, args.runs, cache),
        }
        results = {label: run() for label, run in variants.items()}
    print_results(results, args.runs)


if __name__ == "__main__":
    main()
