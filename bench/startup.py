"""Image size and start-to-SMB-ready time of nasbox:latest.

Ready = nasbox.health.smb_answers() gets an SMB2 NEGOTIATE answer on the published port,
timed from just before `docker run -d`. Baselines: the base image's size, and the same image
starting smbd alone with Samba's defaults (no nasbox run, no supervisord).

    python3 bench/startup.py [--runs 5]
"""
from __future__ import annotations

import argparse
import datetime
import os
import platform

import _common as c

BASE_IMAGE = "debian:trixie-slim"


def image_size(image: str) -> int | None:
    """Bytes, as `docker image inspect` reports them; None when the image is absent."""
    try:
        return int(c.docker("image", "inspect", "--format", "{{.Size}}", image))
    except RuntimeError:
        return None


def print_sizes() -> None:
    sizes = {image: image_size(image) for image in (c.IMAGE, BASE_IMAGE)}
    rows = [[image, "absent" if size is None else f"{size / 1e6:.0f}"] for image, size in sizes.items()]
    if None not in sizes.values():
        rows.append(["nasbox layers (difference)", f"{(sizes[c.IMAGE] - sizes[BASE_IMAGE]) / 1e6:.0f}"])
    print("\nImage size (docker image inspect .Size; MB = 10^6 bytes)\n")
    c.print_table(["image", "MB"], rows)


def time_starts(label: str, tag: str, run_args: list[str], runs: int) -> list[float]:
    """Start a fresh container `runs` times; seconds until SMB answers, each run printed."""
    times = []
    for run in range(1, runs + 1):
        with c.container(tag, run_args) as started:
            seconds = c.wait_for_smb(started)
        times.append(seconds)
        print(f"  {label}, run {run}: {seconds:.2f} s")
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5, help="container starts per variant (default 5)")
    args = parser.parse_args()
    c.exit_cleanly_on_sigterm()
    c.require_image()

    print(f"startup benchmark, {datetime.date.today()}, {os.cpu_count()} cores, "
          f"kernel {platform.release()}, image {c.docker('image', 'inspect', '--format', '{{.Id}}', c.IMAGE)[:19]}")
    print_sizes()

    print(f"\nStart to SMB-ready, {args.runs} runs each:")
    with c.workspace() as root:
        results = {
            "nasbox (nasbox run, env config)": time_starts(
                "nasbox", "start", c.nasbox_args(root / "share"), args.runs),
            "baseline: smbd alone, Samba defaults": time_starts(
                "smbd alone", "start-bare", c.bare_smbd_args(root / "share", root / "smb.conf"), args.runs),
        }
    print()
    headers = ["variant", *(f"run {i}" for i in range(1, args.runs + 1)), "median"]
    rows = [[label, *(f"{t:.2f}" for t in times), f"{c.median(times):.2f}"] for label, times in results.items()]
    print("Seconds from `docker run -d` to SMB2 NEGOTIATE answered\n")
    c.print_table(headers, rows)


if __name__ == "__main__":
    main()
