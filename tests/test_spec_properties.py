"""Property: a randomly broken preset is either a spec every backend builds alike, or one clear line.

Each example takes a preset's fully resolved table and applies 1-2 mutations: a field removed,
a key renamed to a hostile string, or a value replaced (types swapped between string, number,
bool, list and table; numbers pushed to 0, negative, NaN, inf, 1e308, 2**63; names made
hostile). Validation must then either succeed, and then torch, keras, jax and numpy all build
the model with the same number of trainable parameters, or raise a UserError whose message is
one non-empty line. Any other exception is a traceback a user would see.

Runs in one process, derandomized and without an example database, so CI sees the same cases.
"""

import copy
import functools
import math
import os
import tomllib

import pytest
from hypothesis import HealthCheck, Phase, event, given, settings
from hypothesis import strategies as st

from experiments.errors import UserError
from experiments.spec import build_plan, load_spec, preset_names, validate_spec
from experiments.spec.loading import apply_override, parse_override, toml_value
from tests.cli_helpers import mnist_parity

HOSTILE_NAMES = ["", ".", "..", "a/b", "../../etc/passwd", "\\", "\x00", ".hidden", "n" * 300, "<script>alert(1)</script>",
                 "line\nbreak", "tab\there", " ", "-rf", "CON", "名前", "\x7f"]
HUGE = [1e308, -1e308, 2**63, -(2**63), math.inf, -math.inf]
FREE_NAMES = [("name",), ("description",), ("data", "dataset")]  # strings a user picks freely
SWAPS = ["relu", 1, 2, 0.5, True, False, [], [1], ["relu"], {}, {"name": "relu"}, {"units": 1}]


def _pushed(value) -> list:
    """Numbers near and past the edges of what a field allows, derived from its current value."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return []
    return [0, 0.0, -value, -1, math.nan, *HUGE, value * 2]


def _locations(node, prefix=()):
    """The path (keys and list indices) of every value in a nested table, depth first."""
    items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
    for key, value in items:
        yield prefix + (key,)
        yield from _locations(value, prefix + (key,))


def _parent(table, location):
    for key in location[:-1]:
        table = table[key]
    return table


@functools.cache
def _preset_table(preset: str) -> dict:
    return load_spec(preset).to_dict()


@st.composite
def mutated_presets(draw) -> tuple[str, dict]:
    """(what was done, a preset's resolved table with 1-2 mutations)."""
    preset = draw(st.sampled_from(preset_names()))
    table = copy.deepcopy(_preset_table(preset))
    done = [preset]
    for _ in range(draw(st.integers(1, 2))):
        locations = list(_locations(table))
        if not locations:
            break
        location = draw(st.sampled_from(locations))
        parent, key = _parent(table, location), location[-1]
        action = draw(st.sampled_from(["remove", "rename", "replace", "replace", "name"]))
        if action == "remove":
            del parent[key]
        elif action == "rename" and isinstance(parent, dict):
            parent[draw(st.sampled_from(HOSTILE_NAMES))] = parent.pop(key)
        elif action == "name" and any(field in locations for field in FREE_NAMES):  # any string is a valid one
            location = draw(st.sampled_from([field for field in FREE_NAMES if field in locations]))
            _parent(table, location)[location[-1]] = value = draw(st.sampled_from(HOSTILE_NAMES))
            action = f"= {value!r}"[:40]
        else:
            value = draw(st.sampled_from(_pushed(parent[key]) + HOSTILE_NAMES + SWAPS))
            parent[key] = copy.deepcopy(value)
            action = f"= {value!r}"[:40]
        done.append(f"{action} {location}")
    return "; ".join(done), table


@pytest.fixture(scope="module")
def trainers():
    from backends import BACKENDS, load_trainer  # imports every framework, once for the module

    return {name: load_trainer(name) for name in BACKENDS}


def _assert_one_line(error: Exception) -> None:
    message = str(error)
    assert message.strip() and "\n" not in message and "\r" not in message, repr(message)


@settings(max_examples=40, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(case=mutated_presets())
def test_mutated_presets_validate_and_build_or_fail_in_one_line(trainers, case):
    what, table = case
    try:
        spec = validate_spec(table, "mutated preset")
    except UserError as error:
        _assert_one_line(error)
        event("rejected")
        return
    event("valid: built on every backend")
    plan = build_plan(spec.model, (28, 28, 1), spec.data.num_outputs)
    counts = {name: trainer(spec, plan, 1).parameter_count() for name, trainer in trainers.items()}
    assert len(set(counts.values())) == 1, (what, counts)


def _write_spec(path, table: dict) -> None:
    """The table as a TOML file (top-level keys quoted), checked to read back identically."""
    text = "\n".join(f"{toml_value(str(key))} = {toml_value(value)}" for key, value in table.items()) + "\n"
    path.write_text(text, encoding="utf-8")
    assert repr(tomllib.loads(text)) == repr(table), "the test wrote a TOML file that does not read back"


def _without_none(node):
    """TOML has no null: an absent key is what None (the default of optional fields) means."""
    if isinstance(node, dict):
        return {key: _without_none(value) for key, value in node.items() if value is not None}
    if isinstance(node, list):
        return [_without_none(value) for value in node if value is not None]
    return node


CLI_EPOCHS = "training.epochs=1"  # what `--epochs 1` adds; a spec it repairs would train, so it is not used


def _rejected_with_cli_epochs(table: dict) -> bool:
    table = copy.deepcopy(table)
    try:
        apply_override(table, *parse_override(CLI_EPOCHS), CLI_EPOCHS)
        validate_spec(table, "mutated preset")
    except UserError:
        return True
    return False


@settings(max_examples=4, deadline=None, derandomize=True, database=None, phases=[Phase.explicit, Phase.generate],
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])  # no shrinking: subprocesses are slow
@given(case=mutated_presets().map(lambda case: (case[0], _without_none(case[1]))).filter(lambda case: _rejected_with_cli_epochs(case[1])))
def test_rejected_spec_file_exits_2_with_one_line_and_writes_nothing(tmp_path_factory, case):
    what, table = case
    folder = tmp_path_factory.mktemp("spec")
    spec_file, out = folder / "mutated.toml", folder / "out"
    _write_spec(spec_file, table)
    result = mnist_parity("run", str(spec_file), "--out", str(out), "--backends", "numpy", "--epochs", "1", timeout=120)
    assert result.returncode == 2, (what, result.stderr[-2000:])
    assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr, (what, result.stderr)
    assert not out.exists() or not os.listdir(out), (what, os.listdir(out))
