"""Which compared quantities share a scale S (see stats.NEGLIGIBLE), and each group's scale."""

import numpy as np


def scale_group(key: str) -> str:
    """The group whose largest magnitude is a quantity's scale S (see stats.NEGLIGIBLE): all forward
    outputs, all gradients, one optimizer case's weights or state, the parameters at one trajectory
    checkpoint, all parameter-norm curves; the loss curve alone."""
    parts = key.split("/")
    if parts[0] == "step":
        return "/".join(parts[:3])
    if parts[0] == "trajectory" and parts[1] == "at":
        return "/".join(parts[:3])
    if parts[0] == "trajectory":
        return "/".join(parts[:2])
    if parts[0] == "gradients":
        return key if key == "gradients/loss" else "gradients"
    return parts[0]


def group_scales(values: dict[str, np.ndarray]) -> dict[str, float]:
    """Each group's scale S: the largest magnitude among its quantities' reference values."""
    scales: dict[str, float] = {}
    for key, value in values.items():
        group = scale_group(key)
        scales[group] = max(scales.get(group, 0.0), float(np.max(np.abs(value))) if np.size(value) else 0.0)
    return scales
