"""The bench's reference for torch: the plan as the PyTorch tutorials write a model and its training loop
(nn.Sequential of torch.nn layers with torch's default initialisation, torch.optim.Adam, nn.CrossEntropyLoss on class
indices, a Python loop over batches: zero_grad, forward, loss, backward, step), and a timed torch matmul.

It runs in the bench worker's process after the harness's Trainer, so torch's process-wide settings (threads,
deterministic algorithms, matmul precision: backends.torch.framework.configure) are the same on both sides. Inputs
are the 1-channel images reshaped to (N, 1, H, W) as the tutorials write it (a view with standard NCHW strides; the
harness's Trainer builds its data with the same strides, and its catalog model then chooses channels_last itself:
backends.torch.model.PlanModel). No DataLoader: batches are gathered from the training tensor by index, as the
harness does (a DataLoader over a TensorDataset would only slow the reference down).
"""


import numpy as np
import torch
from torch import nn

from backends.torch.framework import tensor_dtype
from experiments.bench.flops import gemm_rate
from experiments.bench.job import NotExpressible, pool_padding, require_tutorial_model
from experiments.spec import plan as P


def _activation(entry) -> nn.Module:
    if entry.name == "relu":
        return nn.ReLU()
    if entry.name == "leaky_relu":
        return nn.LeakyReLU(entry.negative_slope)
    return {"sigmoid": nn.Sigmoid, "tanh": nn.Tanh}[entry.name]()


def _pool(layer: P.MaxPool2D) -> nn.Module:
    """nn.MaxPool2d; "same" padding only where it pads at the end (ceil_mode covers that), the output size checked."""
    (top, bottom), (left, right) = pool_padding(layer)
    if top or left:
        raise NotExpressible(f"{layer.name}: 'same' max pooling that pads before the input (nn.MaxPool2d pads both sides)")
    ceil_mode = bool(bottom or right)
    size = [(n - layer.size + (layer.stride - 1 if ceil_mode else 0)) // layer.stride + 1 for n in layer.input_shape[:2]]
    if tuple(size) != tuple(layer.output_shape[:2]):
        raise NotExpressible(f"{layer.name}: nn.MaxPool2d gives {tuple(size)}, the plan {layer.output_shape[:2]}")
    return nn.MaxPool2d(layer.size, layer.stride, ceil_mode=ceil_mode)


def build_model(plan, dtype: torch.dtype) -> nn.Sequential:
    layers = []
    for layer in plan:
        if isinstance(layer, P.Conv2D):
            layers.append(nn.Conv2d(layer.input_shape[-1], layer.filters, layer.kernel_size, padding=layer.padding, dtype=dtype))
        elif isinstance(layer, P.Dense):
            layers.append(nn.Linear(layer.input_shape[-1], layer.units, dtype=dtype))
        elif isinstance(layer, P.Activation):
            layers.append(_activation(layer.activation))
        elif isinstance(layer, P.BatchNormalization):
            norm = nn.BatchNorm2d if len(layer.input_shape) == 3 else nn.BatchNorm1d
            layers.append(norm(layer.input_shape[-1], eps=layer.epsilon, momentum=1.0 - layer.momentum, dtype=dtype))
        elif isinstance(layer, P.MaxPool2D):
            layers.append(_pool(layer))
        elif isinstance(layer, P.Dropout):
            layers.append(nn.Dropout(layer.rate))
        elif isinstance(layer, P.Flatten):
            layers.append(nn.Flatten())
        else:
            raise NotExpressible(f"layer {layer.name} ({type(layer).__name__})")
    return nn.Sequential(*layers)


class Reference:
    description = ("nn.Sequential (torch.nn layers, default init), torch.optim.Adam, nn.CrossEntropyLoss on class "
                   "indices, Python loop: zero_grad, forward, loss, backward, step")

    def __init__(self, spec, plan, threads: int, x: np.ndarray, y: np.ndarray) -> None:
        require_tutorial_model(spec, plan)
        dtype = tensor_dtype(spec.dtype)
        torch.manual_seed(spec.seed)
        self.model = build_model(plan, dtype)
        o = spec.optimizer
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=o.learning_rate, betas=(o.beta_1, o.beta_2), eps=o.epsilon)
        self.loss = nn.CrossEntropyLoss()
        self.x = torch.tensor(x, dtype=dtype)  # (N, features) for an MLP
        if x.ndim == 4:  # (N, H, W, 1) images, reshaped as the tutorials do: NCHW, standard strides
            if x.shape[-1] != 1:
                raise NotExpressible(f"the tutorials reshape 1-channel images to (N, 1, H, W), not {x.shape[-1]} channels")
            self.x = self.x.reshape(-1, 1, *x.shape[1:3])
        self.labels = torch.from_numpy(np.argmax(y, axis=1))

    def prepare(self, batches: list[np.ndarray]) -> list[torch.Tensor]:
        return [torch.from_numpy(np.asarray(batch, dtype=np.int64)) for batch in batches]

    def train(self, batches: list[torch.Tensor]) -> None:
        self.model.train()
        for index in batches:
            inputs, labels = self.x[index], self.labels[index]
            self.optimizer.zero_grad()
            loss = self.loss(self.model(inputs), labels)
            loss.backward()
            self.optimizer.step()


def reference_trainer(spec, plan, threads: int, x: np.ndarray, y: np.ndarray) -> Reference:
    """The tutorial-style model and loop for the spec (NotExpressible where it has no simple counterpart)."""
    return Reference(spec, plan, threads, x, y)


def gemm_gflops(size: int, dtype: str, repeats: int = 3) -> float:
    """GFLOP/s of a size x size matmul in torch (the median of `repeats` after one warm-up)."""
    dtype = tensor_dtype(dtype)
    a, b = torch.rand(size, size, dtype=dtype), torch.rand(size, size, dtype=dtype)
    out = torch.empty(size, size, dtype=dtype)
    return gemm_rate(size, lambda: torch.mm(a, b, out=out), repeats)
