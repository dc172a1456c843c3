"""Helpers that turn catalog entry classes into tagged unions accepting a bare name or a table."""

from typing import Annotated, Any, Union

from pydantic import BeforeValidator, Field


def _normaliser(aliases: dict[str, str]):
    """Accept `"relu"` as shorthand for `{name = "relu"}`, and map alias names to their entry."""

    def normalise(value: Any) -> Any:
        if isinstance(value, str):
            value = {"name": value}
        if isinstance(value, dict) and isinstance(value.get("name"), str) and value["name"] in aliases:
            value = {**value, "name": aliases[value["name"]]}
        return value

    return normalise


def tagged_union(*entries: type, aliases: dict[str, str] | None = None) -> Any:
    """A pydantic type choosing among `entries` by their `name` field; a bare string is a name."""
    return Annotated[Union[entries], Field(discriminator="name"), BeforeValidator(_normaliser(aliases or {}))]


def registry(*entries: type) -> dict[str, type]:
    """Map each entry's `name` literal to its class, in declaration order."""
    return {entry.model_fields["name"].annotation.__args__[0]: entry for entry in entries}
