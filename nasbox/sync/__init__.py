"""Sync: rsync backups that cannot wipe a backup. kind.py is the job kind (model, validation,
options); rsync_cmds.py builds the command lines; engine.py runs the guards, rsync, and
classifies the outcome."""
