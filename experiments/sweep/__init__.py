"""Sweeps: a grid over spec fields and backends, run cell by cell, resumable, each cell a plain-data task."""

from experiments.sweep.cells import Cell, expand_cells
from experiments.sweep.definition import SweepDefinition, load_sweep, sweep_names

__all__ = ["Cell", "SweepDefinition", "expand_cells", "load_sweep", "sweep_names"]
