"""The embedding loop: one model over one dataset, shard by shard, into the store.

Batching under a budget, per-sample failures, out-of-memory backoff, progress and resuming live
here once, so that adapters stay small.
"""

from __future__ import annotations

import io
import json
import logging
import math
import pickle
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager, redirect_stdout
from dataclasses import dataclass
from typing import Any

import numpy as np

from matteralign.data.atom_sample import AtomSampling, atom_row_ids, sample_atoms
from matteralign.data.sample import Dataset, Sample
from matteralign.errors import AdapterError, SampleError
from matteralign.models.adapter import ModelAdapter
from matteralign.models.card import ModelCard
from matteralign.store.embedding_store import EmbeddingStore, ShardRecord
from matteralign.store.provenance import config_hash, environment_provenance


@dataclass
class EmbedSummary:
    """What :func:`embed_dataset` did for one (dataset, model)."""

    dataset: str
    model: str
    n_shards: int
    computed: int
    skipped: int
    n_embedded: int
    n_failed: int


@contextmanager
def quiet_load(model_id: str) -> Iterator[None]:
    """Keep what a model package prints while it loads (CHGNet's banner, ...) out of the
    command's output: its stdout goes to the ``matteralign.models`` log at debug level."""
    buffer = io.StringIO()
    with redirect_stdout(buffer):
        yield
    printed = buffer.getvalue().strip()
    if printed:
        logging.getLogger("matteralign.models").debug("%s printed while loading: %s", model_id,
                                                      printed)


def shard_slices(n: int, shard_size: int) -> list[slice]:
    """Contiguous slices of ``shard_size`` samples covering ``range(n)``."""
    return [slice(i, min(i + shard_size, n)) for i in range(0, n, shard_size)] or [slice(0, 0)]


ATOMS_BATCH_BUDGET = 512
"""Default batch budget of atoms-input models, in atoms (about 7 mlearn crystals, 30 QM9
molecules). One structure per batch (32) starves torch's intra-op threads: with 2 CPU threads
on a busy host every small kernel waits at an OpenMP barrier, and CHGNet, SevenNet and M3GNet
ran at 0.3-0.8x of their packages' own batched evaluation (benchmarks/RESULTS.md)."""


def default_batch_budget(card: ModelCard) -> int:
    """Batch budget used when none is given: the card's ``batch_budget`` where it sets one, else
    :data:`ATOMS_BATCH_BUDGET` atoms for atoms-input models and 32 for the others (tokens or
    items: one sequence or molecule per batch)."""
    if card.batch_budget is not None:
        return card.batch_budget
    return ATOMS_BATCH_BUDGET if card.input == "atoms" else 32


def _is_out_of_memory(error: BaseException) -> bool:
    return "out of memory" in str(error).lower() or type(error).__name__ == "OutOfMemoryError"


def resolve_layers(adapter: ModelAdapter, layers: str | Sequence[str]) -> list[str]:
    """``"last"`` → the card's last hidden layer, ``"all"`` → every layer, else the names given.

    Negative integers (as strings or ints) count from the end, Hugging Face style.
    """
    names = adapter.layer_names
    if layers == "last":
        return [adapter.card.last_layer]
    if layers == "all":
        return list(names)
    chosen = []
    for layer in layers:
        if isinstance(layer, int) or (isinstance(layer, str) and layer.lstrip("-").isdigit()):
            chosen.append(names[int(layer)])
        elif layer in names:
            chosen.append(layer)
        else:
            raise ValueError(f"model {adapter.id} has no layer {layer!r}; it has {names}")
    return chosen


class _ShardEmbedder:
    """Embeds one shard's samples, isolating failures and backing off on out-of-memory.

    With ``atoms`` ({sample id: atom indices}), the result of a sample is its per-atom features
    of those atoms, (n_i, D) per layer, instead of its pooled vector.
    """

    def __init__(self, adapter: ModelAdapter, layers: list[str], pooling: str, budget: int,
                 atoms: Mapping[str, np.ndarray] | None = None):
        self.adapter = adapter
        self.layers = layers
        self.pooling = pooling
        self.budget = budget
        self.atoms = atoms

    def batches(self, items: Iterable[tuple[str, Any]]) -> Iterator[list[tuple[str, Any]]]:
        """Consecutive batches whose summed cost stays within the budget (at least one item).

        Lazy: a batch is yielded as soon as the next item would overflow it, so embedding starts
        while later items are still being prepared.
        """
        current: list[tuple[str, Any]] = []
        used = 0
        for sample_id, item in items:
            cost = self.adapter.cost(item)
            if current and used + cost > self.budget:
                yield current
                current, used = [], 0
            current.append((sample_id, item))
            used += cost
        if current:
            yield current

    def run(self, batch: list[tuple[str, Any]], results: dict, failures: dict) -> None:
        try:
            out = self.adapter.embed([item for _, item in batch], self.layers, self.pooling,
                                     per_item=self.atoms is not None)
        except SampleError as error:
            if len(batch) == 1:
                failures[batch[0][0]] = error.reason
                return
            self._split(batch, results, failures)
            return
        except Exception as error:  # one bad sample must not sink the batch
            if len(batch) == 1:
                failures[batch[0][0]] = f"{type(error).__name__}: {error}"
                return
            if _is_out_of_memory(error):
                import gc

                gc.collect()
            self._split(batch, results, failures)
            return
        self._check_output(out, len(batch))
        for row, (sample_id, _) in enumerate(batch):
            if self.atoms is not None:
                pooled = {layer: np.asarray(out.per_item[layer][row])[self.atoms[sample_id]]
                          for layer in self.layers}
            else:
                pooled = {layer: out.pooled[layer][row] for layer in self.layers}
            bad = [layer for layer, vector in pooled.items() if not np.isfinite(vector).all()]
            if bad:
                failures[sample_id] = f"non-finite embedding in layer(s) {', '.join(bad)}"
                continue
            energy = None if out.energy is None else float(out.energy[row])
            if energy is not None and not math.isfinite(energy):
                failures[sample_id] = f"non-finite predicted energy ({energy})"
                continue
            results[sample_id] = (pooled, energy)

    def _check_output(self, out: Any, n: int) -> None:
        """Raise :class:`AdapterError` unless ``out`` has (n, D) rows for every layer asked."""
        for layer in self.layers:
            values = out.pooled.get(layer)
            shape = None if values is None else np.shape(values)
            if shape is None or len(shape) != 2 or shape[0] != n:
                raise AdapterError(
                    f"model {self.adapter.id} returned {'no' if shape is None else shape} "
                    f"embedding for layer {layer!r} on a batch of {n}; expected ({n}, D): "
                    "the adapter is broken, report it to its author"
                )
        if out.energy is not None and np.shape(out.energy) != (n,):
            raise AdapterError(
                f"model {self.adapter.id} returned energies of shape {np.shape(out.energy)} on a "
                f"batch of {n}; expected ({n},)"
            )
        if self.atoms is not None and (out.per_item is None or any(
                len(out.per_item.get(layer) or ()) != n for layer in self.layers)):
            raise AdapterError(
                f"model {self.adapter.id} returned no per-atom features (per_item) for layers "
                f"{self.layers}; atom-level embedding needs an adapter that gives them"
            )

    def _split(self, batch: list[tuple[str, Any]], results: dict, failures: dict) -> None:
        half = math.ceil(len(batch) / 2)
        self.run(batch[:half], results, failures)
        self.run(batch[half:], results, failures)


def _prepare_one(adapter: ModelAdapter, sample: Sample) -> tuple[Any, str | None]:
    """(prepared item, None), or (None, the reason) for a sample the model cannot take."""
    try:
        return adapter.prepare(sample), None
    except SampleError as error:
        return None, error.reason
    except Exception as error:
        return None, f"{type(error).__name__}: {error}"


_FORKED: dict[str, Any] = {}  # what forked prepare workers inherit: the adapter and the samples


class _ArrayPickler(pickle.Pickler):
    """Pickles CPU tensors as numpy arrays: 3-13x faster to load than torch's own reduction."""

    def reducer_override(self, obj: Any) -> Any:
        import torch

        if type(obj) is torch.Tensor and obj.device.type == "cpu" and not obj.requires_grad:
            try:
                return torch.from_numpy, (obj.numpy(),)
            except TypeError:  # a dtype numpy lacks (bfloat16): torch's reduction
                return NotImplemented
        return NotImplemented


def _prepare_in_worker(index: int) -> tuple[bytes | None, str | None]:
    item, failure = _prepare_one(_FORKED["adapter"], _FORKED["samples"][index])
    if item is None:
        return None, failure
    buffer = io.BytesIO()
    _ArrayPickler(buffer, protocol=4).dump(item)  # protocol 4: arrays come back writable
    return buffer.getvalue(), None


def _prepared_serially(
    adapter: ModelAdapter, samples: Sequence[Sample], failures: dict[str, str]
) -> Iterator[tuple[str, Any]]:
    for sample in samples:
        item, failure = _prepare_one(adapter, sample)
        if failure is None:
            yield sample.id, item
        else:
            failures[sample.id] = failure


#: How many prepared items a background thread keeps ready (:func:`prepared_items`).
PREPARE_AHEAD = 256


class _Raised:
    def __init__(self, error: BaseException) -> None:
        self.error = error


def _ahead_in_thread(items: Iterator[Any]) -> Iterator[Any]:
    """``items`` in order, produced by a background thread up to :data:`PREPARE_AHEAD` ahead.

    An error in the thread is raised here, in the consumer; a consumer that stops early stops
    the thread.
    """
    import queue
    import threading

    ready: queue.Queue = queue.Queue(maxsize=PREPARE_AHEAD)
    stop, end = threading.Event(), object()

    def hand_over(value: Any) -> bool:
        while not stop.is_set():
            try:
                ready.put(value, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for item in items:
                if not hand_over(item):
                    return
            hand_over(end)
        except BaseException as error:  # handed to the consumer, which raises it
            hand_over(_Raised(error))

    thread = threading.Thread(target=produce, name="matteralign-prepare", daemon=True)
    thread.start()
    try:
        while (value := ready.get()) is not end:
            if isinstance(value, _Raised):
                raise value.error
            yield value
    finally:
        stop.set()
        thread.join()


def _quiet_worker() -> None:
    import torch

    torch.set_num_threads(1)  # the workers share the host's cores; the parent uses the device


def prepared_items(
    adapter: ModelAdapter, samples: Sequence[Sample], failures: dict[str, str], workers: int = 0,
    ahead: bool = False,
) -> Iterator[tuple[str, Any]]:
    """``(sample id, adapter.prepare(sample))`` in sample order; failures go to ``failures``.

    With ``workers > 0``, an adapter whose ``prepare`` is host-only (``host_prepare``) and
    Linux (fork), ``prepare`` runs in that many forked processes (they inherit the loaded
    adapter; items come back pickled) while the caller consumes the items, so host-side graph
    building overlaps the device's forward passes. Otherwise, with ``ahead`` and a host-only
    ``prepare``, one background thread prepares up to :data:`PREPARE_AHEAD` items ahead of the
    caller (no pickling; the overlap comes from the C code of numpy, scipy and torch, which
    lets the other thread run). The items are those of the serial path, so the embeddings are
    identical.
    """
    forkable = adapter.host_prepare and sys.platform.startswith("linux")
    if workers < 1 or len(samples) < 2 or not forkable:
        serial = _prepared_serially(adapter, samples, failures)
        yield from (_ahead_in_thread(serial) if ahead and adapter.host_prepare else serial)
        return
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor
    from concurrent.futures.process import BrokenProcessPool

    _FORKED.update(adapter=adapter, samples=samples)
    pool = ProcessPoolExecutor(min(workers, len(samples)), multiprocessing.get_context("fork"),
                               initializer=_quiet_worker)
    try:
        outcomes = pool.map(_prepare_in_worker, range(len(samples)))
        for sample in samples:
            try:
                payload, failure = next(outcomes)
            except BrokenProcessPool as error:
                raise AdapterError(
                    f"model {adapter.id}: a prepare worker process died while preparing sample "
                    f"{sample.id} or one after it ({error}); rerun with prepare_workers: 0 to "
                    "prepare in the job's own process"
                ) from error
            if failure is None:
                yield sample.id, pickle.loads(payload)
            else:
                failures[sample.id] = failure
    finally:  # also when the consumer stops early: drop the work not yet started
        pool.shutdown(wait=True, cancel_futures=True)
        _FORKED.clear()


def shard_config_hash(
    adapter: ModelAdapter,
    layers: Sequence[str],
    pooling: str,
    dtype: str,
    dataset_fingerprint: str,
    shard_size: int,
    batch_budget: int,
    shard: int,
) -> str:
    """The configuration hash of one shard: equal hashes mean the stored shard may be reused."""
    return config_hash(
        shard=shard,
        model=adapter.id,
        version=adapter.card.version,
        checkpoint_sha256=adapter.card.checkpoint_sha256,
        options=adapter.options,
        layers=list(layers),
        pooling=pooling,
        dtype=dtype,
        dataset_fingerprint=dataset_fingerprint,
        shard_size=shard_size,
        batch_budget=batch_budget,
    )


def atom_level_name(dataset: str) -> str:
    """Store name of a dataset's atom-level embeddings: ``"<dataset>@atoms"``."""
    return f"{dataset}@atoms"


def atom_shard_hash(structure_hash: str, sampling: AtomSampling) -> str:
    """Configuration hash of an atom-level shard: the structure shard's hash and the sampling."""
    return config_hash(structure_shard=structure_hash, atoms=sampling.record())


def embedding_fingerprint(
    dataset: str, dataset_version: str, dataset_fingerprint: str, selection: dict | None,
    model: str, options: dict[str, Any], pooling: str | None, layers: str | Sequence[str],
    dtype: str,
) -> dict[str, Any]:
    """What a finished embedding was computed from, for its completion record.

    ``selection`` is the study's dataset selection ``{"n": ..., "seed": ...}`` (None outside a
    study); ``options`` are the adapter options as the study gives them (without
    ``data_root``, a location). ``align`` refuses to score an embedding whose record disagrees
    with the configuration it is given.
    """
    options = {k: v for k, v in options.items() if k != "data_root"}
    return {
        "dataset": {"name": dataset, "version": dataset_version,
                    "fingerprint": dataset_fingerprint, "selection": selection},
        "model": {"id": model, "pooling": pooling, "dtype": dtype,
                  "options": json.loads(json.dumps(options, sort_keys=True, default=str)),
                  "layers": layers if isinstance(layers, str) else list(layers)},
    }


def compute_shard(
    adapter: ModelAdapter,
    samples: Sequence[Sample],
    store: EmbeddingStore,
    *,
    dataset: str,
    dataset_version: str,
    dataset_fingerprint: str,
    shard: int,
    layers: Sequence[str],
    pooling: str,
    batch_budget: int,
    expected_hash: str,
    device: str = "cpu",
    dtype: str = "float32",
    prepare_workers: int = 0,
    atoms: Mapping[str, np.ndarray] | None = None,
) -> tuple[int, int]:
    """Embed one shard's samples with a loaded ``adapter`` and write the shard file.

    This is the unit of work that executors schedule (one task per model x dataset shard);
    :func:`embed_dataset` calls it for every shard that is not already current.

    Parameters
    ----------
    samples : sequence of Sample
        The shard's samples, in dataset order.
    layers : sequence of str
        Resolved layer names (see :func:`resolve_layers`).
    expected_hash : str
        From :func:`shard_config_hash`; written into the shard header.
    prepare_workers : int
        Forked processes that run ``adapter.prepare`` while the model embeds earlier batches
        (see :func:`prepared_items`); 0 prepares in this process, on a device other than the
        CPU in a background thread ahead of the model.
    atoms : mapping of sample id -> atom indices, optional
        Atom level: each sample listed gives one row per listed atom, with the row id
        ``"<sample id>#<atom index>:<element>"`` (:func:`~matteralign.data.atom_sample.atom_row_id`)
        and no energy; ``samples`` must all be listed.

    Returns
    -------
    (n_embedded, n_failed) : tuple of int
        Stored rows (atoms at atom level) and failed samples.
    """
    chosen_layers = list(layers)
    started = time.perf_counter()
    failures: dict[str, str] = {}
    results: dict[str, tuple[dict[str, np.ndarray], float | None]] = {}
    embedder = _ShardEmbedder(adapter, chosen_layers, pooling, batch_budget, atoms)
    prepared = prepared_items(adapter, samples, failures, prepare_workers,
                              ahead=device != "cpu")
    for batch in embedder.batches(prepared):
        embedder.run(batch, results, failures)
    done = [sample for sample in samples if sample.id in results]
    ids = [sample.id for sample in done]
    join = np.stack if atoms is None else np.concatenate
    layer_arrays = {
        layer: join([results[i][0][layer] for i in ids]) if ids
        else np.zeros((0, 0), dtype=np.float32)
        for layer in chosen_layers
    }
    energies = [results[i][1] for i in ids] if atoms is None else []
    if atoms is not None:
        ids = [row for sample in done for row in atom_row_ids(sample, atoms[sample.id])]
    energy = (
        np.asarray(energies, dtype=np.float64)
        if adapter.card.predicts_energy and energies and all(e is not None for e in energies)
        else None
    )
    ordered_failures = [(s.id, failures[s.id]) for s in samples if s.id in failures]
    provenance = {
        "model": adapter.id,
        "model_version": adapter.card.version,
        # adapters that read their checkpoint from a file at load time know its path and hash
        "checkpoint": str(getattr(adapter, "checkpoint_path", None) or adapter.card.checkpoint),
        "checkpoint_sha256": (getattr(adapter, "checkpoint_sha256", "")
                              or adapter.card.checkpoint_sha256),
        "layers": chosen_layers,
        "pooling": pooling,
        "dtype": dtype,
        "dataset": dataset,
        "dataset_version": dataset_version,
        "dataset_fingerprint": dataset_fingerprint,
        "shard": shard,
        "level": "structures" if atoms is None else "atoms",
        "runtime_s": round(time.perf_counter() - started, 3),
        **environment_provenance(device),
        **adapter.provenance([sample.id for sample in samples]),
    }
    store.write_shard(
        dataset, adapter.id, shard,
        ShardRecord(ids, layer_arrays, energy, ordered_failures, expected_hash, provenance),
    )
    return len(ids), len(ordered_failures)


def stored_shard_counts(
    store: EmbeddingStore, dataset: str, model: str, shard: int
) -> tuple[int, int]:
    """(n_embedded, n_failed) recorded in a stored shard's header."""
    header = store.read_header(store.shard_path(dataset, model, shard))
    if header is None:
        return 0, 0
    return len(json.loads(header["ids"])), len(json.loads(header["failures"]))


def embed_dataset(
    adapter: ModelAdapter,
    dataset: Dataset,
    store: EmbeddingStore,
    layers: str | Sequence[str] = "all",
    pooling: str | None = None,
    shard_size: int = 256,
    batch_budget: int | None = None,
    device: str = "cpu",
    dtype: str = "float32",
    on_progress: Callable[[int], None] | None = None,
    prepare_workers: int = 0,
    atoms: AtomSampling | None = None,
) -> EmbedSummary:
    """Embed every sample of ``dataset`` with ``adapter`` into ``store``, resumably.

    Shards whose configuration hash matches a stored, checksum-valid shard are skipped, so a
    killed run picks up where it stopped and ends with the same embeddings.

    Parameters
    ----------
    adapter : ModelAdapter
    dataset : Dataset
    store : EmbeddingStore
    layers : "last", "all" or sequence of str
    pooling : str, optional
        Default: the card's default pooling.
    shard_size : int
        Samples per shard file.
    batch_budget : int, optional
        Largest summed ``adapter.cost`` of a batch (atoms, tokens); default
        :func:`default_batch_budget` of the adapter's card.
    device, dtype : str
    on_progress : callable, optional
        Called with the number of samples finished (computed or skipped) after each shard.
    prepare_workers : int
        Processes that prepare samples (graph building) while the model runs; 0 = in this
        process. Takes effect for adapters with ``host_prepare`` on Linux; same embeddings.
    atoms : AtomSampling, optional
        Atom level: embed the atoms that :func:`~matteralign.data.atom_sample.sample_atoms`
        chooses (the same for every model), one row per atom keyed
        ``"<sample id>#<atom index>:<element>"``, stored under the dataset name
        ``"<dataset>@atoms"``; the sampling settings are part of each shard's hash.
    """
    pooling = pooling or adapter.card.default_pooling
    chosen_layers = resolve_layers(adapter, layers)
    budget = batch_budget or default_batch_budget(adapter.card)
    fingerprint = dataset.fingerprint()
    slices = shard_slices(len(dataset), shard_size)
    computed = skipped = embedded = failed = 0
    loaded = False
    plan = None if atoms is None else sample_atoms(dataset.samples, atoms)
    name = dataset.name if atoms is None else atom_level_name(dataset.name)
    for shard, piece in enumerate(slices):
        samples: Sequence[Sample] = dataset.samples[piece]
        expected = shard_config_hash(adapter, chosen_layers, pooling, dtype, fingerprint,
                                     shard_size, budget, shard)
        if plan is not None:
            samples = [sample for sample in samples if sample.id in plan]
            expected = atom_shard_hash(expected, atoms)
        if store.shard_is_current(name, adapter.id, shard, expected):
            n_ok, n_bad = stored_shard_counts(store, name, adapter.id, shard)
            skipped += 1
            embedded += n_ok
            failed += n_bad
            if on_progress:
                on_progress(piece.stop - piece.start)
            continue
        if not loaded:
            with quiet_load(adapter.id):
                adapter.load(device, dtype)
            loaded = True
        n_ok, n_bad = compute_shard(
            adapter, samples, store, dataset=name, dataset_version=dataset.card.version,
            dataset_fingerprint=fingerprint, shard=shard, layers=chosen_layers, pooling=pooling,
            batch_budget=budget, expected_hash=expected, device=device, dtype=dtype,
            prepare_workers=prepare_workers, atoms=plan,
        )
        computed += 1
        embedded += n_ok
        failed += n_bad
        if on_progress:
            on_progress(piece.stop - piece.start)
    remove_stale_shards(store, name, adapter.id, len(slices))
    record = embedding_fingerprint(dataset.name, dataset.card.version, fingerprint, None,
                                   adapter.id, adapter.options, pooling, chosen_layers, dtype)
    if atoms is not None:
        record["atoms"] = atoms.record()
    store.mark_complete(name, adapter.id, len(slices), record)
    return EmbedSummary(name, adapter.id, len(slices), computed, skipped, embedded, failed)


def remove_stale_shards(store: EmbeddingStore, dataset: str, model: str, n_shards: int) -> None:
    """Delete shards numbered ``n_shards`` and above, left by an earlier, larger dataset.

    Shards are chosen by the index in their name, never by position in a listing: a file of
    another name (a backup copy) is not a shard and is never deleted.
    """
    store.remove_shards_from(dataset, model, n_shards)
