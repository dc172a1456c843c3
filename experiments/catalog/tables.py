"""Helpers that turn catalog entry classes into tagged unions accepting a bare name or a table."""

from typing import Annotated, Any, Union

from pydantic import BeforeValidator, Field


def _name_to_table(value: Any) -> Any:
    """Accept `"relu"` as shorthand for `{name = "relu"}`."""
    return {"name": value} if isinstance(value, str) else value


def tagged_union(*entries: type) -> Any:
    """A pydantic type choosing among `entries` by their `name` field; a bare string is a name."""
    return Annotated[Union[entries], Field(discriminator="name"), BeforeValidator(_name_to_table)]


def registry(*entries: type) -> dict[str, type]:
    """Map each entry's `name` literal to its class, in declaration order."""
    return {entry.model_fields["name"].annotation.__args__[0]: entry for entry in entries}
