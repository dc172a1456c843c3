"""A finished cell folder as plain data ({relative path: bytes}) and back, so it can travel from a worker to the driver."""

from pathlib import Path, PurePosixPath


def read_tree(root: Path) -> dict[str, bytes]:
    """Every file under root, keyed by its path relative to root (POSIX separators)."""
    root = Path(root)
    return {path.relative_to(root).as_posix(): path.read_bytes() for path in sorted(root.rglob("*")) if path.is_file()}


def write_tree(files: dict[str, bytes], root: Path) -> None:
    """Write files (from read_tree) under root; a path that would leave root is refused with ValueError."""
    root = Path(root)
    for name, data in files.items():
        relative = PurePosixPath(name)
        if relative.is_absolute() or not relative.parts or ".." in relative.parts:
            raise ValueError(f"cell file {name!r}: not a plain relative path")
        target = root.joinpath(*relative.parts)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
