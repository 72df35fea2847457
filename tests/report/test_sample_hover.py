"""The map's hover says what each sample is: formula, SMILES or sequence, read from the store."""

from ase.build import molecule

from matteralign.data.sample import Sample
from matteralign.report.build import _sample_what
from matteralign.store.embedding_store import EmbeddingStore


def test_the_sample_table_keeps_smiles_and_sequence(tmp_path):
    store = EmbeddingStore(tmp_path / "store")
    store.write_samples("d", [Sample("water", atoms=molecule("H2O")),
                              Sample("ethanol", smiles="CCO"),
                              Sample("peptide", sequence="MKT" * 20)])
    table = store.read_samples("d")
    assert table.loc["ethanol", "smiles"] == "CCO" and table.loc["water", "smiles"] == ""
    assert table.loc["peptide", "sequence"] == "MKT" * 20
    assert [_sample_what(z, s, q) for z, s, q in zip(
        table.atomic_numbers, table.smiles, table.sequence, strict=True)] == [
        "formula H2O", "SMILES CCO", f"sequence {('MKT' * 10)}… (60 residues)"]


def test_a_sample_with_atoms_is_its_hill_formula_and_one_with_nothing_is_blank():
    assert _sample_what([6, 1, 1, 1, 1], "", "") == "formula CH4"
    assert _sample_what([], "", "") == ""
