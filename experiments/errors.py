"""User-facing errors: each carries one line that says what is wrong and what is allowed."""


class UserError(Exception):
    """Bad input from the user (spec, data file, path, name). The CLI prints it and exits 2."""

    exit_code = 2


class SpecError(UserError):
    """An experiment spec that cannot be trained: unknown key, wrong type, bad value or shape."""


class DataError(UserError):
    """A dataset that is missing, corrupt, truncated or fails its checksum."""
