"""Framework-neutral code imports no framework: checked with the frameworks blocked in a fresh interpreter."""

import subprocess
import sys

import pytest

NEUTRAL_MODULES = [
    "experiments", "experiments.cli", "experiments.spec", "experiments.catalog", "experiments.data",
    "experiments.runner", "experiments.results", "experiments.training", "experiments.worker",
    "experiments.support", "experiments.commands.run", "experiments.commands.listing",
    "experiments.store", "experiments.sweep", "experiments.sweep.task", "experiments.commands.sweep",
    "experiments.report", "experiments.commands.report", "experiments.framework_defaults", "experiments.unfinished",
    "experiments.commands.checks", "experiments.spec.weights",
    "backends", "backends.base", "backends.torch", "backends.keras", "backends.jax", "backends.numpy.model",
]
FRAMEWORKS = ["torch", "tensorflow", "keras", "jax", "flax", "optax"]

BLOCKER = """
import sys, importlib.abc
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split('.')[0] in {frameworks!r}:
            raise ImportError('blocked framework: ' + name)
sys.meta_path.insert(0, Block())
import {module}
print('ok')
"""


@pytest.mark.parametrize("module", NEUTRAL_MODULES)
def test_module_imports_without_frameworks(module):
    code = BLOCKER.format(frameworks=set(FRAMEWORKS), module=module)
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr.strip().splitlines()[-1] if result.stderr else result.stdout
