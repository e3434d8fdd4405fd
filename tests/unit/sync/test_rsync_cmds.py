"""rsync's command lines and the parser of its --stats output."""
from __future__ import annotations

from nasbox.sync import rsync_cmds
from nasbox.sync.kind import SyncJob


def test_stats_parser_reads_rsync_3_wording():
    output = """
Number of files: 1,234 (reg: 1,000, dir: 234)
Number of created files: 5 (reg: 5)
Number of deleted files: 7 (reg: 7)
Number of regular files transferred: 12
Total file size: 9,999 bytes
Total transferred file size: 4,096 bytes
Total bytes sent: 5,000
sent 5,000 bytes  received 100 bytes  2,550.00 bytes/sec
"""
    stats = rsync_cmds.parse_stats(output)
    # files, created and deleted leave directories out: 1,234 entries, 234 of them directories
    assert (stats.files, stats.created, stats.deleted, stats.transferred, stats.bytes_transferred) == (
        1000, 5, 7, 12, 4096)
    assert stats.bytes_per_s == 2550.0


def test_command_line_of_a_preview_and_of_a_copy():
    job = SyncJob("docs", "/data/docs", "/backup/docs/", "daily", exclude=("*.tmp",), bwlimit="10M",
                  hard_links=True)
    preview = rsync_cmds.sync(job, [".pardatabase", "deep/.par[1]"], dry_run=True)
    assert preview == ["rsync", "-a", "--delete", "--sparse", "--partial-dir=.nasbox-partial", "--stats", "--no-human-readable",
                       "--itemize-changes", "-H", "--bwlimit=10M", "--dry-run", "--exclude=*.tmp",
                       "--exclude=/.pardatabase", "--exclude=/deep/.par\\[1]", "--", "/data/docs/", "/backup/docs/"]
    copy = rsync_cmds.sync(job, [], max_delete=0)
    assert "--max-delete=0" in copy and "--dry-run" not in copy and "--itemize-changes" not in copy
    assert copy[-3:] == ["--", "/data/docs/", "/backup/docs/"]  # names can never be read as options
