"""Offsite backups: encrypted, deduplicated, versioned copies off the box, made with restic."""
