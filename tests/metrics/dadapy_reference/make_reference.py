"""Regenerate ``reference.npz``: DADApy's information imbalance (full N) and TwoNN on seeded inputs.

DADApy pins numpy < 2, so it cannot live in the project environment. Run this in a throwaway venv:

    python3 -m venv /tmp/dadapy-venv && /tmp/dadapy-venv/bin/pip install dadapy
    /tmp/dadapy-venv/bin/python tests/metrics/dadapy_reference/make_reference.py

The inputs are stored in the npz beside the outputs (about 70 kB), so the test in the normal
suite (``test_dadapy_reference.py``) does not depend on numpy's random streams across versions.

Conventions (checked in DADApy 0.3.4's source):

* ``MetricComparisons.return_information_imbalace(y, k, subset_size=N)`` with ``maxk = N - 1``:
  one subset holding all N points, every rank known (no random ranks beyond ``maxk``);
  Delta = mean(rank) / (N / 2), rank = position in the argsort of distances with self at 0, so
  rank 1 = nearest. This is exactly our 2 / (N^2 k) * sum of ranks; no conversion is needed. On
  continuous data there are no ties, so DADApy's position-in-argsort equals our
  1 + #{strictly closer}.
* ``Data.compute_id_2NN(mu_fraction=0.9)`` ("base" algorithm): least-squares slope through the
  origin of -ln(1 - i/N) on the sorted ln mu, keeping the smallest int(0.9 N); our
  ``discard = 0.1``. DADApy fits by ``scipy.optimize.curve_fit`` (iterative), we in closed form.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np

HERE = Path(__file__).parent


def inputs() -> dict[str, np.ndarray]:
    """Seeded inputs: a related pair (x, y) of 300 samples and a 3-d manifold in 12-d."""
    rng = np.random.default_rng(2024)
    z = rng.normal(size=(300, 4))
    x = z @ rng.normal(size=(4, 12)) + 0.1 * rng.normal(size=(300, 12))
    y = np.tanh(z @ rng.normal(size=(4, 9))) + 0.3 * rng.normal(size=(300, 9))
    u = rng.uniform(size=(400, 3))
    manifold = np.hstack([u, np.sin(u), u**2]) @ rng.normal(size=(9, 12))
    return {"x": x, "y": y, "manifold": manifold}


def main() -> None:
    import dadapy

    data = inputs()
    x, y = data["x"], data["y"]
    n = x.shape[0]
    out = dict(data)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "subset size greater than the dataset size"
        for k in (1, 3):
            mc = dadapy.MetricComparisons(coordinates=x, maxk=n - 1)
            (xy, _), (yx, _) = mc.return_information_imbalace(y, k=k, subset_size=n)
            out[f"ii_xy_k{k}"] = np.float64(xy)
            out[f"ii_yx_k{k}"] = np.float64(yx)
    for name in ("manifold", "y"):
        d = dadapy.Data(coordinates=data[name], maxk=10)
        out[f"twonn_{name}"] = np.float64(d.compute_id_2NN(mu_fraction=0.9)[0])
    meta = {"dadapy": getattr(dadapy, "__version__", None) or _dist_version("dadapy"),
            "numpy": np.__version__, "script": "tests/metrics/dadapy_reference/make_reference.py"}
    out["meta"] = np.array(json.dumps(meta))
    np.savez(HERE / "reference.npz", **out)
    values = {k: float(v) for k, v in out.items() if v.ndim == 0 and k != "meta"}
    print(json.dumps(values, indent=1))
    print(meta)


def _dist_version(name: str) -> str:
    from importlib.metadata import version

    return version(name)


if __name__ == "__main__":
    main()
