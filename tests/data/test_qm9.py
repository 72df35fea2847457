"""QM9 from qm9pack: parsing, units (Hartree -> eV), canonical SMILES and seeded subsets."""

from __future__ import annotations

import numpy as np
import pytest

from matteralign.data import qm9
from matteralign.data.sources import package_file


@pytest.fixture(scope="module")
def subset():
    return qm9.build(n=40, seed=3)


def test_methane_energy_in_ev():
    path = package_file("qm9pack", qm9.PARTS[0], "qm9")
    starts = qm9._line_starts(path)
    header_line = path.open(encoding="utf-8").readline()
    import csv

    header = next(csv.reader([header_line]))
    row = qm9._read_rows(path, np.array([0]), starts)[0]
    methane = qm9._sample(row, header, "row 2")
    assert methane.id == "qm9-000001"
    assert methane.smiles == "C"
    assert methane.atoms.get_chemical_formula() == "CH4"
    assert not methane.atoms.pbc.any()
    # QM9 U0 of methane is -40.47893 Hartree
    assert methane.labels["energy"] == pytest.approx(-40.47893 * 27.211386245988, abs=1e-6)
    assert methane.labels["energy"] == pytest.approx(-1101.4878, abs=1e-3)
    assert methane.labels["gap"] == pytest.approx(0.5048 * 27.211386245988)


def test_subset_parses_only_chosen_rows(subset):
    assert len(subset) == 40
    assert subset.card.version.endswith("+n40s3")
    assert subset.modalities == {"atoms", "smiles"}
    for sample in subset:
        assert set(sample.atoms.get_chemical_symbols()) <= {"H", "C", "N", "O", "F"}
        assert 3 <= len(sample.atoms) <= 29
        # U0 per heavy atom is between about -1100 and -2700 eV (C ... F with hydrogens)
        assert -20_000 < sample.labels["energy"] < -1000
        assert sample.labels["U"] > sample.labels["energy"]  # U(298 K) above U0


def test_smiles_are_rdkit_canonical(subset):
    from rdkit import Chem

    for sample in subset:
        assert Chem.MolToSmiles(Chem.MolFromSmiles(sample.smiles)) == sample.smiles


def test_subsets_are_deterministic(subset):
    again = qm9.build(n=40, seed=3)
    assert again.fingerprint() == subset.fingerprint()
    assert qm9.build(n=40, seed=4).ids != subset.ids


@pytest.mark.parametrize(("part", "row", "index"),
                         [(0, 3, 4), (0, 22, 23), (0, 23, 24), (0, 476, 486), (1, 14629, 59818)])
def test_rows_writing_zero_as_a_bare_point_parse(part, row, index):
    """Five qm9pack rows write coordinates like ``0.`` (not JSON); they used to crash every
    subset holding one with JSONDecodeError."""
    import csv

    path = package_file("qm9pack", qm9.PARTS[part], "qm9")
    header = next(csv.reader([path.open(encoding="utf-8").readline()]))
    [raw] = qm9._read_rows(path, np.array([row]), qm9._line_starts(path))
    assert "0.," in raw[header.index("XYZ_Ang")]
    sample = qm9._sample(raw, header, f"row {row + 2}")
    assert sample.id == f"qm9-{index:06d}"
    assert np.isfinite(sample.atoms.positions).all()
    assert (sample.atoms.positions == 0).any()


@pytest.mark.slow
def test_datasets_show_qm9_builds_every_molecule():
    from typer.testing import CliRunner

    from matteralign.cli.main import app

    result = CliRunner().invoke(app, ["datasets", "show", "qm9"])
    assert result.exit_code == 0, result.output
    assert "samples: 130831" in result.output
