"""Load an experiment spec from a preset name or a TOML file, with `--set key=value` overrides."""

import copy
import re
import tomllib
from pathlib import Path
from typing import Any, Iterable

from pydantic import ValidationError

from experiments.errors import SpecError
from experiments.spec.errors import format_validation_error
from experiments.spec.experiment import ExperimentSpec
from experiments.spec.plan import build_plan

PRESET_SUFFIX = ".toml"
PRESET_DIR = Path(__file__).resolve().parent.parent / "presets"
_INDEX = re.compile(r"\[(\d+)\]")


def preset_names() -> list[str]:
    """Names of the presets shipped in experiments/presets."""
    return sorted(p.name[: -len(PRESET_SUFFIX)] for p in PRESET_DIR.glob(f"*{PRESET_SUFFIX}"))


def _read_toml(text: str, source: str) -> dict[str, Any]:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise SpecError(f"spec error in {source}: not valid TOML ({error})") from None


def _load_table(name_or_path: str, seen: tuple[str, ...] = ()) -> tuple[dict[str, Any], str]:
    """The raw table of a preset or file, with `base = "preset"` inheritance resolved."""
    path = Path(name_or_path)
    if name_or_path.endswith(PRESET_SUFFIX) or path.is_file():
        if not path.is_file():
            raise SpecError(f"spec file not found: {name_or_path}; give an existing .toml file or a preset name")
        try:
            text, source = path.read_text(encoding="utf-8"), str(path)
        except (OSError, UnicodeDecodeError) as error:
            raise SpecError(f"cannot read spec file {name_or_path}: {error}") from None
    elif name_or_path in preset_names():
        source = f"preset {name_or_path}"
        text = (PRESET_DIR / f"{name_or_path}{PRESET_SUFFIX}").read_text(encoding="utf-8")
    else:
        raise SpecError(
            f"unknown preset {name_or_path!r}; available presets: {', '.join(preset_names())} (or give a path to a .toml file)"
        )
    table = _read_toml(text, source)
    base = table.pop("base", None)
    if base is None:
        return table, source
    if not isinstance(base, str) or base in seen or base == name_or_path:
        raise SpecError(f"spec error in {source}: base: {base!r} must name another preset, without cycles")
    parent, _ = _load_table(base, seen + (name_or_path,))
    return _deep_merge(parent, table), source


def _deep_merge(base: dict[str, Any], update: dict[str, Any]) -> dict[str, Any]:
    """Tables merge key by key; any other value (lists included) replaces the base value."""
    merged = copy.deepcopy(base)
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _deep_merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def parse_override(text: str) -> tuple[list[str | int], Any]:
    """Split `a.b[0].c=value` (or `a.b.0.c=value`) into a path and a TOML-parsed value.

    The value is read as a TOML value (numbers, booleans, strings, inline tables such as
    `{name = "sgd", learning_rate = 0.1}`); a bare word that is not TOML is taken as a string.
    """
    key, sep, raw = text.partition("=")
    key = key.strip()
    if not sep or not key:
        raise SpecError(f"--set {text!r}: expected key=value, e.g. --set optimizer.learning_rate=0.01")
    path: list[str | int] = []
    for part in _INDEX.sub(r".\1", key).split("."):
        if not part:
            raise SpecError(f"--set {text!r}: empty part in the key {key!r}")
        path.append(int(part) if part.isdigit() else part)
    try:
        value = tomllib.loads(f"value = {raw.strip()}")["value"]
    except tomllib.TOMLDecodeError:
        value = raw.strip()
    return path, value


def apply_override(table: dict[str, Any], path: list[str | int], value: Any, text: str) -> None:
    """Set `value` at `path` in the raw spec table; a name shorthand becomes a table when needed."""
    node: Any = table
    for depth, part in enumerate(path[:-1]):
        child = node[part] if _has(node, part) else None
        if child is None:
            if isinstance(part, int):
                raise SpecError(f"--set {text!r}: index {part} is out of range for {_dotted(path[:depth])}")
            child = {}
        if isinstance(child, str):  # "leaky_relu" -> {name = "leaky_relu"}
            child = {"name": child}
        if not isinstance(child, (dict, list)):
            raise SpecError(f"--set {text!r}: {_dotted(path[: depth + 1])} is a value, not a table")
        node[part] = child
        node = child
    last = path[-1]
    if isinstance(node, list) and (not isinstance(last, int) or last >= len(node)):
        raise SpecError(f"--set {text!r}: {_dotted(path)} is not an item of a list of {len(node)}")
    node[last] = value


def _has(node: Any, part: str | int) -> bool:
    if isinstance(node, list):
        return isinstance(part, int) and part < len(node)
    return isinstance(node, dict) and part in node


def _dotted(path: list[str | int]) -> str:
    return "".join(f"[{p}]" if isinstance(p, int) else (f".{p}" if i else str(p)) for i, p in enumerate(path)) or "(top)"


def validate_spec(table: dict[str, Any], source: str) -> ExperimentSpec:
    """Validate a raw table into a spec, including that its layer shapes work on 28x28 inputs."""
    try:
        spec = ExperimentSpec.model_validate(table)
    except ValidationError as error:
        raise format_validation_error(ExperimentSpec, error, source) from None
    build_plan(spec.model, (28, 28, 1), spec.data.num_outputs)  # raises SpecError naming the block that cannot work
    return spec


def forward_only_fields(spec: ExperimentSpec) -> list[str]:
    """Spec fields that use a forward-only activation (step, sign): such a model cannot be trained."""
    fields = [
        f"model.{group}[{i}].{key}"
        for group in ("conv", "hidden")
        for i, block in enumerate(getattr(spec.model, group, ()))
        for key in ("activation", "post_activation")
        if getattr(block, key) is not None and getattr(block, key).forward_only
    ]
    if spec.model.output_activation.forward_only:
        fields.append("model.output_activation")
    return fields


def require_trainable(spec: ExperimentSpec) -> None:
    """Refuse to train through step or sign, with the reason."""
    fields = forward_only_fields(spec)
    if fields:
        raise SpecError(
            f"{fields[0]}: a forward-only activation cannot be trained: its derivative is 0 almost everywhere, "
            "so no weight below it would ever change; use it in forward checks only"
        )


def load_spec(name_or_path: str, overrides: Iterable[str] = ()) -> ExperimentSpec:
    """The validated spec of a preset or TOML file, after applying `key=value` overrides in order."""
    table, source = _load_table(name_or_path)
    overrides = list(overrides)
    for text in overrides:
        path, value = parse_override(text)
        apply_override(table, path, value, text)
    if overrides:
        source += " (with --set)"
    return validate_spec(table, source)


def toml_value(value) -> str:
    """A Python value (dict, list, str, bool, number) as a TOML inline value, for `--set` overrides (the inverse of their parsing)."""
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k} = {toml_value(v)}" for k, v in value.items()) + "}"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    return repr(value)
