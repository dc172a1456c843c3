"""The torch catalog backend's fast paths (issue 14) against what they replace: the hand-written batch-norm backward
(_TrainBatchNorm) against finite differences, autograd through the written-out two-pass formula and the NumPy
oracle; the cross-entropy on F.cross_entropy against the written-out catalog formula, and the trainer's per-step
statistics gathered after the loop; max pooling by ceil_mode against -inf padding; the in-place dropout multiplier
against the mask it replaced; the channels_last catalog model, its standard-strided inputs and the NCHW native
model; in-place relu / leaky_relu and where the model uses them. Each was checked once against a planted error
(a dropped backward term, a lost smoothing, a wrong layout or pool mode...). No timing here: speed is measured by
`mnist-parity bench`."""

import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import torch.nn.functional as F  # noqa: E402

from backends.numpy.model import _batch_norm_forward, layer_backward  # noqa: E402
from backends.numpy.trainer import Trainer as OracleTrainer  # noqa: E402
from backends.torch.losses import make_loss  # noqa: E402
from backends.torch.model import BatchNorm, Dropout, MaxPool2D, _TrainBatchNorm  # noqa: E402
from backends.torch.reference import reference_trainer  # noqa: E402
from backends.torch.trainer import Trainer  # noqa: E402
from experiments.catalog.activations import Linear, Softmax  # noqa: E402
from experiments.catalog.losses import CategoricalCrossentropy  # noqa: E402
from experiments.spec import build_plan, load_spec  # noqa: E402
from experiments.spec import plan as P  # noqa: E402
from experiments.spec.plan import same_or_valid_size, same_padding  # noqa: E402
from tests.backend_helpers import assert_steps_match_oracle, error, group_scale, random_weights  # noqa: E402

BN_FLOAT64 = 1e-13
"""Normwise relative error of _TrainBatchNorm's float64 output, batch statistics and gradients (input, scale,
offset) against the NumPy oracle and against autograd through the written-out two-pass formula: measured at most
9.7e-16 over BN_SHAPES and seed-cnn's (64, 32, 28, 28) layer; a dropped or wrong term in the backward is O(1e-2) or
more."""

BN_FLOAT32 = 1e-5
"""Float32 _TrainBatchNorm (NCHW and channels_last) against the float64 oracle on the same float32-rounded
values, a (64, 32, 28, 28) batch of relu'd N(3, 1) values: measured at most 6.2e-7; the bound is the suite's float32
tolerance (tests/test_backend_torch.py TOLERANCE)."""

# (shape, channels_last): 2-D (N, F) and 4-D (N, C, H, W) inputs, a batch of one, channels_last 4-D.
BN_SHAPES = [((7, 5), False), ((64, 120), False), ((1, 6), False), ((3, 4, 5, 5), False), ((2, 3, 7, 7), True),
             ((1, 3, 4, 4), False), ((1, 3, 4, 4), True), ((16, 8, 6, 6), True)]


def _oracle_batch_norm(x, scale, offset, dy, epsilon):
    """The NumPy oracle's train-mode batch norm on an NCHW / (N, F) array: y, mean, var, dx, d scale, d offset."""
    perm = (0, 2, 3, 1) if x.ndim == 4 else (0, 1)
    back = tuple(np.argsort(perm))
    layer = P.BatchNormalization("bn", x.shape[1:], x.shape[1:], "", momentum=0.9, epsilon=epsilon)
    params = {"scale": scale, "offset": offset, "mean": np.zeros(x.shape[1]), "variance": np.ones(x.shape[1])}
    y, cache = _batch_norm_forward(layer, params, x.transpose(perm), True)
    dx, grads = layer_backward(layer, params, cache, dy.transpose(perm))
    running = cache[2]  # m * 0 + (1 - m) * mean, m * 1 + (1 - m) * var with m = 0.9
    mean, var = running["mean"] / 0.1, (running["variance"] - 0.9) / 0.1
    return y.transpose(back), mean, var, dx.transpose(back), grads["scale"], grads["offset"]


def _written_out(x, weight, bias, epsilon):
    """The two-pass formula _TrainBatchNorm replaced, differentiated by autograd."""
    dims = [0, *range(2, x.dim())]
    mean = x.mean(dim=dims, keepdim=True)
    var = (x - mean).square().mean(dim=dims, keepdim=True)
    return (x - mean) / torch.sqrt(var + epsilon) * weight.reshape(mean.shape) + bias.reshape(mean.shape)


def _inputs(shape, channels_last, dtype=torch.float64, seed=0):
    rng = np.random.default_rng(seed)
    arrays = rng.normal(3.0, 1.5, shape), rng.normal(size=shape[1]), rng.normal(size=shape[1]), rng.normal(size=shape)
    x, w, b, dy = (torch.tensor(a, dtype=dtype) for a in arrays)
    if channels_last:
        x, dy = x.contiguous(memory_format=torch.channels_last), dy.contiguous(memory_format=torch.channels_last)
    return arrays, x.requires_grad_(), w.requires_grad_(), b.requires_grad_(), dy


@pytest.mark.parametrize("shape, channels_last", BN_SHAPES)
def test_batch_norm_backward_passes_gradcheck(shape, channels_last):
    """Finite differences (torch.autograd.gradcheck, float64) of the output with respect to x, scale and offset."""
    _, x, w, b, _ = _inputs(shape, channels_last)
    assert torch.autograd.gradcheck(lambda x, w, b: _TrainBatchNorm.apply(x, w, b, 1e-3)[0], (x, w, b))


@pytest.mark.parametrize("shape, channels_last", BN_SHAPES + [((64, 32, 28, 28), False), ((64, 32, 28, 28), True)])
def test_batch_norm_matches_the_oracle_and_the_written_out_formula(shape, channels_last):
    """Output, batch statistics and the three gradients against the NumPy oracle and against autograd through the
    two-pass formula, to BN_FLOAT64; the output and the input gradient keep the input's memory format."""
    (xa, wa, ba, dya), x, w, b, dy = _inputs(shape, channels_last)
    y, mean, var = _TrainBatchNorm.apply(x, w, b, 1e-3)
    dx, dw, db = torch.autograd.grad(y, (x, w, b), dy)
    ours = [t.detach().numpy() for t in (y, mean, var, dx, dw, db)]
    oracle = _oracle_batch_norm(xa, wa, ba, dya, 1e-3)
    # dx is a difference of terms of size |dy * scale * inv_std|, measured against that scale where it cancels (a
    # batch of one: exactly 0 in the oracle, rounding here, addcmul being a fused multiply-add)
    channel = (1, -1, 1, 1) if xa.ndim == 4 else (1, -1)
    terms = group_scale([dya * (wa / np.sqrt(oracle[2] + 1e-3)).reshape(channel)])
    scales = {"dx": terms}
    names = ("y", "mean", "var", "dx", "d scale", "d offset")
    for name, got, want in zip(names, ours, oracle):
        assert error(got, want, scales.get(name, 0.0)) <= BN_FLOAT64, f"{name} against the oracle: {error(got, want):.2e}"
    y_ref = _written_out(x, w, b, 1e-3)
    for name, got, want in zip(("y", "dx", "d scale", "d offset"), (y, dx, dw, db),
                               (y_ref, *torch.autograd.grad(y_ref, (x, w, b), dy))):
        got, want = got.detach().numpy(), want.detach().numpy()
        assert error(got, want, scales.get(name, 0.0)) <= BN_FLOAT64, f"{name} against the written-out form"
    if channels_last:
        assert y.is_contiguous(memory_format=torch.channels_last) and dx.is_contiguous(memory_format=torch.channels_last)


@pytest.mark.parametrize("channels_last", [False, True])
def test_batch_norm_float32_gradients_stay_close_to_the_float64_oracle(channels_last):
    rng = np.random.default_rng(1)
    shape = (64, 32, 28, 28)
    xa = np.maximum(rng.normal(3.0, 1.0, shape), 0.0).astype(np.float32).astype(np.float64)
    dya = rng.normal(size=shape).astype(np.float32).astype(np.float64)
    wa, ba = (rng.normal(size=32).astype(np.float32).astype(np.float64) for _ in range(2))
    x, dy = torch.tensor(xa, dtype=torch.float32), torch.tensor(dya, dtype=torch.float32)
    if channels_last:
        x, dy = x.contiguous(memory_format=torch.channels_last), dy.contiguous(memory_format=torch.channels_last)
    x.requires_grad_()
    w, b = (torch.tensor(a, dtype=torch.float32, requires_grad=True) for a in (wa, ba))
    y, mean, var = _TrainBatchNorm.apply(x, w, b, 1e-3)
    ours = [t.detach().double().numpy() for t in (y, mean, var, *torch.autograd.grad(y, (x, w, b), dy))]
    for name, got, want in zip(("y", "mean", "var", "dx", "d scale", "d offset"), ours,
                               _oracle_batch_norm(xa, wa, ba, dya, 1e-3)):
        assert error(got, want) <= BN_FLOAT32, f"{name}: {error(got, want):.2e}"
        assert got.dtype == np.float64 and error(got, want) > 0.0  # float32 arithmetic, not float64


def test_batch_norm_module_updates_running_statistics_from_the_function():
    layer = P.BatchNormalization("bn", (5, 5, 4), (5, 5, 4), "", momentum=0.8, epsilon=1e-3)
    module = BatchNorm(layer, torch.float64).train()
    (xa, *_), x, *_ = _inputs((6, 4, 5, 5), True)
    module(x)
    x64 = xa.transpose(0, 2, 3, 1).reshape(-1, 4)
    assert error(module.running_mean.numpy(), 0.2 * x64.mean(axis=0)) <= BN_FLOAT64
    assert error(module.running_var.numpy(), 0.8 + 0.2 * x64.var(axis=0)) <= BN_FLOAT64


# -- cross-entropy -----------------------------------------------------------------------------------------------------


def _written_out_crossentropy(z, y, smoothing):
    y = (1.0 - smoothing) * y + smoothing / y.shape[1] if smoothing > 0.0 else y
    return -(y * F.log_softmax(z, dim=1)).sum(dim=1)


def _targets(kind, rng, dtype):
    if kind == "one-hot":
        return torch.tensor(np.eye(10)[rng.integers(0, 10, 64)], dtype=dtype)
    p = rng.random((64, 10))
    return torch.tensor(p / p.sum(axis=1, keepdims=True), dtype=dtype)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("smoothing", [0.0, 0.1, 0.3])
@pytest.mark.parametrize("kind", ["one-hot", "probabilities"])
@pytest.mark.parametrize("output", [Softmax(name="softmax"), Linear(name="linear")])
def test_crossentropy_is_the_written_out_catalog_formula_bit_for_bit(dtype, smoothing, kind, output):
    """make_loss's F.cross_entropy (probability targets) gives exactly the values and gradients of
    -(y' * log_softmax(z)).sum(1), y' the smoothed targets."""
    rng = np.random.default_rng(7)
    z, y = torch.tensor(rng.normal(0.0, 4.0, (64, 10)), dtype=dtype), _targets(kind, rng, dtype)
    entry = CategoricalCrossentropy(name="categorical_crossentropy", label_smoothing=smoothing)
    losses = {"written out": lambda z: _written_out_crossentropy(z, y, smoothing), "make_loss": lambda z: make_loss(entry, output)(z, y)}
    results = {}
    for name, function in losses.items():
        logits = z.clone().requires_grad_()
        value = function(logits)
        (gradient,) = torch.autograd.grad(value.mean(), logits)
        results[name] = value.detach(), gradient
    want = results.pop("written out")
    for name, got in results.items():
        assert torch.equal(got[0], want[0]) and torch.equal(got[1], want[1]), name


def _make(preset, overrides=(), dtype="float64", native=False):
    spec = load_spec(preset, [*overrides, f'dtype="{dtype}"', *(['implementation="native"'] if native else [])])
    plan = build_plan(spec.model, (28, 28, 1), spec.data.num_outputs)
    return Trainer(spec, plan, threads=1), spec, plan


TINY_CNN = ['model.conv=[{filters=3, kernel_size=3, padding="same", activation="relu",'
            ' batch_norm={momentum=0.9, epsilon=1e-3}, pool={size=2, stride=2, padding="same"}}]',
            'model.hidden=[{units=6, activation="relu", batch_norm={momentum=0.8, epsilon=1e-5}}]',
            'optimizer={name="sgd", learning_rate=0.1, momentum=0.5}']


@pytest.mark.parametrize("targets", ["one-hot", "probabilities", "one-hot-smoothed"])
def test_training_steps_with_the_crossentropy_on_f_cross_entropy_match_the_oracle(targets):
    """Three float64 training steps of a small CNN against the oracle with one-hot, probability and smoothed one-hot
    targets: the per-step loss and correct count (gathered after the epoch's loop) and every weight."""
    overrides = list(TINY_CNN)
    if targets == "one-hot-smoothed":
        overrides.append('loss={name="categorical_crossentropy", label_smoothing=0.1}')
    trainer, spec, plan = _make("seed-cnn", overrides)
    rng = np.random.default_rng(3)
    x = rng.random((12, 28, 28, 1))
    y = np.eye(10)[rng.integers(0, 10, 12)]
    if targets == "probabilities":
        y = rng.random((12, 10))
        y /= y.sum(axis=1, keepdims=True)
    assert_steps_match_oracle(trainer, OracleTrainer(spec, plan, 1), plan, random_weights(plan, "float64"), x, y,
                              [0.1, 0.03, 0.07], targets)


def test_an_epoch_reports_each_steps_loss_and_correct_count():
    """Unequal batches (the last shorter), several steps in one train_epoch: each step's loss and correct count are
    the ones its own batch gives (from the same weights, one train_epoch call per step)."""
    rng = np.random.default_rng(4)
    x, y = rng.random((23, 28, 28, 1)), np.eye(10)[rng.integers(0, 10, 23)]
    batches = [np.arange(0, 8), np.arange(8, 16)[::-1], np.array([22, 16, 17, 3, 20, 21, 18])]
    rates = np.array([0.1, 0.2, 0.3])
    stats = []
    for split in (False, True):
        trainer, _, plan = _make("seed-cnn", TINY_CNN)
        trainer.set_weights(random_weights(plan, "float64"))
        trainer.load_training_data(x, y)
        if split:
            parts = [trainer.train_epoch([batch], rates[i : i + 1]) for i, batch in enumerate(batches)]
            stats.append((np.concatenate([p.loss for p in parts]), np.concatenate([p.correct for p in parts])))
        else:
            whole = trainer.train_epoch(batches, rates)
            stats.append((whole.loss, whole.correct))
    assert np.array_equal(stats[0][0], stats[1][0]) and np.array_equal(stats[0][1], stats[1][1])
    assert stats[0][1].dtype == np.int64 and stats[0][0].dtype == np.float64


def test_native_mode_keeps_nchw_modules():
    trainer, _, _ = _make("seed-cnn", TINY_CNN, native=True)
    assert not trainer.model.channels_last
    assert all(p.is_contiguous() for p in trainer.model.parameters())
    assert any(isinstance(m, torch.nn.BatchNorm2d) for m in trainer.model.modules())


# -- max pooling, dropout, memory formats --------------------------------------------------------------------------


@pytest.mark.parametrize("size", range(1, 16))
def test_ceil_mode_pooling_equals_minus_inf_padding(size):
    """Every "same" pool geometry up to 15 pixels, windows 1-4, strides 1-3, on integer values (ties): MaxPool2D's
    output and gradient equal F.max_pool2d on the input F.padded with -inf by the "same" rule, bit for bit."""
    used = 0
    for window in (1, 2, 3, 4):
        for stride in (1, 2, 3):
            out = same_or_valid_size(size, window, stride, "same")
            layer = P.MaxPool2D("pool", (size, size, 3), (out, out, 3), "", size=window, stride=stride, padding="same")
            module = MaxPool2D(layer)
            used += module.ceil_mode
            x = torch.tensor(np.random.default_rng(size).integers(0, 3, (2, 3, size, size)), dtype=torch.float64)
            (top, bottom), (left, right) = same_padding(size, window, stride), same_padding(size, window, stride)
            results = []
            for function in (module, lambda t: F.max_pool2d(F.pad(t, (left, right, top, bottom), value=-math.inf), window, stride)):
                t = x.clone().requires_grad_()
                y = function(t)
                y.backward(torch.arange(y.numel(), dtype=torch.float64).reshape(y.shape))
                results.append((y.detach(), t.grad))
            assert results[0][0].shape == (2, 3, out, out)
            assert torch.equal(results[0][0], results[1][0]) and torch.equal(results[0][1], results[1][1]), (window, stride)
    if size in (7, 13):  # 2x2 / 2 on an odd size: the one extra pixel at the end
        assert used > 0


def test_seed_cnn_pools_by_ceil_mode_where_same_pads_one_pixel_at_the_end():
    trainer, _, plan = _make("seed-cnn")
    pools = [trainer.model.layers[layer.name] for layer in plan if isinstance(layer, P.MaxPool2D)]
    assert [(p.ceil_mode, p.pad) for p in pools] == [(False, None), (False, None), (True, None)]  # 28, 14, 7 pixels


@pytest.mark.parametrize("rate", [0.2, 0.3, 0.4, 0.5])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_dropout_multiplier_is_the_mask_it_replaced(rate, dtype):
    """The in-place (uniform < keep) / keep draws the same generator values into the same multiplier as
    (uniform < keep).to(dtype).div_(keep), bit for bit."""
    layer = P.Dropout("dropout", (6, 6, 4), (6, 6, 4), "", rate=rate)
    module = Dropout(layer, torch.Generator().manual_seed(11)).train()
    x = torch.rand((8, 4, 6, 6), dtype=dtype, generator=torch.Generator().manual_seed(1)) + 0.5
    keep = 1.0 - rate
    mask = torch.rand(x.shape, generator=torch.Generator().manual_seed(11), dtype=dtype) < keep
    assert torch.equal(module(x), x * mask.to(dtype).div_(keep))


def test_catalog_cnn_runs_channels_last_on_standard_nchw_inputs():
    """The trainer's data has standard NCHW strides (also for one channel, where movedim().contiguous() would keep
    NHWC strides); the catalog CNN's kernels and activations are channels_last; outputs are unchanged in layout."""
    trainer, _, plan = _make("seed-cnn", TINY_CNN)
    x = np.random.default_rng(2).random((5, 28, 28, 1))
    t = trainer._tensor(x)
    assert t.shape == (5, 1, 28, 28) and t.stride() == (784, 784, 28, 1)
    assert trainer.model.channels_last
    assert all(p.is_contiguous(memory_format=torch.channels_last) for p in trainer.model.parameters() if p.dim() == 4)
    seen = []
    hooks = [module.register_forward_hook(lambda m, a, out: seen.append(out)) for module in trainer.model.layers.values()]
    trainer.model.train()
    trainer.model(t)
    for hook in hooks:
        hook.remove()
    maps = [out for out in seen if out.dim() == 4]
    assert maps and all(out.is_contiguous(memory_format=torch.channels_last) and not out.is_contiguous() for out in maps)


def test_reference_inputs_are_reshaped_like_the_tutorials():
    spec = load_spec("seed-cnn", ['dtype="float32"'])
    plan = build_plan(spec.model, (28, 28, 1), spec.data.num_outputs)
    x = np.random.default_rng(0).random((6, 28, 28, 1)).astype(np.float32)
    reference = reference_trainer(spec, plan, 1, x, np.eye(10, dtype=np.float32)[[0, 1, 2, 3, 4, 5]])
    assert reference.x.shape == (6, 1, 28, 28) and reference.x.stride() == (784, 784, 28, 1)
    assert np.array_equal(reference.x.numpy()[:, 0], x[..., 0])


# -- in-place activations --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("table", ["relu", {"name": "leaky_relu", "negative_slope": 0.1},
                                   {"name": "leaky_relu", "negative_slope": 0.3}])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_in_place_activations_equal_the_catalog_function_bit_for_bit(table, dtype):
    """Values and gradients on N(0, 1) values, exact zeros of both signs and negatives whose leaky product
    underflows to -0 (where the in-place backward reads the output's sign, the other the input's)."""
    from pydantic import TypeAdapter

    from backends.torch.activations import activation_function, in_place_function
    from experiments.catalog import Activation

    entry = TypeAdapter(Activation).validate_python(table)
    tiny = torch.finfo(dtype).tiny * torch.finfo(dtype).eps  # the smallest subnormal
    special = torch.tensor([0.0, -0.0, -tiny, tiny, -1.0, 1.0], dtype=dtype)
    x = torch.cat([special, torch.randn(200, dtype=dtype, generator=torch.Generator().manual_seed(4))])
    dy = torch.randn(x.shape, dtype=dtype, generator=torch.Generator().manual_seed(5))
    results = []
    for function in (activation_function(entry), in_place_function(entry)):
        t = x.clone().requires_grad_()
        y = function(t * 1.0)  # a non-leaf input, as in the model
        (dx,) = torch.autograd.grad(y, t, dy)
        results.append((y.detach(), dx))
    assert torch.equal(results[0][0], results[1][0]) and torch.equal(results[0][1], results[1][1])


def test_only_activations_after_conv_dense_or_batch_norm_are_in_place():
    """Relu / leaky_relu (slope > 0) right after Conv2D, Dense or BatchNorm overwrite their input; after another
    activation (whose backward reads its output: sigmoid here), a pool or a dropout they do not, nor in native
    mode; the training steps of such a model still match the oracle (the version counter would refuse a saved
    tensor overwritten)."""
    overrides = ['model.conv=[{filters=3, kernel_size=3, padding="same", activation="sigmoid", post_activation="relu",'
                 ' pool={size=2, stride=2, padding="same"}},'
                 ' {filters=4, kernel_size=3, padding="same", activation="relu", batch_norm={momentum=0.9, epsilon=1e-3},'
                 ' post_activation={name="leaky_relu", negative_slope=0.2}}]',
                 'model.hidden=[{units=6, activation="relu"}, {units=5, activation="tanh", post_activation="relu"}]',
                 'optimizer={name="sgd", learning_rate=0.1, momentum=0.5}']
    trainer, spec, plan = _make("seed-cnn", overrides)
    modules = list(trainer.model.layers.values())
    in_place = {layer.name: (type(modules[i - 1]).__name__, trainer.model.layers[layer.name].in_place is not None)
                for i, layer in enumerate(plan) if isinstance(layer, P.Activation)}
    assert in_place == {"activation_0": ("Conv2D", False), "activation_1": ("Activation", False),
                        "activation_2": ("Conv2D", True), "activation_3": ("BatchNorm", True),
                        "activation_4": ("Linear", True), "activation_5": ("Linear", False),
                        "activation_6": ("Activation", False)}, in_place
    native, _, _ = _make("seed-cnn", overrides, native=True)
    assert not any(getattr(m, "in_place", None) for m in native.model.modules())
    rng = np.random.default_rng(8)
    x, y = rng.random((12, 28, 28, 1)), np.eye(10)[rng.integers(0, 10, 12)]
    assert_steps_match_oracle(trainer, OracleTrainer(spec, plan, 1), plan, random_weights(plan, "float64"), x, y,
                              [0.1, 0.03, 0.07], "in-place")
