"""The engine on a CUDA GPU equals the engine on the CPU in float64 (skipped without a GPU)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from matteralign.metrics import list_metrics, pairwise

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")

# Relative tolerance of the GPU's default precision (float32/TF32 tiles, float64 sums) against
# CPU float64; neighbour-based metrics re-rank candidates exactly, so they must agree exactly
# unless a near-tie flips.
DEFAULT_PRECISION_RTOL = {"dcor": 1e-5, "dcor-u": 1e-5, "cka-rbf": 1e-5, "cka-rbf-unbiased": 1e-5,
                          "ii-k1": 1e-3, "rsa": 1e-5, "idcor": 1e-3}


def _scores(result) -> np.ndarray:
    """The M×M matrix, or the per-model values of a per-model measure (intrinsic dimension)."""
    table = result.matrix if result.matrix is not None else result.per_model
    return np.asarray(table.to_numpy(), dtype=float)


def _models(n: int = 600, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    latent = rng.normal(size=(n, 6))
    models = {}
    for index, width in enumerate((16, 48, 128)):
        mixing = rng.normal(size=(6, width))
        models[f"m{index}"] = np.tanh(latent @ mixing) + 0.3 * rng.normal(size=(n, width))
    return models


@pytest.mark.parametrize("metric", list_metrics())
def test_gpu_float64_equals_cpu(metric):
    models = _models()
    cpu = pairwise(models, metric, preprocessing=["l2"], device="cpu", progress=False)
    gpu = pairwise(models, metric, preprocessing=["l2"], device="cuda", precision="float64",
                   progress=False)
    np.testing.assert_allclose(_scores(gpu), _scores(cpu), rtol=1e-9,
                               atol=1e-12, equal_nan=True)


@pytest.mark.parametrize("metric", list_metrics())
def test_gpu_default_precision_is_close_to_cpu(metric):
    models = _models(seed=1)
    cpu = pairwise(models, metric, preprocessing=["l2"], device="cpu", progress=False)
    gpu = pairwise(models, metric, preprocessing=["l2"], device="cuda", progress=False)
    rtol = DEFAULT_PRECISION_RTOL.get(metric, 1e-7)
    np.testing.assert_allclose(_scores(gpu), _scores(cpu), rtol=rtol,
                               atol=rtol * 1e-2, equal_nan=True)


def test_gpu_checks_float32_inputs_on_the_device():
    from matteralign.metrics import EmbeddingError

    models = {name: x.astype(np.float32) for name, x in _models().items()}
    cpu = pairwise({k: v.astype(np.float64) for k, v in models.items()}, "cknna-k10")
    gpu = pairwise(models, "cknna-k10", device="cuda")
    np.testing.assert_allclose(_scores(gpu), _scores(cpu), rtol=1e-12)
    models["m1"][7, 3] = np.nan
    with pytest.raises(EmbeddingError, match=r"m1.*first: row 7"):
        pairwise(models, "cknna-k10", device="cuda")
    models["m1"][:] = 1.0
    with pytest.raises(EmbeddingError, match="m1: all 600 rows are identical"):
        pairwise(models, "mknn-k10", device="cuda")


def test_gpu_approximate_neighbours_report_recall():
    models = _models(2000)
    exact = pairwise(models, "cknna-k10", device="cuda")
    approx = pairwise(models, "cknna-k10", device="cuda", neighbours="approximate")
    assert approx.rows["recall_a"].between(0.98, 1.0).all()
    np.testing.assert_allclose(_scores(approx), _scores(exact), atol=0.02)
