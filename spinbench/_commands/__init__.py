"""Subcommands of the ``spinbench`` command line, one module per verb."""
