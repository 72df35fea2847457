"""Energy regression MAE after a per-model linear compositional correction (paper §4.7).

Removes each level of theory's composition-dependent reference energies before comparing a model's
predicted energies with the reference (DFT) energies. A fit with fewer than
:data:`MIN_RESIDUAL_DOF` residual degrees of freedom is refused: it (nearly) interpolates, and its
MAE measures float noise, not the model.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from matteralign.errors import MatterAlignError

__all__ = [
    "MIN_RESIDUAL_DOF",
    "CompositionFit",
    "EnergyError",
    "EnergyFitError",
    "composition_matrix",
    "compositional_residuals",
    "energy_regression_error",
    "mae_interval",
]

#: Smallest n - rank([counts, 1]) a compositional fit must leave. With 89 structures of 89
#: elements (matpes-*-refs) the fit has 0 and reproduces every energy to 1e-13 eV.
MIN_RESIDUAL_DOF = 10


class EnergyFitError(MatterAlignError, ValueError):
    """A compositional energy fit has too few residual degrees of freedom to mean anything."""


def composition_matrix(
    numbers: Sequence[Sequence[int]], elements: Sequence[int] | None = None
) -> tuple[np.ndarray, list[int]]:
    """Element counts of each structure.

    Parameters
    ----------
    numbers : sequence of int sequences
        Atomic numbers of each structure (``atoms.numbers``).
    elements : sequence of int, optional
        Columns to use; default every element present, ascending.

    Returns
    -------
    counts : (N, E) float array
        counts[i, e] = number of atoms of element ``elements[e]`` in structure i.
    elements : list of int
    """
    if elements is None:
        elements = sorted({int(z) for zs in numbers for z in zs})
    column = {z: e for e, z in enumerate(elements)}
    counts = np.zeros((len(numbers), len(elements)))
    for i, zs in enumerate(numbers):
        for z in zs:
            if int(z) not in column:
                raise ValueError(f"structure {i} has element Z={int(z)} outside {list(elements)}")
            counts[i, column[int(z)]] += 1.0
    return counts, list(elements)


@dataclass
class CompositionFit:
    """A least-squares fit E ≈ w·c + b of energies on element counts.

    Attributes
    ----------
    weights : (E,) array
        Per-element reference energies, eV per atom of that element.
    intercept : float
        eV.
    residuals : (N,) array
        E - (w·c + b), eV: the composition-free part of the energy.
    """

    weights: np.ndarray
    intercept: float
    residuals: np.ndarray
    rank: int = 0
    dof: int = 0


def compositional_residuals(
    energies: np.ndarray, counts: np.ndarray, min_dof: int = MIN_RESIDUAL_DOF,
    name: str = "energies",
) -> CompositionFit:
    """Fit E_i ≈ wᵀc_i + b by least squares and return the residuals ΔE_i (paper §4.7, step 1–3).

    Parameters
    ----------
    energies : (N,) array
        Total energies, eV.
    counts : (N, E) array
        Element counts (:func:`composition_matrix`).
    min_dof : int
        Smallest residual degrees of freedom N - rank([counts, 1]) accepted.
    name : str
        What is fitted (dataset, model), for the error message.

    Returns
    -------
    CompositionFit
        The minimum-norm least-squares solution when counts are collinear (e.g. one element),
        with the design's rank and dof = N - rank.

    Raises
    ------
    EnergyFitError
        When N - rank < ``min_dof`` (e.g. 89 structures of 89 elements: an exact interpolation).
    """
    energies = np.asarray(energies, dtype=np.float64)
    counts = np.asarray(counts, dtype=np.float64)
    if energies.ndim != 1 or counts.shape[0] != energies.shape[0]:
        raise ValueError(
            f"energies {energies.shape} and counts {counts.shape} must have the same N rows"
        )
    design = np.hstack([counts, np.ones((len(energies), 1))])
    coef, _, rank, _ = np.linalg.lstsq(design, energies, rcond=None)
    dof = len(energies) - int(rank)
    if dof < min_dof:
        raise EnergyFitError(
            f"{name}: {len(energies)} structures and {counts.shape[1]} elements + intercept "
            f"(rank {int(rank)}) leave {dof} residual degrees of freedom; the compositional fit "
            f"needs at least {min_dof}, else it interpolates the energies and the MAE is float "
            "noise. Use a dataset with more structures per element."
        )
    residuals = energies - design @ coef
    return CompositionFit(coef[:-1], float(coef[-1]), residuals, int(rank), dof)


@dataclass
class EnergyError:
    """A model's energy regression error against reference energies.

    Attributes
    ----------
    mae : float
        (1/N) Σ |ΔE_true - ΔE_model|, eV per structure.
    errors : (N,) array
        ΔE_model - ΔE_true per structure, eV.
    true_residuals, model_residuals : (N,) arrays
        Composition-corrected reference and predicted energies, eV.
    dof : int
        Residual degrees of freedom of each fit, N - rank([counts, 1]).
    """

    mae: float
    errors: np.ndarray
    true_residuals: np.ndarray
    model_residuals: np.ndarray
    dof: int = 0


def mae_interval(
    errors: np.ndarray, n_bootstrap: int = 2000, level: float = 0.95, seed: int = 0
) -> tuple[float, float]:
    """Percentile bootstrap interval of the MAE over structures.

    MAE* = (1/N) Σ_i |e_{J_i}| with J drawn uniformly with replacement from the N structures
    (``default_rng(seed)``); the interval is the (1 - level)/2 and (1 + level)/2 quantiles of
    ``n_bootstrap`` draws. It covers the sampling of structures given the fitted corrections.

    Parameters
    ----------
    errors : (N,) array
        Per-structure errors, eV (:attr:`EnergyError.errors`).

    Returns
    -------
    (low, high) : floats, eV
    """
    e = np.abs(np.asarray(errors, dtype=np.float64))
    if e.size < 2:
        return float("nan"), float("nan")
    idx = np.random.default_rng(seed).integers(0, e.size, (n_bootstrap, e.size))
    boots = e[idx].mean(1)
    lo, hi = np.quantile(boots, [(1 - level) / 2, (1 + level) / 2])
    return float(lo), float(hi)


def energy_regression_error(
    reference: np.ndarray, predicted: np.ndarray, counts: np.ndarray,
    min_dof: int = MIN_RESIDUAL_DOF, name: str = "energies",
) -> EnergyError:
    """The paper's energy regression MAE: compare composition-corrected energies (§4.7).

    A separate linear compositional model is fitted to the reference energies and to the model's
    own predictions, so a constant or per-element shift of the model's energy scale (another level
    of theory, other reference atoms) costs nothing.

    Parameters
    ----------
    reference : (N,) array
        Reference (e.g. DFT) total energies, eV.
    predicted : (N,) array
        The model's predicted total energies of the same structures, eV.
    counts : (N, E) array
        Element counts.
    min_dof : int
        Smallest residual degrees of freedom of the fits (:func:`compositional_residuals`).
    name : str
        Dataset and model, for the error message.

    Returns
    -------
    EnergyError

    Raises
    ------
    EnergyFitError
        When the fits would leave fewer than ``min_dof`` degrees of freedom.

    Examples
    --------
    >>> import numpy as np
    >>> c = np.array([[1., 0], [0, 1], [1, 1], [2, 1], [1, 2]])
    >>> e = c @ [-3.0, -5.0] + np.array([0.1, -0.1, 0.0, 0.2, -0.2])
    >>> shifted = c @ [-7.0, 1.0] + 4.0 + np.array([0.1, -0.1, 0.0, 0.2, -0.2])
    >>> round(energy_regression_error(e, shifted, c, min_dof=2).mae, 12)
    0.0
    """
    reference = np.asarray(reference, dtype=np.float64)
    predicted = np.asarray(predicted, dtype=np.float64)
    if reference.shape != predicted.shape:
        raise ValueError(f"reference {reference.shape} and predictions {predicted.shape} differ")
    true_fit = compositional_residuals(reference, counts, min_dof, f"{name} (reference)")
    model = compositional_residuals(predicted, counts, min_dof, name).residuals
    errors = model - true_fit.residuals
    return EnergyError(float(np.mean(np.abs(errors))), errors, true_fit.residuals, model,
                       true_fit.dof)
