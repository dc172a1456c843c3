"""Classification tasks over the digit labels: the 10-class problem and the binary tasks."""

import numpy as np

from experiments.errors import SpecError


def task_labels(labels: np.ndarray, task: str) -> np.ndarray:
    """The targets of a task as integer labels: digits 0-9, or 0/1 for a binary task.

    "even_odd": 1 for an odd digit; "digit_k": 1 for the digit k, 0 for every other.
    """
    labels = np.asarray(labels, dtype=np.int64)
    if task == "digits":
        return labels
    if task == "even_odd":
        return labels % 2
    if task.startswith("digit_") and task[6:].isdigit():
        return (labels == int(task[6:])).astype(np.int64)
    raise SpecError(f"data.task: {task!r} is not known; allowed: digits, even_odd, digit_0 .. digit_9")


def binary_targets(labels: np.ndarray, dtype: str) -> np.ndarray:
    """(N, 1) float targets of a binary task."""
    return np.asarray(labels, dtype=dtype).reshape(-1, 1)
