"""Two-dimensional maps of one model's embeddings of several datasets (UMAP, or PCA without it).

Points carry their dataset and, where known, the model's energy error on that structure.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

__all__ = ["EmbeddingMap", "embedding_map", "project_2d"]


def project_2d(values: np.ndarray, method: str = "pca", seed: int = 0) -> tuple[np.ndarray, str]:
    """Project (N, D) rows to (N, 2).

    Parameters
    ----------
    values : (N, D) array
    method : {"pca", "umap"}
        UMAP (``umap-learn``, 15 neighbours capped at N - 1, seeded, one thread) or PCA (centred
        SVD, deterministic signs: the largest-magnitude loading of each axis is positive).
    seed : int

    Returns
    -------
    coords : (N, 2) array
    method : str
        The method actually used ("pca" when UMAP cannot run: too few points).
    """
    x = np.asarray(values, dtype=np.float64)
    if x.ndim != 2 or x.shape[0] < 3:
        raise ValueError(f"a 2D map needs an (N >= 3, D) array, got {x.shape}")
    if method == "umap" and x.shape[0] > 4:
        import umap

        reducer = umap.UMAP(n_components=2, n_neighbors=min(15, x.shape[0] - 1), random_state=seed,
                            n_jobs=1)
        return np.asarray(reducer.fit_transform(x), dtype=np.float64), "umap"
    if method not in ("pca", "umap"):
        raise ValueError(f"projection must be 'pca' or 'umap', not {method!r}")
    xc = x - x.mean(0)
    _, s, vt = np.linalg.svd(xc, full_matrices=False)
    vt = vt[:2]
    signs = np.sign(vt[np.arange(len(vt)), np.abs(vt).argmax(1)])
    signs[signs == 0] = 1.0
    coords = xc @ (vt * signs[:, None]).T
    if coords.shape[1] < 2:
        coords = np.hstack([coords, np.zeros((len(coords), 2 - coords.shape[1]))])
    return coords, "pca"


@dataclass
class EmbeddingMap:
    """A 2D map of one model's embeddings.

    Attributes
    ----------
    model : str
    points : DataFrame
        id, dataset, x, y, energy_error (eV, NaN where unknown).
    method : str
        "umap" or "pca".
    """

    model: str
    points: pd.DataFrame
    method: str


def embedding_map(
    model: str,
    embeddings: Mapping[str, tuple[Sequence[str], np.ndarray]],
    energy_errors: Mapping[str, pd.Series] | None = None,
    method: str = "pca",
    max_per_dataset: int | None = 2000,
    preprocessing: Sequence[str] = (),
    seed: int = 0,
) -> EmbeddingMap:
    """Embed several datasets' rows of one model jointly in 2D.

    Parameters
    ----------
    model : str
    embeddings : mapping of dataset to (ids, (N_d, D) array)
        The same layer of the same model on each dataset (so D agrees).
    energy_errors : mapping of dataset to Series, optional
        Per-sample energy error (eV) indexed by sample id.
    method : {"pca", "umap"}
    max_per_dataset : int, optional
        Seeded subsample per dataset, as the paper took 15,000 per dataset.
    preprocessing : sequence of str
        Steps of :func:`matteralign.metrics.apply_preprocessing`, applied to the joint rows.
    """
    from matteralign import metrics

    dims = {d: v.shape[1] for d, (_, v) in embeddings.items()}
    if len(set(dims.values())) > 1:
        raise ValueError(f"model {model!r} has different widths per dataset {dims}")
    rng = np.random.default_rng(seed)
    parts, frames = [], []
    for dataset, (ids, values) in embeddings.items():
        idx = np.arange(len(ids))
        if max_per_dataset is not None and len(idx) > max_per_dataset:
            idx = np.sort(rng.choice(len(idx), max_per_dataset, replace=False))
        parts.append(np.asarray(values)[idx])
        err = (energy_errors or {}).get(dataset)
        sel = [ids[i] for i in idx]
        frames.append(pd.DataFrame({
            "id": sel, "dataset": dataset,
            "energy_error": (err.reindex(sel).to_numpy(dtype=float) if err is not None
                             else np.full(len(sel), np.nan)),
        }))
    x = np.concatenate(parts)
    if preprocessing:
        x = metrics.apply_preprocessing(x, list(preprocessing))
    coords, used = project_2d(x, method, seed)
    points = pd.concat(frames, ignore_index=True)
    points["x"], points["y"] = coords[:, 0], coords[:, 1]
    return EmbeddingMap(model, points[["id", "dataset", "x", "y", "energy_error"]], used)
