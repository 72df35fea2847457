"""Energy regression MAE after a per-model linear compositional correction (paper §4.7).

Removes each level of theory's composition-dependent reference energies before comparing a model's
predicted energies with the reference (DFT) energies.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

__all__ = [
    "CompositionFit",
    "EnergyError",
    "composition_matrix",
    "compositional_residuals",
    "energy_regression_error",
]


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


def compositional_residuals(energies: np.ndarray, counts: np.ndarray) -> CompositionFit:
    """Fit E_i ≈ wᵀc_i + b by least squares and return the residuals ΔE_i (paper §4.7, step 1–3).

    Parameters
    ----------
    energies : (N,) array
        Total energies, eV.
    counts : (N, E) array
        Element counts (:func:`composition_matrix`).

    Returns
    -------
    CompositionFit
        The minimum-norm least-squares solution when counts are collinear (e.g. one element).
    """
    energies = np.asarray(energies, dtype=np.float64)
    counts = np.asarray(counts, dtype=np.float64)
    if energies.ndim != 1 or counts.shape[0] != energies.shape[0]:
        raise ValueError(
            f"energies {energies.shape} and counts {counts.shape} must have the same N rows"
        )
    design = np.hstack([counts, np.ones((len(energies), 1))])
    coef, *_ = np.linalg.lstsq(design, energies, rcond=None)
    residuals = energies - design @ coef
    return CompositionFit(coef[:-1], float(coef[-1]), residuals)


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
    """

    mae: float
    errors: np.ndarray
    true_residuals: np.ndarray
    model_residuals: np.ndarray


def energy_regression_error(
    reference: np.ndarray, predicted: np.ndarray, counts: np.ndarray
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

    Returns
    -------
    EnergyError

    Examples
    --------
    >>> import numpy as np
    >>> c = np.array([[1., 0], [0, 1], [1, 1], [2, 1], [1, 2]])
    >>> e = c @ [-3.0, -5.0] + np.array([0.1, -0.1, 0.0, 0.2, -0.2])
    >>> shifted = c @ [-7.0, 1.0] + 4.0 + np.array([0.1, -0.1, 0.0, 0.2, -0.2])
    >>> round(energy_regression_error(e, shifted, c).mae, 12)
    0.0
    """
    reference = np.asarray(reference, dtype=np.float64)
    predicted = np.asarray(predicted, dtype=np.float64)
    if reference.shape != predicted.shape:
        raise ValueError(f"reference {reference.shape} and predictions {predicted.shape} differ")
    true = compositional_residuals(reference, counts).residuals
    model = compositional_residuals(predicted, counts).residuals
    errors = model - true
    return EnergyError(float(np.mean(np.abs(errors))), errors, true, model)
