"""Full IDX datasets (mnist, fashion-mnist): local lookup, download into the cache, verified read."""

from dataclasses import dataclass
from pathlib import Path

from experiments.data.checksums import PINNED
from experiments.data.download import download_files, resolve_mirrors
from experiments.data.locate import (
    ALL_PARTS, DATA_ENV, IDX_STEMS, TEST_PARTS, Place, cache_root, describe_places, find_idx_set, search_places,
)
from experiments.data.sources import Arrays, read_idx_set, read_npz_set
from experiments.errors import DataError

NO_DOWNLOAD_HINT = "or use --dataset mnist-subset which needs no download"


@dataclass(frozen=True)
class FullSource:
    """Where a full IDX dataset is looked for and downloaded from."""

    mirrors: tuple[str, ...]
    system: tuple[str, ...] = ()
    npz: bool = False  # also accept Keras' mnist.npz in a searched directory


FULL = {
    "mnist": FullSource(
        mirrors=("https://ossci-datasets.s3.amazonaws.com/mnist/", "https://storage.googleapis.com/cvdf-datasets/mnist/"),
        npz=True,
    ),
    "fashion-mnist": FullSource(
        mirrors=("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",),
        system=("/usr/share/datasets/fashion-mnist",),
    ),
}


@dataclass(frozen=True)
class Request:
    """The caller's lookup options, passed to every loader."""

    data_dir: str | Path | None
    download: bool
    mirrors: list[str] | None
    cache_dir: Path | None


def places(name: str, request: Request) -> list[Place]:
    """The directories searched for dataset name, in order."""
    return search_places(name, request.data_dir, request.cache_dir, FULL[name].system)


def find_local(name: str, request: Request, parts: tuple[str, ...] = ALL_PARTS):
    """The first searched directory holding all parts (or, for mnist, mnist.npz): (place, files or npz path).

    Returns (None, best) when none does, best being (place, missing names) of the most complete one.
    """
    best = None
    for place in places(name, request):
        found, missing = find_idx_set(place.path, parts)
        if not missing:
            return place, found
        npz = place.path / "mnist.npz"
        if FULL[name].npz and npz.is_file():
            return place, npz
        if found and (best is None or len(missing) < len(best[1])):
            best = (place, missing)
    return None, best


def _not_found(name: str, request: Request, parts: tuple[str, ...], best) -> DataError:
    searched = places(name, request)
    cache = cache_root(request.cache_dir) / name
    if best is None:
        missing = [f"{IDX_STEMS[part]}.gz" for part in parts]
        found_note = ""
    else:
        missing = best[1]
        found_note = f" (only part of the set is in {best[0].path})"
    npz = " (or mnist.npz)" if FULL[name].npz and parts == ALL_PARTS else ""
    return DataError(
        f"{name}: {', '.join(missing)}{npz} not found in {describe_places(searched)}{found_note}; "
        f"put {', '.join(f'{IDX_STEMS[p]}.gz' for p in parts)} in {cache}, or pass --data-dir DIR, "
        f"or set {DATA_ENV}=DIR, or allow the download; {NO_DOWNLOAD_HINT}"
    )


def _download(name: str, request: Request, parts: tuple[str, ...]) -> tuple[Place, dict[str, Path], str]:
    cache = cache_root(request.cache_dir) / name
    mirrors = resolve_mirrors(FULL[name].mirrors, request.mirrors)
    manifest = {f"{IDX_STEMS[part]}.gz": PINNED[name][f"{IDX_STEMS[part]}.gz"].sha256 for part in parts}
    advice = (
        f"; put the files in {cache} yourself, or pass --data-dir DIR, or set {DATA_ENV}=DIR "
        f"(other mirrors: set MNIST_PARITY_MIRRORS=URL1,URL2); {NO_DOWNLOAD_HINT}"
    )
    origins = download_files(manifest, cache, mirrors, advice=advice)
    fetched = sorted({origin.rsplit("/", 1)[0] + "/" for origin in origins.values() if origin != "cached"})
    source = f" (downloaded from {', '.join(fetched)})" if fetched else ""
    return Place(cache, "cache"), {part: cache / f"{IDX_STEMS[part]}.gz" for part in parts}, source


def read_full(name: str, request: Request, parts: tuple[str, ...] = ALL_PARTS) -> tuple[Arrays, str]:
    """Find (or download, if allowed) and read the verified files of parts: (arrays, source text)."""
    place, found = find_local(name, request, parts)
    extra = ""
    if place is None:
        if not request.download:
            raise _not_found(name, request, parts, found)
        place, found, extra = _download(name, request, parts)
    if isinstance(found, Path):
        arrays = read_npz_set(found, canonical=True)
        if parts == TEST_PARTS:
            arrays.parts = {key: value for key, value in arrays.parts.items() if key.endswith("test")}
        return arrays, f"Keras mnist.npz at {found}"
    arrays = read_idx_set(found, name, PINNED[name])
    return arrays, f"IDX files in {place.path}{extra}"
