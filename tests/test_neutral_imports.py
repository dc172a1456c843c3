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


IMPORT_EVERY_NEUTRAL_MODULE = BLOCKER.replace("import {module}\nprint('ok')", """
import pkgutil, experiments
for module in pkgutil.walk_packages(experiments.__path__, "experiments."):
    if not module.name.endswith("__main__"):  # the CLI entry point runs the CLI
        __import__(module.name)
implementations = sorted(name for name in sys.modules if name.count('.') >= 2 and name.startswith('backends.'))
print(implementations)
""")


def test_no_neutral_module_imports_a_backend_implementation():
    """Every module of experiments/ imported at once, frameworks blocked: only the backend registry (backends,
    backends.<name>: what each supports) and the contract (backends.base) may be loaded, never a backend's modules
    (it used to import the NumPy backend for the canonical initial weights)."""
    code = IMPORT_EVERY_NEUTRAL_MODULE.format(frameworks=set(FRAMEWORKS))
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr.strip().splitlines()[-1] if result.stderr else result.stdout
    assert result.stdout.strip().splitlines()[-1] == "[]"
