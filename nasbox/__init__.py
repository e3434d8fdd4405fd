"""nasbox: a NAS appliance in one container (Samba shares, rsync backups, par2 scrubbing)."""
