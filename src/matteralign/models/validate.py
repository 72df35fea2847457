"""Conformance checks that any adapter, built-in or third-party, can run on its own samples.

``validate_adapter`` checks shapes, finiteness, determinism, batched == one-by-one, and for 3D
models the invariance of pooled invariant embeddings to rotation, translation and atom order.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from matteralign.data.sample import Sample
from matteralign.errors import AdapterError
from matteralign.models.adapter import EmbeddingOutput, ModelAdapter


@dataclass
class ValidationReport:
    """Outcome of :func:`validate_adapter`: the checks that passed and those that failed."""

    model_id: str
    passed: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failed


def _transformed(sample: Sample, seed: int) -> list[tuple[str, Sample]]:
    """Rotated, translated and atom-permuted copies of a 3D sample."""
    from scipy.spatial.transform import Rotation

    rng = np.random.default_rng(seed)
    atoms = sample.atoms
    rotation = Rotation.random(random_state=seed).as_matrix()
    rotated = atoms.copy()
    rotated.positions = atoms.positions @ rotation.T
    if atoms.pbc.any():
        rotated.set_cell(atoms.cell[:] @ rotation.T, scale_atoms=False)
    translated = atoms.copy()
    translated.positions = atoms.positions + rng.normal(0.0, 2.0, size=3)
    permuted = atoms[rng.permutation(len(atoms))]
    return [
        (name, Sample(id=f"{sample.id}:{name}", atoms=copy, labels=sample.labels))
        for name, copy in (("rotation", rotated), ("translation", translated),
                           ("permutation", permuted))
    ]


def validate_adapter(
    adapter: ModelAdapter,
    samples: Sequence[Sample],
    layers: Sequence[str] | None = None,
    pooling: str | None = None,
    rtol: float = 1e-4,
    atol: float = 1e-5,
    check_invariance: bool | None = None,
    raise_on_failure: bool = True,
) -> ValidationReport:
    """Check that ``adapter`` keeps the adapter contract on ``samples``.

    Parameters
    ----------
    adapter : ModelAdapter
        A loaded adapter (``load`` is called here if it was not).
    samples : sequence of Sample
        At least two samples the model can take.
    layers : sequence of str, optional
        Layers to check; default all of the card's layers.
    pooling : str, optional
        Pooling to check; default the card's.
    rtol, atol : float
        Tolerances for batched vs one-by-one and for invariance.
    check_invariance : bool, optional
        Check rotation / translation / permutation invariance; default: when the model reads
        atoms.
    raise_on_failure : bool
        Raise :class:`AdapterError` listing the failed checks instead of returning them.

    Returns
    -------
    ValidationReport
    """
    if len(samples) < 2:
        raise ValueError("validate_adapter needs at least two samples")
    layers = list(layers or adapter.layer_names)
    pooling = pooling or adapter.card.default_pooling
    invariance = adapter.card.input == "atoms" if check_invariance is None else check_invariance
    report = ValidationReport(adapter.id)

    def check(name: str, condition: bool, detail: str = "") -> None:
        (report.passed if condition else report.failed).append(
            name if condition else f"{name}: {detail}"
        )

    def run(batch: Sequence[Sample]) -> EmbeddingOutput:
        return adapter.embed([adapter.prepare(s) for s in batch], layers, pooling)

    adapter.load(adapter.device, adapter.dtype)
    first = run(samples)
    check("layers", set(first.pooled) == set(layers),
          f"returned {sorted(first.pooled)}, asked for {layers}")
    for layer, values in first.pooled.items():
        check(f"shape[{layer}]", values.ndim == 2 and values.shape[0] == len(samples),
              f"got {values.shape}, expected ({len(samples)}, D)")
        check(f"finite[{layer}]", bool(np.isfinite(values).all()), "NaN or inf in output")
    if adapter.card.predicts_energy:
        energy = first.energy
        check("energy", energy is not None and np.shape(energy) == (len(samples),)
              and bool(np.isfinite(energy).all()), f"energy {energy!r}")

    second = run(samples)
    same = all(np.array_equal(first.pooled[k], second.pooled[k]) for k in first.pooled)
    check("determinism", same, "two calls on the same batch differ")

    singles = [run([s]) for s in samples]
    for layer in first.pooled:
        stacked = np.concatenate([one.pooled[layer] for one in singles])
        close = np.allclose(first.pooled[layer], stacked, rtol=rtol, atol=atol)
        error = float(np.max(np.abs(first.pooled[layer] - stacked)))
        check(f"batched==single[{layer}]", close, f"max abs difference {error:.3g}")

    if invariance:
        for index, sample in enumerate(samples[:2]):
            for name, moved in _transformed(sample, seed=index):
                out = run([moved])
                for layer in first.pooled:
                    reference = first.pooled[layer][index]
                    error = float(np.max(np.abs(out.pooled[layer][0] - reference)))
                    scale = float(np.max(np.abs(reference))) or 1.0
                    check(f"{name}-invariance[{layer}]", error <= atol + rtol * scale * 10,
                          f"sample {sample.id!r}: max abs change {error:.3g}")

    if raise_on_failure and report.failed:
        raise AdapterError(
            f"adapter {adapter.id} failed {len(report.failed)} check(s):\n  - "
            + "\n  - ".join(report.failed)
        )
    return report
