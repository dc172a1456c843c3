"""Pinned SHA-256 (and MD5) of the canonical dataset files, and the check that enforces them."""

import hashlib
from dataclasses import dataclass

from experiments.errors import DataError


@dataclass(frozen=True)
class Pinned:
    """What a canonical file must hash to.

    sha256: of the file as distributed (the .gz archive, or the .npz).
    content_sha256: of the decompressed IDX bytes, where confirmed; lets a recompressed copy
        (e.g. Debian's, whose gzip header was normalised) or an uncompressed copy be verified.
    md5: the digest the publisher or torchvision lists (informational; SHA-256 is what is checked).
    size: bytes of the file as distributed.
    """

    sha256: str
    content_sha256: str | None = None
    md5: str | None = None
    size: int | None = None


# MNIST, the four IDX archives.
# sha256 of all four: tensorflow/datasets tensorflow_datasets/url_checksums/mnist.txt
#   (URL, size, sha256 per line; cvdf-datasets mirror). The t10k values equal
#   /work/shared/data/mnist/SHA256SUMS.
# md5: torchvision.datasets.MNIST.resources (ossci-datasets mirror).
# content_sha256 (t10k only): sha256 of the decompressed bytes of the two t10k archives
#   above (computed here from the verified archives). The train archives' decompressed
#   hashes are not published, so an uncompressed train file cannot be verified.
MNIST = {
    "train-images-idx3-ubyte.gz": Pinned(
        sha256="440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
        md5="f68b3c2dcbeaaa9fbdd348bbdeb94873",
        size=9912422,
    ),
    "train-labels-idx1-ubyte.gz": Pinned(
        sha256="3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
        md5="d53e105ee54ea40749a09fcbcd1e9432",
        size=28881,
    ),
    "t10k-images-idx3-ubyte.gz": Pinned(
        sha256="8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
        content_sha256="0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
        md5="9fb629c4189551a2d022fa330f9573f3",
        size=1648877,
    ),
    "t10k-labels-idx1-ubyte.gz": Pinned(
        sha256="f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
        content_sha256="ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
        md5="ec29112dd5afa0611ce80d1b7f02629c",
        size=4542,
    ),
}

# Fashion-MNIST, the four IDX archives.
# sha256 and size: tensorflow/datasets tensorflow_datasets/url_checksums/fashion_mnist.txt,
#   identical to FILE_HASHES in keras-team/keras keras/src/datasets/fashion_mnist.py.
# md5: the "MD5 Checksum" column of zalandoresearch/fashion-mnist README.md.
# content_sha256: sha256 of the decompressed IDX bytes. Confirmed by rebuilding each upstream
#   archive exactly from the Debian package dataset-fashion-mnist 0.0~git20200523.55506a9-1
#   (whose .gz only lost the FNAME field and had mtime normalised by strip-nondeterminism):
#   with the original name and mtime (2017-08-31) restored, all four rebuilt archives hash to
#   the sha256 and md5 above, so their deflate streams, hence the decompressed bytes, are upstream's.
FASHION_MNIST = {
    "train-images-idx3-ubyte.gz": Pinned(
        sha256="3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84",
        content_sha256="c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
        md5="8d4fb7e6c68d591d4c3dfef9ec88bf0d",
        size=26421880,
    ),
    "train-labels-idx1-ubyte.gz": Pinned(
        sha256="a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845",
        content_sha256="bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
        md5="25c81989df183df01b3e8a0aad5dffbe",
        size=29515,
    ),
    "t10k-images-idx3-ubyte.gz": Pinned(
        sha256="346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073",
        content_sha256="5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
        md5="bef4ecab320f06d8554ea6380940ec79",
        size=4422102,
    ),
    "t10k-labels-idx1-ubyte.gz": Pinned(
        sha256="67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5",
        content_sha256="0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
        md5="bb300cfdad3c16e7a12a480ee83cd310",
        size=5148,
    ),
}

# Keras' mnist.npz (x_train, y_train, x_test, y_test): file_hash in keras-team/keras
# keras/src/datasets/mnist.py (origin storage.googleapis.com/tensorflow/tf-keras-datasets/).
KERAS_MNIST_NPZ = Pinned(sha256="731c5ac602752760c8e48fbffcf8c3b850d9dc2a2aedcf2cc48468fc17b673d1")

PINNED = {"mnist": MNIST, "fashion-mnist": FASHION_MNIST}


def sha256_bytes(data: bytes) -> str:
    """Hex SHA-256 of a byte string."""
    return hashlib.sha256(data).hexdigest()


def sha256_file(path) -> str:
    """Hex SHA-256 of a file, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def verify_idx_file(
    dataset: str, archive_name: str, path, file_sha256: str, content: bytes, table: dict[str, Pinned]
) -> str:
    """Check one IDX file against the pinned values; returns "archive", "content" or "unverified".

    A .gz passes if the archive hash matches, or (a recompressed copy) if its decompressed bytes
    match the pinned content hash. An uncompressed file passes if it matches the content hash;
    with no content hash pinned it is accepted as "unverified". Anything else raises DataError.

    Args:
        dataset: the dataset name, for the message.
        archive_name: the canonical .gz name (the key in table).
        path: the file actually read.
        file_sha256: SHA-256 of that file's bytes.
        content: its decompressed IDX bytes.
        table: the pinned values of this dataset.
    """
    pinned = table[archive_name]
    if file_sha256 == pinned.sha256:
        return "archive"
    if pinned.content_sha256 is not None and sha256_bytes(content) == pinned.content_sha256:
        return "content"
    compressed = str(path).endswith(".gz")
    if not compressed and pinned.content_sha256 is None:
        return "unverified"
    expected = pinned.sha256 if compressed else pinned.content_sha256
    raise DataError(
        f"{path}: sha256 {file_sha256} is not the canonical {dataset} file (expected {expected}); "
        f"re-download it, or pass your own files explicitly as idx:DIR"
    )
