"""The JAX catalog max pool (backends.jax.model.max_pool) against the NumPy float64 oracle, forward and gradient:
ties (the gradient to the first maximum in row-major window order), "same" padding with -inf split by
plan.same_padding, "valid" dropping the remainder, and size != stride on the reduce_window fallback."""

import math

import numpy as np
import pytest

pytest.importorskip("jax")
pytest.importorskip("flax")

from backends.jax.framework import jax, jnp  # noqa: E402
from jax.extend.core import jaxprs_in_params  # noqa: E402
from backends.jax.model import PlanModel, max_pool  # noqa: E402
from backends.numpy.model import layer_backward, layer_forward  # noqa: E402
from experiments.spec import plan as P  # noqa: E402
from experiments.spec.plan import same_or_valid_size  # noqa: E402


def pool_layer(shape, size, stride, padding) -> P.MaxPool2D:
    h, w, c = shape
    out = (same_or_valid_size(h, size, stride, padding), same_or_valid_size(w, size, stride, padding), c)
    return P.MaxPool2D(name="max_pool", input_shape=tuple(shape), output_shape=out, where="test",
                       size=size, stride=stride, padding=padding)


def oracle(x, dy, size, stride, padding):
    layer = pool_layer(x.shape[1:], size, stride, padding)
    y, cache = layer_forward(layer, {}, x, train=False, noise={})
    dx, _ = layer_backward(layer, {}, cache, dy)
    return y, dx


def jax_pool(x, dy, size, stride, padding):
    y, pullback = jax.vjp(lambda x: max_pool(x, size, stride, padding), jnp.asarray(x, jnp.float64))
    (dx,) = pullback(jnp.asarray(dy, jnp.float64))
    return np.asarray(y), np.asarray(dx)


def cotangent(x, size, stride, padding, seed=2):
    """Distinct per-output values (integers: every sum exact), so a gradient routed to the wrong element shows."""
    n, h, w, c = x.shape
    out = (same_or_valid_size(h, size, stride, padding), same_or_valid_size(w, size, stride, padding))
    return np.random.default_rng(seed).permutation(n * math.prod(out) * c).reshape(n, *out, c).astype(np.float64) + 1


def assert_matches_oracle(x, size, stride, padding):
    dy = cotangent(x, size, stride, padding)
    want_y, want_dx = oracle(x, dy, size, stride, padding)
    got_y, got_dx = jax_pool(x, dy, size, stride, padding)
    assert got_y.shape == want_y.shape
    np.testing.assert_array_equal(got_y, want_y, err_msg="forward")
    np.testing.assert_array_equal(got_dx, want_dx, err_msg="gradient")


# (H, W, size, stride, padding): reshape path (size == stride) and reduce_window fallback (size != stride)
RESHAPE_CASES = [
    (8, 8, 2, 2, "same"),   # no padding
    (7, 7, 2, 2, "same"),   # 7x7 -> 4x4: -inf after (0, 1)
    (7, 5, 3, 3, "same"),   # 7 -> 3: -inf before and after (1, 1); 5 -> 2: (0, 1)
    (7, 5, 2, 2, "valid"),  # 7x5 -> 3x2: the last row and column dropped
    (11, 9, 3, 3, "valid"),  # 11x9 -> 3x3: two rows dropped
    (6, 6, 1, 1, "same"),   # the identity
]
FALLBACK_CASES = [(7, 7, 3, 2, "same"), (7, 6, 3, 2, "valid"), (6, 6, 2, 1, "valid"), (5, 5, 2, 3, "same")]


@pytest.mark.parametrize("h, w, size, stride, padding", RESHAPE_CASES + FALLBACK_CASES)
def test_ties_route_the_gradient_to_the_first_maximum(h, w, size, stride, padding):
    """Integers from {-2, -1, 0}: most windows hold tied maxima; the gradient must go to the first in row-major
    window order (the oracle's rule), not split, not the last."""
    x = np.random.default_rng(0).integers(-2, 1, (2, h, w, 3)).astype(np.float64)
    assert_matches_oracle(x, size, stride, padding)


@pytest.mark.parametrize("h, w, size, stride, padding", RESHAPE_CASES + FALLBACK_CASES)
def test_constant_windows_send_everything_to_the_first_element(h, w, size, stride, padding):
    """Every window tied everywhere (one constant per channel, negative so -inf padding is the only smaller value)."""
    x = np.broadcast_to(-np.arange(1.0, 4.0), (2, h, w, 3)).copy()
    assert_matches_oracle(x, size, stride, padding)
    if size == stride and padding == "valid":  # each window's first element alone takes its output's cotangent
        dy = cotangent(x, size, stride, padding)
        _, dx = jax_pool(x, dy, size, stride, padding)
        np.testing.assert_array_equal(dx[:, : dy.shape[1] * size : size, : dy.shape[2] * size : size], dy)
        assert np.count_nonzero(dx) == dy.size


@pytest.mark.parametrize("h, w, size, stride, padding", RESHAPE_CASES + FALLBACK_CASES)
def test_all_negative_inputs_with_same_padding_pad_with_minus_infinity(h, w, size, stride, padding):
    """All inputs below zero, distinct: zero padding would put 0 in the edge windows' outputs."""
    x = -np.random.default_rng(1).permutation(2 * h * w * 3).reshape(2, h, w, 3).astype(np.float64) - 1
    assert_matches_oracle(x, size, stride, padding)
    y, _ = jax_pool(x, cotangent(x, size, stride, padding), size, stride, padding)
    assert np.all(y < 0)


def test_seven_by_seven_same_is_four_by_four_with_the_padding_at_the_end():
    """2x2 stride 2 'same' on 7x7: lax's and the plan's split (0 before, 1 after): the last output row and column
    see one real row or column, and the corner output the corner pixel alone."""
    x = -np.arange(1.0, 50.0).reshape(1, 7, 7, 1)
    y, dx = jax_pool(x, np.ones((1, 4, 4, 1)), 2, 2, "same")
    assert y.shape == (1, 4, 4, 1)
    assert y[0, 3, 3, 0] == x[0, 6, 6, 0] and y[0, 0, 0, 0] == x[0, 0, 0, 0]
    np.testing.assert_array_equal(y[0, 3, :3, 0], x[0, 6, 0:6:2, 0])
    assert dx[0, 6, 6, 0] == 1 and dx.sum() == 16


def test_nan_propagates_and_its_gradient_goes_where_the_oracle_sends_it():
    x = np.random.default_rng(3).integers(-2, 1, (1, 6, 6, 2)).astype(np.float64)
    x[0, 1, 1, 0] = x[0, 4, 5, 1] = np.nan
    dy = cotangent(x, 2, 2, "same")
    want_y, want_dx = oracle(x, dy, 2, 2, "same")
    got_y, got_dx = jax_pool(x, dy, 2, 2, "same")
    np.testing.assert_array_equal(got_y, want_y)
    np.testing.assert_array_equal(got_dx, want_dx)


def test_forward_mode_is_the_transpose_of_reverse_mode():
    """The first-maximum rule is a JVP rule: jvp and vjp agree (<dy, J t> = <J^T dy, t>), on ties too."""
    x = jnp.asarray(np.random.default_rng(4).integers(-2, 1, (2, 7, 7, 3)), jnp.float64)
    t = jnp.asarray(np.random.default_rng(5).standard_normal(x.shape))
    dy = jnp.asarray(cotangent(np.asarray(x), 2, 2, "same"))
    pool = lambda x: max_pool(x, 2, 2, "same")  # noqa: E731
    _, jt = jax.jvp(pool, (x,), (t,))
    (jtdy,) = jax.vjp(pool, x)[1](dy)
    np.testing.assert_allclose(float(jnp.vdot(dy, jt)), float(jnp.vdot(jtdy, t)), rtol=1e-12)


def _primitives(fn, *args) -> set[str]:
    jaxpr = jax.make_jaxpr(fn)(*args)
    names = set()

    def walk(jaxpr):
        for eqn in jaxpr.eqns:
            names.add(eqn.primitive.name)
            for sub in jaxprs_in_params(eqn.params):
                walk(sub)

    walk(jaxpr.jaxpr)
    return names


@pytest.mark.parametrize("size, stride", [(2, 2), (3, 2)])
@pytest.mark.parametrize("native", [False, True])
def test_plan_model_pools_by_reshape_in_catalog_mode_and_by_nn_max_pool_natively(size, stride, native):
    """PlanModel's catalog path takes the reshape form for size == stride and reduce_window otherwise; native
    ("pooling") keeps nn.max_pool (reduce_window, select-and-scatter gradient) whatever the size."""
    layer = pool_layer((7, 7, 2), size, stride, "same")
    model = PlanModel(plan=(layer,), dtype=jnp.float64, native=frozenset({"pooling"} if native else ()))
    x = jnp.asarray(np.random.default_rng(6).integers(-2, 1, (2, 7, 7, 2)), jnp.float64)
    grad = jax.grad(lambda x: jnp.sum(model.apply({}, x, train=True) ** 2))
    primitives = _primitives(grad, x)
    reduce_window = native or size != stride
    assert ("reduce_window_max" in primitives) == reduce_window, sorted(primitives)
    assert ("select_and_scatter_add" in primitives) == reduce_window, sorted(primitives)
    y, cache = layer_forward(layer, {}, np.asarray(x), train=True, noise={})
    np.testing.assert_array_equal(np.asarray(grad(x)), layer_backward(layer, {}, cache, 2 * y)[0])
