"""Floating-point operations of a plan, counted from its layers (never from a framework).

Convention: a multiply-add is 2 FLOPs, and only the matrix products are counted: a Dense layer's x @ W
(2 * inputs * units per sample) and a convolution's 2 * Ho * Wo * kh * kw * Cin * Cout per sample ("same" padding
counted as multiplications by the zeros). Bias adds, activations, batch norm, pooling, dropout, the loss and the
optimizer update are left out (they are O(activations) or O(parameters), not O(multiply-adds)). A training step is
counted as TRAINING_FACTOR = 3 forwards: the forward product, the gradient with respect to the weights and the
gradient with respect to the inputs, each with as many multiply-adds as the forward (the first layer's input gradient,
which frameworks skip, is counted anyway: the convention, not a measurement). For an MLP this is 6 x the number of
weights per sample.
"""

import math
import statistics
import time
from collections.abc import Callable

from experiments.spec import plan as P

TRAINING_FACTOR = 3
CONVENTION = ("2 FLOPs per multiply-add of the Dense and Conv2D products only (bias, activations, batch norm, pooling "
              "not counted); a training step = 3 x forward")


def layer_forward_flops(layer: P.Layer) -> int:
    """FLOPs of one sample through the layer's matrix product (0 for layers without one)."""
    if isinstance(layer, P.Dense):
        return 2 * layer.input_shape[-1] * layer.units
    if isinstance(layer, P.Conv2D):
        out_h, out_w = layer.output_shape[0], layer.output_shape[1]
        return 2 * out_h * out_w * layer.kernel_size * layer.kernel_size * layer.input_shape[-1] * layer.filters
    return 0


def forward_flops(plan) -> int:
    """FLOPs of one sample's forward pass through the plan."""
    return sum(layer_forward_flops(layer) for layer in plan)


def training_flops(plan) -> int:
    """FLOPs of one sample in a training step: TRAINING_FACTOR x the forward."""
    return TRAINING_FACTOR * forward_flops(plan)


def gflops(flops_per_sample: int, samples_per_s: float) -> float:
    """Achieved GFLOP/s at a throughput of samples_per_s."""
    return flops_per_sample * samples_per_s / 1e9


def gemm_flops(size: int) -> int:
    """FLOPs of a size x size by size x size matrix product: 2 n^3."""
    return 2 * math.prod((size, size, size))


def gemm_rate(size: int, product: Callable[[], object], repeats: int = 3) -> float:
    """GFLOP/s of a size x size matrix product: `product` runs it once to completion (results read back where the
    framework is asynchronous); one untimed warm-up, then the median of `repeats`."""
    product()
    times = []
    for _ in range(repeats):
        tick = time.perf_counter()
        product()
        times.append(time.perf_counter() - tick)
    return gemm_flops(size) / statistics.median(times) / 1e9

