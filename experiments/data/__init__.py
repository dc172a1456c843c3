"""Datasets for mnist-parity: readers, pinned checksums, lookup, download, splits (framework-neutral)."""

from experiments.data.dataset import Dataset, DatasetRecord
from experiments.data.download import download_files, resolve_mirrors
from experiments.data.idx import read_idx
from experiments.data.kaggle_csv import read_kaggle_csv
from experiments.data.npz import read_keras_npz
from experiments.data.registry import dataset_names, describe_datasets, load_dataset
from experiments.data.split import split_train_validation, to_model_inputs

__all__ = [
    "Dataset",
    "DatasetRecord",
    "dataset_names",
    "describe_datasets",
    "download_files",
    "load_dataset",
    "read_idx",
    "read_kaggle_csv",
    "read_keras_npz",
    "resolve_mirrors",
    "split_train_validation",
    "to_model_inputs",
]
