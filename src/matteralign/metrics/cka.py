"""Centred kernel alignment (Kornblith et al. 2019): linear in feature space, or RBF streamed.

Linear CKA costs O(N D^2) and never forms an N x N matrix.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ._backend import Backend, resolve_backend
from ._checks import EmbeddingError, as_embedding, check_same_samples
from .streams import centred_product, cross_sums

__all__ = ["cka", "rbf_sigma"]


@dataclass
class LinearCkaState:
    """Per-model terms of linear CKA.

    Attributes
    ----------
    xc : (N, D) tensor, column-centred features (float64)
    sq : (N,) tensor, squared row norms ||xc_i||^2
    kone : (N,) tensor, row sums of K~ = Xc Xc' with zeroed diagonal
    sum_k : float, 1' K~ 1
    self_term : float, ||Xc'Xc||_F^2 (biased) or the HSIC_1 numerator (unbiased)
    gram : (N, N) tensor or None
        Kc = Xc Xc' when D > N (the sample-space form), else None (the feature-space form).
    """

    xc: Any
    sq: Any
    kone: Any
    sum_k: float
    self_term: float
    gram: Any = None


def linear_state(x: np.ndarray, be: Backend, unbiased: bool, name: str = "x") -> LinearCkaState:
    """Centre the columns and precompute every per-model term of (unbiased) linear CKA.

    ||Xc'Xc||_F = ||Xc Xc'||_F, so the self term is formed from the smaller of the (D, D) and the
    (N, N) Gram: a (20, 50,000) embedding costs a 20 x 20 matrix, not a 50,000 x 50,000 one.
    """
    t = be.tensor(x)
    xc = t - t.mean(0, keepdim=True)
    sq = (xc * xc).sum(1)
    kone = xc @ xc.sum(0) - sq
    sum_k = float(kone.sum())
    wide = xc.shape[1] > xc.shape[0]
    st = LinearCkaState(xc, sq, kone, sum_k, 0.0, xc @ xc.T if wide else None)
    st.self_term = linear_cross(st, st, unbiased, gram=st.gram if wide else xc.T @ xc)
    if not st.self_term > 0:
        raise EmbeddingError(
            f"{name}: the embedding has no variance after centring (constant rows); CKA is "
            "undefined."
        )
    return st


def linear_cross(a: LinearCkaState, b: LinearCkaState, unbiased: bool, gram: Any = None) -> float:
    """HSIC numerator between two linear kernels from feature-space products.

    Biased:   ||Yc' Xc||_F^2  (= tr(K H L H) with K = X X', L = Y Y')
    Unbiased: tr(K~ L~) + (1'K~1)(1'L~1)/((N-1)(N-2)) - (2/(N-2)) (K~1).(L~1), with
              tr(K~ L~) = ||Xc'Yc||_F^2 - sum_i ||x_i||^2 ||y_i||^2 (diagonals zeroed).

    ||Yc'Xc||_F^2 = sum_ij (Kc)_ij (Lc)_ij: when both models are wider than N, the (N, N) Grams
    are used instead of the (D_x, D_y) cross product. ``gram`` is a precomputed Xc'Yc (or, for
    a self term of a wide model, Kc; both give the same Frobenius norm).
    """
    n = a.xc.shape[0]
    if gram is None and a.xc.shape[1] > n and b.xc.shape[1] > n:
        ka = a.gram if a.gram is not None else a.xc @ a.xc.T   # a state permuted without its Gram
        kb = b.gram if b.gram is not None else b.xc @ b.xc.T
        fro = float((ka * kb).sum())
    else:
        c = gram if gram is not None else a.xc.T @ b.xc
        fro = float((c * c).sum())
    if not unbiased:
        return fro
    tr = fro - float((a.sq * b.sq).sum())
    return tr + a.sum_k * b.sum_k / ((n - 1) * (n - 2)) - 2.0 * float(a.kone @ b.kone) / (n - 2)


def rbf_sigma(x: np.ndarray) -> float:
    """Default RBF bandwidth: sigma^2 = half the mean squared distance over pairs i != j.

    mean_{i != j} ||x_i - x_j||^2 = 2 N sum_i ||x_i - xbar||^2 / (N (N - 1)),
    exact in O(N D) (the median heuristic would need all N^2 distances); computed on the centred
    rows, so an offset far from the origin does not cancel away the spread.
    """
    n = x.shape[0]
    xc = x - x.mean(0)
    msd = 2 * n * float((xc * xc).sum()) / (n * (n - 1))
    if not msd > 0:
        raise EmbeddingError("x: all rows are identical; the RBF bandwidth is undefined.")
    return float(np.sqrt(msd / 2.0))


def cka(
    x: np.ndarray,
    y: np.ndarray,
    kernel: str = "linear",
    unbiased: bool = False,
    sigma: float | None = None,
    device: Any = "cpu",
) -> float:
    """Centred kernel alignment.

    CKA = HSIC(K, L) / sqrt(HSIC(K, K) HSIC(L, L))

    Biased HSIC_0 = tr(K H L H) / (N-1)^2 (Gretton 2005); unbiased HSIC_1 (Song et al. 2012) uses
    the kernels with zeroed diagonals and can make CKA negative. ``kernel="linear"``: K = X X',
    computed in feature space as ||Yc'Xc||_F^2 / (||Xc'Xc||_F ||Yc'Yc||_F) in O(N D^2) (unbiased:
    the O(N D_x D_y) identities of the HSIC_1 terms). ``kernel="rbf"``:
    K_ij = exp(-||x_i-x_j||^2/(2 sigma^2)), streamed over row blocks with float64 sums.

    Parameters
    ----------
    x : (N, D_x) array
    y : (N, D_y) array
    kernel : {"linear", "rbf"}
    unbiased : bool
        Use HSIC_1 (needs N >= 4).
    sigma : float, optional
        RBF bandwidth for both spaces; default :func:`rbf_sigma` of each space.
    device : {"cpu", "cuda", "auto"}

    Returns
    -------
    float
    """
    x = as_embedding(x, "x", min_samples=4 if unbiased else 2)
    y = as_embedding(y, "y", min_samples=4 if unbiased else 2)
    check_same_samples(x, y)
    be = resolve_backend(device, "float64")
    if kernel == "linear":
        a = linear_state(x, be, unbiased, "x")
        b = linear_state(y, be, unbiased, "y")
        return linear_cross(a, b, unbiased) / float(np.sqrt(a.self_term * b.self_term))
    if kernel == "rbf":
        sig = [sigma or rbf_sigma(x), sigma or rbf_sigma(y)]
        s, rs, _ = cross_sums([x, y], None, be, "rbf", sig, zero_diag=unbiased)
        c = np.array(
            [[centred_product(s[i, j], rs[i], rs[j], x.shape[0], unbiased) for j in range(2)]
             for i in range(2)]
        )
        if not c[0, 0] * c[1, 1] > 0:
            raise EmbeddingError("x or y: a kernel has no variance; CKA is undefined.")
        return float(c[0, 1] / np.sqrt(c[0, 0] * c[1, 1]))
    raise ValueError(f"kernel must be 'linear' or 'rbf', got {kernel!r}.")
