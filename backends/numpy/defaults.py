"""NumPy's own defaults that the NumPy backend's results depend on, read live (`python -m backends.numpy.defaults`).

The backend has no built-in layer, loss or optimizer, so no hyperparameter default: every formula is written from
the catalog. What NumPy still decides is how float32 arithmetic promotes, what the random generator is, and what
happens on overflow; each row reads it from the installed NumPy so a version change shows up.
"""

import json
import sys

import numpy as np


def framework_defaults() -> list[dict]:
    """Rows {"entry", "parameter", "value", "source"}."""
    errors = np.geterr()
    return [
        {"entry": "numpy", "parameter": "float32 array * Python float", "value": np.result_type(np.float32(1), 1.0).name,
         "source": "np.result_type(np.float32(1), 1.0) (NEP 50: float32 stays float32)"},
        {"entry": "numpy", "parameter": "default_rng bit generator", "value": type(np.random.default_rng(0).bit_generator).__name__,
         "source": "np.random.default_rng (canonical initial weights and training noise)"},
        {"entry": "numpy", "parameter": "floating-point overflow", "value": errors["over"], "source": "np.geterr()"},
        {"entry": "numpy", "parameter": "invalid floating-point operation", "value": errors["invalid"], "source": "np.geterr()"},
    ]


def main() -> None:
    """Print the rows as JSON on stdout."""
    json.dump(framework_defaults(), sys.stdout, indent=1)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
