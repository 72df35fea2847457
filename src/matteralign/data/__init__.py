"""Datasets of molecules, materials and proteins as ordered samples with stable string ids."""

from __future__ import annotations

from matteralign.data.registry import dataset_names, get_dataset_spec, load_dataset
from matteralign.data.sample import Dataset, DatasetCard, Label, ProteinStructure, Sample

__all__ = [
    "Dataset",
    "DatasetCard",
    "Label",
    "ProteinStructure",
    "Sample",
    "dataset_names",
    "get_dataset_spec",
    "load_dataset",
]
