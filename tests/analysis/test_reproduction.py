"""The reproduction claims: computed from compact tables, checked against hand-computed values, and
the stored tables of docs/reproduction/ give exactly the numbers of docs/reproduction.md."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from typer.testing import CliRunner

from matteralign.analysis.reproduction import (
    ReproductionTables,
    claim_cknna_dcor,
    claim_convergence,
    claim_modalities,
    pair_kind,
)
from matteralign.cli.main import app
from matteralign.report.reproduction import (
    generated_block,
    ladder_markdown,
    markers,
    replace_generated_block,
)

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "reproduction.md"
TABLES = ROOT / "docs" / "reproduction"
LADDER = ROOT / "benchmarks" / "training_ladder_cpu2.json"

MODELS = pd.DataFrame({
    "model": ["ani-1x", "so3lr", "rxnfp-bert-pretrained", "minilm-l6-v2-smiles",
              "random-gaussian", "composition"],
    "family": ["mlip", "mlip", "string", "text", "baseline", "baseline"],
    "architecture_family": ["ani", "so3lr", "bert", "minilm", "baseline", "baseline"],
    "input": ["atoms", "atoms", "smiles", "smiles", "atoms", "atoms"],
    "domain": ["molecules"] * 6,
    "predicts_energy": [True, True, False, False, False, False],
})


def _tables(pairs: pd.DataFrame, energy: pd.DataFrame | None = None) -> ReproductionTables:
    empty = pd.DataFrame()
    return ReproductionTables(models=MODELS, pairs=pairs,
                              energy=energy if energy is not None else empty,
                              composition=pd.DataFrame(columns=["dataset", "model_a", "model_b",
                                                                "metric", "controlled",
                                                                "controlled_calibrated",
                                                                "controlled_p_fdr"]),
                              in_out=empty, dimensions=empty)


def _pairs(values: dict[tuple[str, str], float], metric: str = "cknna-k25",
           dataset: str = "qm9") -> pd.DataFrame:
    """Pair rows as the tables hold them: a directed measure (CKNNA) in both orders."""
    orders = [(a, b) for a, b in values] + ([(b, a) for a, b in values]
                                            if metric == "cknna-k25" else [])
    return pd.DataFrame([{"dataset": dataset, "metric": metric, "model_a": a, "model_b": b,
                          "n": 100, "raw": values.get((a, b), values.get((b, a))),
                          "calibrated": values.get((a, b), values.get((b, a))) / 2,
                          "p_value": 0.01,
                          "p_fdr": 0.01 if values.get((a, b), values.get((b, a))) > 0.3 else 0.2}
                         for a, b in orders])


def test_pair_kind_reads_modality_and_baselines_from_the_model_table():
    assert pair_kind("ani-1x", "so3lr", MODELS) == "within"
    assert pair_kind("rxnfp-bert-pretrained", "minilm-l6-v2-smiles", MODELS) == "within"
    assert pair_kind("ani-1x", "minilm-l6-v2-smiles", MODELS) == "cross"
    assert pair_kind("ani-1x", "random-gaussian", MODELS) == "random"
    assert pair_kind("composition", "random-gaussian", MODELS) == "random"
    assert pair_kind("composition", "so3lr", MODELS) == "baseline"


def test_modalities_take_medians_per_kind_and_order_them():
    values = {("ani-1x", "so3lr"): 0.8, ("rxnfp-bert-pretrained", "minilm-l6-v2-smiles"): 0.6,
              ("ani-1x", "rxnfp-bert-pretrained"): 0.3, ("so3lr", "minilm-l6-v2-smiles"): 0.2,
              ("ani-1x", "minilm-l6-v2-smiles"): 0.4, ("so3lr", "rxnfp-bert-pretrained"): 0.1,
              ("ani-1x", "random-gaussian"): 0.05, ("so3lr", "random-gaussian"): 0.01}
    row = claim_modalities(_tables(_pairs(values))).iloc[0]
    assert row.within_pairs == 2 and row.cross_pairs == 4 and row.random_pairs == 2
    assert row.within_raw == pytest.approx(np.median([0.8, 0.6]))
    assert row.cross_raw == pytest.approx(np.median([0.3, 0.2, 0.4, 0.1]))
    assert row.random_calibrated == pytest.approx(np.median([0.05, 0.01]) / 2)
    assert row.share_fdr_05 == pytest.approx(3 / 8)  # p_fdr < 0.05 where raw > 0.3: 0.8, 0.6, 0.4
    assert row.agrees
    values[("ani-1x", "random-gaussian")] = 0.9
    values[("so3lr", "random-gaussian")] = 0.9
    assert not claim_modalities(_tables(_pairs(values))).iloc[0].agrees


def test_convergence_rho_is_spearman_of_mae_against_alignment_to_the_lowest_mae_model():
    models = ["m0", "m1", "m2", "m3", "m4"]
    mae = [0.01, 0.02, 0.05, 0.03, 0.10]
    to_best = {"m1": 0.9, "m2": 0.5, "m3": 0.7, "m4": 0.6}
    values = {("m0", m): v for m, v in to_best.items()}
    values.update({("m1", "m2"): 0.2, ("m1", "m3"): 0.2, ("m1", "m4"): 0.2,
                   ("m2", "m3"): 0.2, ("m2", "m4"): 0.2, ("m3", "m4"): 0.2})
    energy = pd.DataFrame({"dataset": "qm9", "model": models, "mae": mae})
    table = claim_convergence(_tables(_pairs(values), energy), n_bootstrap=200)
    row = table[table.scores == "raw"].iloc[0]
    assert row.reference == "m0" and row.n_models == 5
    expected = stats.spearmanr(mae[1:], [to_best[m] for m in models[1:]])[0]
    assert row.rho == pytest.approx(expected)
    assert table[table.scores == "calibrated"].iloc[0].rho == pytest.approx(expected)


def test_cknna_dcor_rho_is_spearman_over_the_shared_pairs():
    rng = np.random.default_rng(0)
    names = ["ani-1x", "so3lr", "rxnfp-bert-pretrained", "minilm-l6-v2-smiles",
             "random-gaussian"]
    keys = [(a, b) for i, a in enumerate(names) for b in names[i + 1:]]
    x = rng.random(len(keys))
    y = x + 0.3 * rng.random(len(keys))
    pairs = pd.concat([_pairs(dict(zip(keys, x, strict=True))),
                       _pairs(dict(zip(keys, y, strict=True)), metric="dcor-u")])
    row = claim_cknna_dcor(_tables(pairs), n_bootstrap=200).iloc[0]
    assert row.pairs == len(keys) and row.n_models == len(names)
    assert row.rho == pytest.approx(stats.spearmanr(x, y)[0])
    assert row.ci_low <= row.rho <= row.ci_high


def test_tables_round_trip_through_parquet(tmp_path):
    tables = _tables(_pairs({("ani-1x", "so3lr"): 0.5}))
    tables.write(tmp_path)
    back = ReproductionTables.read(tmp_path)
    pd.testing.assert_frame_equal(back.pairs, tables.pairs)
    pd.testing.assert_frame_equal(back.models, tables.models)


def test_generated_block_is_replaced_between_its_markers():
    begin, end = markers("claims")
    text = f"intro\n\n{begin}\nold\n{end}\n\noutro\n"
    new = replace_generated_block(text, "new numbers\n")
    assert generated_block(new) == "new numbers\n"
    assert new.startswith("intro\n") and new.endswith("\noutro\n")
    with pytest.raises(ValueError, match="no generated block"):
        generated_block("no markers")


def test_the_documents_numbers_are_what_the_stored_tables_give():
    """`matteralign reproduce --tables docs/reproduction` recomputes every claim from the stored
    result tables of the reproduction run; its output must be the document's generated block."""
    result = CliRunner().invoke(app, ["reproduce", "--tables", str(TABLES)])
    assert result.exit_code == 0, result.output
    assert result.output.strip("\n") + "\n" == generated_block(DOC.read_text())


def test_the_documents_ladder_is_the_stored_ladder_result():
    """The training ladder's block of the document renders benchmarks/training_ladder_cpu2.json."""
    result = json.loads(LADDER.read_text())
    assert generated_block(DOC.read_text(), "ladder") == ladder_markdown(result)
    assert len(result["runs"]) >= 10 and len({r["fraction"] for r in result["runs"]}) >= 5


def test_the_stored_tables_are_small():
    total = sum(p.stat().st_size for p in TABLES.iterdir())
    assert total < 2 * 1024**2
