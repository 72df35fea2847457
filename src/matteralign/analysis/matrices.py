"""Alignment matrices of stored embeddings: join models on sample ids, score all pairs, and write
or read the matrices under ``alignment/``.

:func:`score_dataset` is the one scoring function of ``align``, the analyses and the report: they
apply the same rules (models joined on shared ids, degenerate models left out, metrics that do not
fit N skipped), and the report reads what ``align`` wrote.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from matteralign.analysis.significance import k_flags, scored_metric, study_metric_id
from matteralign.errors import StoreError
from matteralign.store.embedding_store import StoredEmbeddings, atomic_write_bytes


@dataclass
class AlignedEmbeddings:
    """Embeddings of several models restricted to the sample ids they all share.

    Attributes
    ----------
    ids : list of str
        Shared ids, in the first model's order (N of them).
    values : dict of str to (N, D_m) array
        Each model's rows for ``ids``.
    dropped : dict of str to int
        For each model, how many of its embedded samples were left out because another model
        lacks them.
    """

    ids: list[str]
    values: dict[str, np.ndarray]
    dropped: dict[str, int]


def join_on_ids(embeddings: Sequence[StoredEmbeddings]) -> AlignedEmbeddings:
    """Restrict every model's embeddings to the ids all of them have, in a common order.

    Raises
    ------
    StoreError
        If a model has duplicated ids, or the models share no ids at all.
    """
    if not embeddings:
        raise StoreError("no embeddings to join")
    first = embeddings[0].ids
    if first and all(stored.ids == first for stored in embeddings[1:]):
        # the usual case, every model embedded the same ids in the same order: one duplicate
        # check, no id sets or row lookups, no copies
        if len(set(first)) != len(first):
            raise StoreError(f"model {embeddings[0].model!r} has duplicated sample ids in "
                             f"{embeddings[0].dataset!r}")
        return AlignedEmbeddings(list(first), {s.model: s.values for s in embeddings},
                                 {s.model: 0 for s in embeddings})
    for stored in embeddings:
        if len(set(stored.ids)) != len(stored.ids):
            raise StoreError(
                f"model {stored.model!r} has duplicated sample ids in {stored.dataset!r}")
    shared = set(embeddings[0].ids)
    for stored in embeddings[1:]:
        shared &= set(stored.ids)
    ids = [sample_id for sample_id in embeddings[0].ids if sample_id in shared]
    if not ids:
        raise StoreError(
            "the models share no embedded sample ids on dataset "
            f"{embeddings[0].dataset!r}; check their failures with `matteralign status`"
        )
    values = {}
    dropped = {}
    for stored in embeddings:
        position = {sample_id: row for row, sample_id in enumerate(stored.ids)}
        rows = np.fromiter((position[i] for i in ids), dtype=np.int64, count=len(ids))
        in_order = len(rows) == len(stored.ids) and bool((rows == np.arange(len(rows))).all())
        values[stored.model] = stored.values if in_order else stored.values[rows]  # no copy
        dropped[stored.model] = len(stored.ids) - len(ids)
    return AlignedEmbeddings(ids, values, dropped)


@dataclass
class DatasetScores:
    """Every metric's all-pairs scores of one dataset: what ``align`` writes and the analyses read.

    Attributes
    ----------
    dataset : str
    n : int
        Samples scored (the ids every model embedded); 0 when nothing was scored.
    models : list of str
        Models scored, in study order (degenerate ones left out, see ``skipped``).
    layers : dict of str to str
        The layer scored of each model.
    matrices : dict of str to DataFrame
        Metric id -> (M, M) matrix labelled by model; row a, column b holds score(a -> b).
        A per-model metric gives an (M, 1) frame.
    rows : DataFrame
        Long form of every score: dataset, model_a, model_b, metric, value, preprocessing,
        diagnostics, layer_a, layer_b, preprocess, n.
    skipped : list of (str, str)
        What was left out and why: models that did not finish or cannot be scored, samples that
        some model lacks, metrics that cannot score N samples (k >= N or N below the minimum).
    metric_ids : dict of str to str
        The study's metric id (:func:`~matteralign.analysis.significance.study_metric_id`) ->
        the id scored here: the same, or with k chosen from N where the study's id leaves k unset
        ("cknna" -> "cknna-k6" at N = 60).
    flags : list of (str, str)
        Scores kept with a caveat and why: k / N above the documented limit, similarities outside
        [-1, 1] (:func:`~matteralign.analysis.significance.k_flags`).
    """

    dataset: str
    n: int = 0
    models: list[str] = field(default_factory=list)
    layers: dict[str, str] = field(default_factory=dict)
    matrices: dict[str, pd.DataFrame] = field(default_factory=dict)
    rows: pd.DataFrame = field(default_factory=pd.DataFrame)
    skipped: list[tuple[str, str]] = field(default_factory=list)
    metric_ids: dict[str, str] = field(default_factory=dict)
    flags: list[tuple[str, str]] = field(default_factory=list)


def score_dataset(
    stored: Sequence[StoredEmbeddings],
    dataset: str,
    metrics: Sequence[str],
    preprocess: Sequence[str] = ("l2",),
    device: Any = "cpu",
    progress: bool | None = None,
    skipped: Sequence[tuple[str, str]] = (),
) -> DatasetScores:
    """Score every pair of models on one dataset with every metric: the one scoring function of
    ``matteralign align``, of the analyses and of the report.

    The rules, applied in this order and each recorded in ``skipped``:

    1. the embeddings are joined on the sample ids every model has (:func:`join_on_ids`);
    2. each model is preprocessed and checked once (:func:`matteralign.metrics.prepare_models`,
       on the device for a CUDA ``device``); a model with NaN/inf, a constant embedding or a failed
       step is left out (never the metric);
    3. a pairwise neighbour measure whose id leaves k unset ("cknna") is scored with k chosen
       from N (:func:`~matteralign.analysis.significance.scored_metric`: "cknna-k6" at N = 60);
       an id that sets k keeps it, flagged in ``flags`` when k / N exceeds the documented limit
       or a similarity leaves [-1, 1];
    4. a metric whose N is below its minimum or whose k (2k for GRIDE) is >= N is not scored
       (a k the id sets is never lowered, samples are never subsampled).

    Parameters
    ----------
    stored : sequence of StoredEmbeddings
        The finished embeddings of the scored layer, one per model, in study order.
    dataset : str
    metrics : sequence of str
        Registered metric ids.
    preprocess : sequence of str
    device : str
        Where the scores are computed ("cpu", "cuda", "auto").
    progress : bool, optional
    skipped : sequence of (str, str)
        Reasons found while loading (models that did not finish), carried into the result.

    Returns
    -------
    DatasetScores
    """
    from matteralign import metrics as m

    out = DatasetScores(dataset, skipped=list(skipped))
    stored = [s for s in stored if len(s.ids)]
    if len(stored) < 2:
        if stored:
            out.skipped.append((f"alignment on {dataset}", "fewer than two models have embeddings"))
        return out
    try:
        aligned = join_on_ids(stored)
    except StoreError as error:
        out.skipped.append((f"alignment on {dataset}", str(error)))
        return out
    for model, n_dropped in aligned.dropped.items():
        if n_dropped:
            out.skipped.append((f"{n_dropped} samples of {model} on {dataset}",
                                "another model has no embedding of them (see `matteralign "
                                f"status`); scores use the {len(aligned.ids)} samples every "
                                "model embedded"))
    prepared = m.prepare_models(aligned.values, preprocess, device, drop_degenerate=True)
    for model, reason in prepared.dropped.items():
        out.skipped.append((f"model {model} on {dataset}",
                            f"its embeddings cannot be scored: {reason}"))
    if len(prepared.names) < 2:
        out.skipped.append((f"alignment on {dataset}", "fewer than two models can be scored"))
        return out
    out.n, out.models = prepared.n_samples, list(prepared.names)
    out.layers = {s.model: s.layer for s in stored if s.model in prepared.names}
    frames = []
    for metric in metrics:
        try:
            spec = scored_metric(metric, out.n)
            result = m.pairwise(prepared, spec, progress=progress)
        except m.EmbeddingError as error:
            out.skipped.append((f"metric {metric} on {dataset}", str(error)))
            continue
        out.metric_ids[study_metric_id(metric)] = spec.id
        out.matrices[spec.id] = (result.per_model.to_frame() if spec.per_model
                                 else result.matrix)
        out.flags += [(f"metric {spec.id} on {dataset}", why)
                      for why in k_flags(spec.id, out.n, out.matrices[spec.id])]
        rows = result.rows.copy()
        rows.insert(0, "dataset", dataset)
        rows["layer_a"] = rows["model_a"].map(out.layers)
        rows["layer_b"] = rows["model_b"].map(out.layers)
        rows["preprocess"] = ",".join(preprocess)
        rows["n"] = out.n
        frames.append(rows)
    if frames:
        out.rows = pd.concat(frames, ignore_index=True)
    return out


#: The index of one dataset's scores under ``alignment/<dataset>/``.
SCORES_INDEX = "scores.json"


def write_dataset_scores(root: Path, scores: DatasetScores) -> dict[str, Path]:
    """Write ``alignment/<dataset>/<metric>.parquet`` and the index ``scores.json`` under ``root``.

    Each file is written atomically; the index (n, models, layers, metrics written, the id
    scored for each of the study's metric ids and its k, skipped with reasons, flags with
    reasons) is written last, so a reader that finds it finds every matrix it names.

    Returns
    -------
    dict of metric id to path relative to ``root``
    """
    from matteralign.metrics import get_metric

    folder = Path("alignment") / scores.dataset
    written = {}
    for metric, matrix in scores.matrices.items():
        path = folder / f"{metric}.parquet"
        atomic_write_bytes(Path(root) / path, matrix.to_parquet())
        written[metric] = path
    index = {"dataset": scores.dataset, "n": scores.n, "models": scores.models,
             "layers": scores.layers, "metrics": list(scores.matrices),
             "metric_ids": scores.metric_ids,
             "k": {metric: get_metric(metric).k for metric in scores.matrices
                   if get_metric(metric).k is not None},
             "skipped": [{"what": what, "why": why} for what, why in scores.skipped],
             "flags": [{"what": what, "why": why} for what, why in scores.flags]}
    atomic_write_bytes(Path(root) / folder / SCORES_INDEX, json.dumps(index, indent=1).encode())
    return written


def read_dataset_scores(out: Path, dataset: str) -> DatasetScores | None:
    """The scores ``align`` wrote for ``dataset`` under ``out``, or None when it wrote none.

    Raises
    ------
    StoreError
        If the index names a matrix that cannot be read.
    """
    folder = Path(out) / "alignment" / dataset
    try:
        index = json.loads((folder / SCORES_INDEX).read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as error:
        raise StoreError(f"{folder / SCORES_INDEX} cannot be read ({error}); rerun "
                         "`matteralign align`") from None
    matrices = {}
    for metric in index["metrics"]:
        path = folder / f"{metric}.parquet"
        try:
            matrices[metric] = pd.read_parquet(path)
        except (OSError, ValueError) as error:
            raise StoreError(f"{path} cannot be read ({error}); rerun `matteralign align`"
                             ) from None
    n = int(index["n"])
    if "flags" in index:
        flags = [(f["what"], f["why"]) for f in index["flags"]]
    else:  # written before flags were: the same rule on the matrices read
        flags = [(f"metric {metric} on {dataset}", why) for metric, mat in matrices.items()
                 for why in k_flags(metric, n, mat)]
    return DatasetScores(dataset, n, list(index["models"]), dict(index["layers"]), matrices,
                         skipped=[(s["what"], s["why"]) for s in index["skipped"]],
                         metric_ids=dict(index.get("metric_ids", {})), flags=flags)


