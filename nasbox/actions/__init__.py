"""One module per user-facing verb of the `nasbox` command."""
