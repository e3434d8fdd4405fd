"""`nasbox status [--json]`: the status document (nasbox.status) as JSON or as tables."""

from __future__ import annotations

import json
import sys
from typing import Any

from nasbox.config import load_config
from nasbox.history import History
from nasbox.progress import human_bytes
from nasbox.status import document


def table(rows: list[list[str]]) -> str:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() for row in rows)


def login_ban_line(ban: dict[str, Any]) -> str:
    line = f"login ban: {ban['state']}" + (f" ({ban['detail']})" if ban["detail"] else "")
    return line + (f"; banned now: {', '.join(ban['banned'])}" if ban["banned"] else "")


def render(data: dict[str, Any]) -> str:
    parts = [login_ban_line(data["login_ban"])]
    if data["shares"]:
        parts.append(
            table(
                [["SHARE", "PATH", "WRITE", "READ"]]
                + [
                    [s["name"], s["path"], ",".join(s["write_users"]) or "-", ",".join(s["read_users"]) or "-"]
                    for s in data["shares"]
                ]
            )
        )
    if data["mounts"]:
        parts.append(
            table(
                [["MOUNT", "SOURCE", "MOUNTPOINT", "STATE"]]
                + [
                    [m["name"], m["source"], m["mountpoint"], "mounted" if m["mounted"] else "NOT MOUNTED"]
                    for m in data["mounts"]
                ]
            )
        )
    if data["jobs"]:
        rows = [["JOB", "SCHEDULE", "NEXT RUN", "LAST RUN", "TOOK", "STATUS", "SUMMARY"]]
        for j in data["jobs"]:
            last = j["last_run"] or {}
            status = "HELD" if j["held"] else last.get("status", "never run")
            rows.append(
                [
                    f"{j['kind']} {j['name']}",
                    j["schedule"],
                    j["next_run"].replace("T", " "),
                    (last.get("started") or "-").replace("T", " ")[:16],
                    f"{last['duration_s']} s" if last.get("duration_s") is not None else "-",
                    status,
                    (j["held"] or last.get("summary") or "")[:70],
                ]
            )
        parts.append(table(rows))
        versions = [j for j in data["jobs"] if j.get("versions")]
        if versions:
            parts.append(
                table(
                    [["VERSIONS OF", "COUNT", "OLDEST", "NEWEST", "KEEP"]]
                    + [
                        [
                            f"{j['kind']} {j['name']}",
                            str(j["versions"]["count"]),
                            j["versions"]["oldest"] or "-",
                            j["versions"]["newest"] or "-",
                            j["versions"]["keep"],
                        ]
                        for j in versions
                    ]
                )
            )
    if data["filesystems"]:
        parts.append(
            table(
                [["FILESYSTEM", "SIZE", "USED", "FREE", "USE%", "HOLDS"]]
                + [
                    [
                        f["mountpoint"],
                        human_bytes(f["size"]),
                        human_bytes(f["used"]),
                        human_bytes(f["free"]),
                        f"{f['used_percent']:.0f}%",
                        ", ".join(f["holds"]),
                    ]
                    for f in data["filesystems"]
                ]
            )
        )
    return "\n\n".join(parts)


def status(as_json: bool) -> int:
    config = load_config()
    history = History()
    try:
        data = document(config, history)
    finally:
        history.close()
    if as_json:
        json.dump(data, sys.stdout, indent=2)
        print()
    else:
        print(render(data))
    return 0
