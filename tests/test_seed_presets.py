"""Seed article 003's two PyTorch systems as presets: each is the article's network, written the article's way in
torch, and trains on every backend."""

import json

import numpy as np
import pytest

from backends.numpy.model import forward
from experiments.spec import load_spec, plan_of, trainable_parameter_count
from experiments.spec.weights import initial_weights
from tests.cli_helpers import mnist_parity

torch = pytest.importorskip("torch")

ARTICLE_FORWARD_TOLERANCE = 1e-12
"""The article's torch network and the preset's NumPy oracle on the same weights, float64: the same arithmetic
up to summation order."""


def article_binary() -> "torch.nn.Module":
    """784 -> Linear(100) -> ReLU -> Linear(1) -> Sigmoid, as seed 003 writes it."""
    nn = torch.nn
    return nn.Sequential(nn.Flatten(), nn.Linear(784, 100), nn.ReLU(), nn.Linear(100, 1), nn.Sigmoid()).double()


def article_cnn() -> "torch.nn.Module":
    """Seed 003's SimpleCNN with the two 2x2 max-pools its Linear(64*7*7, 10) assumes."""
    nn = torch.nn
    return nn.Sequential(nn.Conv2d(1, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(32, 64, 3, padding=1),
                         nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(64 * 7 * 7, 10), nn.LogSoftmax(dim=1)).double()


def load_canonical(module, weights: dict[str, np.ndarray]) -> None:
    """Canonical weights into torch's layouts: dense (in, out) -> (out, in); conv (kh, kw, in, out) -> (out, in, kh,
    kw); the dense after a (7, 7, 64) flatten reordered from (H, W, C) to torch's (C, H, W) inputs."""
    layers = [m for m in module if isinstance(m, (torch.nn.Linear, torch.nn.Conv2d))]
    names = sorted({name.split("/")[0] for name in weights}, key=lambda n: (not n.startswith("conv"), n))
    for layer, name in zip(layers, names, strict=True):
        kernel, bias = weights[f"{name}/kernel"], weights[f"{name}/bias"]
        if kernel.ndim == 4:
            kernel = kernel.transpose(3, 2, 0, 1)
        elif kernel.shape[0] == 64 * 7 * 7:
            kernel = kernel.reshape(7, 7, 64, -1).transpose(2, 0, 1, 3).reshape(64 * 7 * 7, -1).T
        else:
            kernel = kernel.T
        with torch.no_grad():
            layer.weight.copy_(torch.from_numpy(np.ascontiguousarray(kernel)))
            layer.bias.copy_(torch.from_numpy(bias))


@pytest.mark.parametrize("preset, build, parameters", [
    ("seed-torch-binary", article_binary, 784 * 100 + 100 + 100 * 1 + 1),
    ("seed-torch-cnn", article_cnn, 1 * 32 * 9 + 32 + 32 * 64 * 9 + 64 + 64 * 7 * 7 * 10 + 10),
], ids=["binary", "cnn"])
def test_the_preset_is_the_articles_network(preset, build, parameters, digits):
    """Same parameter count as the article's module, and the same outputs from the same weights: the probability of
    an odd digit (sigmoid of the logit), or the log-probabilities (log-softmax of the logits)."""
    spec = load_spec(preset, ['dtype="float64"'])
    plan = plan_of(spec)
    module = build()
    assert trainable_parameter_count(plan) == parameters == sum(p.numel() for p in module.parameters())
    weights = initial_weights(plan, spec.seed)
    load_canonical(module, weights)
    with torch.no_grad():
        article = module(torch.from_numpy(digits).permute(0, 3, 1, 2).contiguous()).numpy()
    logits = forward(plan, weights, digits)
    ours = 1.0 / (1.0 + np.exp(-logits)) if preset == "seed-torch-binary" else logits - np.log(np.exp(logits).sum(1, keepdims=True))
    error = np.linalg.norm(ours - article) / np.linalg.norm(article)
    assert error <= ARTICLE_FORWARD_TOLERANCE, f"{preset}: {error:.2e}"


ONE_EPOCH_BINARY_MIN_ACCURACY = 0.80
"""Odd-or-even after one epoch on the 4,000-digit subset: ~0.9 on every backend (chance is 0.5)."""


def test_the_binary_seed_system_trains_on_every_backend(tmp_path):
    result = mnist_parity("run", "seed-torch-binary", "--epochs", "1", "--dataset", "mnist-subset", "--no-download",
                          "--threads", "1", "--out", str(tmp_path))
    assert result.returncode == 0, result.stderr[-2000:]
    document = json.loads(next(tmp_path.glob("*/results.json")).read_text())
    for name, outcome in document["backends"].items():
        assert outcome["status"] == "ok", name
        assert outcome["parameter_count"] == 78_601, name
        assert outcome["metrics"]["test_accuracy"] >= ONE_EPOCH_BINARY_MIN_ACCURACY, (name, outcome["metrics"])
