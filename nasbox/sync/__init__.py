"""Sync: rsync backups that cannot wipe a backup (CONTRACT 4). rsync_cmds.py builds the
command lines; engine.py runs the guards, rsync, and classifies the outcome."""
