"""Datasets of molecules, materials and proteins as ordered samples with stable string ids."""

from __future__ import annotations

from matteralign.data.readers import ReadOptions, load_file, read_file
from matteralign.data.registry import (
    dataset_names,
    default_suite,
    get_dataset_spec,
    load_dataset,
    register_file_dataset,
)
from matteralign.data.sample import Dataset, DatasetCard, Label, ProteinStructure, Sample

__all__ = [
    "Dataset",
    "DatasetCard",
    "Label",
    "ProteinStructure",
    "ReadOptions",
    "Sample",
    "dataset_names",
    "default_suite",
    "get_dataset_spec",
    "load_dataset",
    "load_file",
    "read_file",
    "register_file_dataset",
]
