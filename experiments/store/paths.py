"""Whether files can be created in a folder: the one probe the store and the report run before doing any work."""

import os
import tempfile
from pathlib import Path


def cannot_create_in(folder: Path) -> str | None:
    """None when a file can be created in folder, or, when folder does not exist yet, in the nearest folder above
    it (where `mkdir -p` would start); otherwise why not, in a few words.

    The probe is an anonymous temporary file (O_TMPFILE where the system has it, else one deleted at once), so
    nothing is left behind and the answer is the real one: os.access says yes to root for a read-only folder it may
    in fact write, and yes for /proc, where creating a file fails.
    """
    existing = Path(folder)
    while not os.path.exists(existing) and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        return f"{existing} is not a folder"
    try:
        with tempfile.TemporaryFile(dir=existing):
            pass
    except OSError as error:
        return f"cannot create files in {existing} ({error.strerror or error})"
    return None
