"""Samba: smb.conf rendering (smbconf), command lines (samba_cmds), users' passwords."""
