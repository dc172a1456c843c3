"""Implementations of the mnist-parity subcommands."""
