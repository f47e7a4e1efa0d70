"""The `infercore` command."""
