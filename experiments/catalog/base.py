"""Base class for catalog entries: frozen, strict, no unknown keys."""

from pydantic import BaseModel, ConfigDict


class Entry(BaseModel):
    """A frozen, strictly typed spec fragment; unknown keys are errors, ints are never bools."""

    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)
