"""Turn a pydantic validation error into one line naming the field, the value and what is allowed."""

import re
import types
import typing
from typing import Any, Union

from pydantic import BaseModel, ValidationError

from experiments.errors import SpecError

_PLAIN_KEY = re.compile(r"[A-Za-z0-9_-]+")  # other keys are quoted in paths, so a message stays one readable line


def _members(annotation: Any) -> list[Any]:
    """The alternatives of a (possibly Annotated, Optional) union, or the type itself."""
    while typing.get_origin(annotation) is typing.Annotated:
        annotation = typing.get_args(annotation)[0]
    if typing.get_origin(annotation) in (Union, types.UnionType):
        return [m for arg in typing.get_args(annotation) for m in _members(arg)]
    return [annotation]


def _tag(model: type) -> str | None:
    field = model.model_fields.get("name") or model.model_fields.get("kind")
    if field is None or typing.get_origin(field.annotation) is not typing.Literal:
        return None
    return typing.get_args(field.annotation)[0]


def _walk(root: type, loc: tuple) -> tuple[list[str], type | None, list[type]]:
    """Follow a pydantic error location: readable path parts, the model reached, and the
    union alternatives at the last step (for listing allowed names)."""
    parts: list[str] = []
    current: Any = root
    alternatives: list[type] = []
    for item in loc:
        members = [m for m in _members(current) if m is not type(None)]
        models = [m for m in members if isinstance(m, type) and issubclass(m, BaseModel)]
        if isinstance(item, int):
            parts.append(f"[{item}]")
            sequences = [m for m in members if typing.get_origin(m) is tuple]
            current = typing.get_args(sequences[0])[0] if sequences else None
            continue
        if len(models) > 1 and item in {_tag(m) for m in models}:
            current = next(m for m in models if _tag(m) == item)
            continue
        parts.append((("." if parts else "") + str(item)) if _PLAIN_KEY.fullmatch(str(item)) else f"[{str(item)!r}]")
        model = models[0] if len(models) == 1 else (current if isinstance(current, type) and issubclass(current, BaseModel) else None)
        if model is not None and item in model.model_fields:
            current = model.model_fields[item].annotation
            alternatives = [m for m in _members(current) if isinstance(m, type) and issubclass(m, BaseModel)]
        else:
            current = None
    reached = next((m for m in _members(current) if isinstance(m, type) and issubclass(m, BaseModel)), None)
    return parts, reached, alternatives


def _parent_model(root: type, loc: tuple) -> type | None:
    parts, model, _ = _walk(root, loc[:-1])
    return model


def format_validation_error(root: type, error: ValidationError, source: str) -> SpecError:
    """One SpecError line for the first error of `error`."""
    first = error.errors()[0]
    loc, kind, value = tuple(first["loc"]), first["type"], first.get("input")
    parts, _, alternatives = _walk(root, loc)
    path = "".join(parts) or "(top level)"
    if kind == "extra_forbidden":
        parent = _parent_model(root, loc)
        fields = sorted(parent.model_fields, key=lambda f: f != "name") if parent else []  # name first
        allowed = ", ".join(fields) if parent else "see the preset files"
        message = f"{path}: unknown key; allowed keys here: {allowed}"
    elif kind == "union_tag_invalid":
        tags = first["ctx"]["expected_tags"].replace("'", "")
        key = first["ctx"]["discriminator"].strip("'")
        message = f"{path}.{key}: {first['ctx']['tag']!r} is not known; allowed: {tags}"
    elif kind == "union_tag_not_found":
        message = f"{path}: a table here needs a 'name' (or 'kind') key"
    elif kind == "value_error":  # a cross-field check; its text names the field when at top level
        text = first["msg"].removeprefix("Value error, ")
        message = text if not parts else f"{path}: {text}"
    elif kind == "missing":
        message = f"{path}: missing; this field has no default and must be given"
    else:
        message = f"{path}: got {value!r}; {first['msg'][0].lower() + first['msg'][1:]}"
    return SpecError(f"spec error in {source}: {message}")
