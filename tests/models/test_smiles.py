"""Tests of RDKit canonicalisation and the SELFIES helper used by the SMILES adapters."""

from __future__ import annotations

import pytest

pytest.importorskip("rdkit")
pytest.importorskip("selfies")
import selfies  # noqa: E402

from matteralign.errors import SampleError  # noqa: E402
from matteralign.models.smiles import (  # noqa: E402
    canonical_smiles,
    selfies_tokens,
    to_selfies,
)


@pytest.mark.parametrize(
    ("written", "canonical"),
    [
        ("OCC", "CCO"),
        ("C1=CC=CC=C1O", "Oc1ccccc1"),  # Kekulé form → aromatic
        ("c1ccccc1O", "Oc1ccccc1"),
        ("  CC(=O)Nc1ccc(O)cc1 ", "CC(=O)Nc1ccc(O)cc1"),
        ("[Cl-].[Na+]", "[Cl-].[Na+]"),
        ("N[C@@H](C)C(=O)O", "C[C@H](N)C(=O)O"),  # L-alanine, stereo kept
    ],
)
def test_canonical_smiles(written: str, canonical: str) -> None:
    assert canonical_smiles(written, "m") == canonical


def test_same_molecule_written_two_ways_gives_one_string() -> None:
    assert canonical_smiles("OC(=O)c1ccccc1", "a") == canonical_smiles("c1ccc(cc1)C(O)=O", "b")


@pytest.mark.parametrize("bad", ["C1CC", "not a smiles", "c1cccc1", ""])
def test_invalid_smiles_raise_sample_error_naming_sample(bad: str) -> None:
    with pytest.raises(SampleError) as caught:
        canonical_smiles(bad, "mol-7")
    assert caught.value.sample_id == "mol-7"
    assert "mol-7" in str(caught.value)
    if bad:
        assert repr(bad) in caught.value.reason


def test_reactions_only_when_allowed() -> None:
    reaction = "OC(C)=O.OCC>>CC(=O)OCC"
    with pytest.raises(SampleError, match="reaction"):
        canonical_smiles(reaction, "r")
    assert canonical_smiles(reaction, "r", allow_reaction=True) == "CC(=O)O.CCO>>CCOC(C)=O"
    assert canonical_smiles("CCO>O>CC=O", "r", allow_reaction=True) == "CCO>O>CC=O"
    with pytest.raises(SampleError, match="reactants>agents>products"):
        canonical_smiles(">>CCO", "r", allow_reaction=True)


def test_to_selfies_round_trips_to_the_canonical_smiles() -> None:
    assert to_selfies("OCC", "e") == "[C][C][O]"
    for smiles in ["c1ccccc1O", "CC(=O)Nc1ccc(O)cc1", "C[C@H](N)C(=O)O"]:
        decoded = selfies.decoder(to_selfies(smiles, "x"))
        assert canonical_smiles(decoded, "x") == canonical_smiles(smiles, "x")


def test_selfies_tokens() -> None:
    assert selfies_tokens("[C][=C][Branch1][C][O]") == ["[C]", "[=C]", "[Branch1]", "[C]", "[O]"]


def test_to_selfies_errors_name_the_sample() -> None:
    with pytest.raises(SampleError, match="'s1'.*invalid SMILES"):
        to_selfies("C1CC", "s1")
    # RDKit parses this trigonal-bipyramidal stereo atom; selfies cannot encode it.
    with pytest.raises(SampleError, match="cannot be written as SELFIES"):
        to_selfies("C[Fe@TB1](Cl)(Br)I", "s2")
