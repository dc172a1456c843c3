"""Load an experiment spec from a preset name or a TOML file, with `--set key=value` overrides."""

import copy
import json
import re
import tomllib
from pathlib import Path
from typing import Any, Iterable

from pydantic import ValidationError

from experiments.errors import SpecError
from experiments.spec.errors import format_validation_error
from experiments.spec.experiment import ExperimentSpec
from experiments.spec.plan import check_initial_distributions, plan_of, trainable_parameter_count

PRESET_SUFFIX = ".toml"
MAX_PARAMETERS = 100_000_000  # a model every backend can hold in memory at once
PRESET_DIR = Path(__file__).resolve().parent.parent / "presets"
_INDEX = re.compile(r"\[(\d+)\]")
_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")
_TOML_STRUCTURE = ("{", "[", '"', "'")  # a value starting so is meant as TOML


def preset_names() -> list[str]:
    """Names of the presets shipped in experiments/presets."""
    return sorted(p.name[: -len(PRESET_SUFFIX)] for p in PRESET_DIR.glob(f"*{PRESET_SUFFIX}"))


def _read_toml(text: str, source: str) -> dict[str, Any]:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise SpecError(f"spec error in {source}: not valid TOML ({error})") from None


def _is_file(path: Path) -> bool:
    """Whether `path` is a readable-looking file; a name the OS refuses (too long, NUL) is not one."""
    try:
        return path.is_file()
    except (OSError, ValueError):
        return False


def _locate(name_or_path: str, folder: Path | None) -> tuple[Path, str]:
    """The file of a preset name or spec path, and how to name it in messages.

    A name that is a preset (and not a .toml path) means the preset; any other name is a file
    path, relative to `folder` (the folder of the spec file naming it) or to the current folder.
    """
    if not name_or_path.endswith(PRESET_SUFFIX) and name_or_path in preset_names():
        return PRESET_DIR / f"{name_or_path}{PRESET_SUFFIX}", f"preset {name_or_path}"
    path = Path(name_or_path) if folder is None else folder / name_or_path
    if _is_file(path):
        return path, str(path)
    if name_or_path.endswith(PRESET_SUFFIX):
        raise SpecError(f"spec file not found: {path}; give an existing .toml file or a preset name")
    raise SpecError(
        f"unknown preset {name_or_path!r}; available presets: {', '.join(preset_names())} (or give a path to a .toml file)"
    )


def _load_table(path: Path, source: str, seen: tuple[Path, ...] = ()) -> tuple[dict[str, Any], str]:
    """The raw table of a located preset or file, with `base = "preset"` or `base = "file.toml"`
    inheritance resolved; a relative base file is found from the folder of the file naming it."""
    try:
        text, chain = path.read_text(encoding="utf-8"), seen + (path.resolve(),)
    except (OSError, UnicodeDecodeError) as error:
        raise SpecError(f"cannot read spec file {path}: {error}") from None
    table = _read_toml(text, source)
    base = table.pop("base", None)
    if base is None:
        return table, source
    if not isinstance(base, str):
        raise SpecError(f"spec error in {source}: base: got {base!r}; give a preset name or a spec .toml file")
    try:
        parent_path, parent_source = _locate(base, path.parent)
    except SpecError as error:
        raise SpecError(f"spec error in {source}: base: {error}") from None
    if parent_path.resolve() in chain:
        raise SpecError(f"spec error in {source}: base: {base!r} makes a cycle of bases; name another preset or spec file")
    parent, _ = _load_table(parent_path, parent_source, chain)
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
    `{name = "sgd", learning_rate = 0.1}`); a bare word that is not TOML is taken as a string,
    but a value starting like a table, list or quoted string must parse.
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
    raw, prefix = raw.strip(), "value = "
    try:
        value = tomllib.loads(prefix + raw)["value"]
    except tomllib.TOMLDecodeError as error:
        if raw.startswith(_TOML_STRUCTURE):  # columns counted from the value's start, not the prefix's
            reason = re.sub(r"at line 1, column (\d+)", lambda m: f"at character {int(m[1]) - len(prefix)} of the value", str(error))
            reason = reason.replace("at end of document", "at the end of the value")
            raise SpecError(
                f"--set {text!r}: the value is not valid TOML ({reason}); write a table as {{name = \"sgd\", learning_rate = 0.1}}, "
                f"a list as [1, 2], a string as \"text\""
            ) from None
        value = raw
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
    try:
        plan = plan_of(spec)  # raises SpecError naming the block that cannot work
        count = trainable_parameter_count(plan)
        if count > MAX_PARAMETERS:
            raise SpecError(
                f"model: {count:,} trainable parameters, more than the {MAX_PARAMETERS:,} allowed; "
                "use fewer or narrower layers (or a pool before the first dense layer)"
            )
        check_initial_distributions(plan, spec.dtype)
    except SpecError as error:
        raise SpecError(f"spec error in {source}: {error}") from None
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
    table, source = _load_table(*_locate(name_or_path, None))
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
        return "{" + ", ".join(f"{_toml_key(str(k))} = {toml_value(v)}" for k, v in value.items()) + "}"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):  # JSON escapes are TOML's, except that TOML also wants DEL escaped
        return json.dumps(value, ensure_ascii=False).replace("\x7f", "\\u007f")
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    return repr(value)


def _toml_key(key: str) -> str:
    """A table key, bare when TOML allows it, else quoted."""
    return key if _BARE_KEY.fullmatch(key) else toml_value(key)
