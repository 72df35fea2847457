"""Tests of the ANI-1x adapter (NeuroChem files bundled in torchani 2.2.4)."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("torchani")
from ase.build import molecule  # noqa: E402
from ase.units import Hartree  # noqa: E402

from matteralign.data.sample import Sample  # noqa: E402
from matteralign.errors import SampleError  # noqa: E402
from matteralign.models.registry import create_adapter  # noqa: E402
from matteralign.models.validate import validate_adapter  # noqa: E402


@pytest.fixture(scope="module")
def adapter():
    model = create_adapter("ani-1x")
    model.load("cpu", "float64")
    return model


def test_validate_adapter(adapter, molecules) -> None:
    report = validate_adapter(adapter, molecules(["H2O", "CH4", "C6H6"]))
    assert report.ok
    assert "permutation-invariance[hidden_3]" in report.passed


def test_energy_in_ev(adapter, molecules) -> None:
    out = adapter.embed([adapter.prepare(s) for s in molecules(["H2O"])], ["aev"], "mean")
    # torchani's own ANI-1x gives -76.3885 Ha for ase's water (models.md).
    np.testing.assert_allclose(out.energy[0] / Hartree, -76.3885, atol=2e-4)


def test_element_blocks(adapter, molecules) -> None:
    out = adapter.embed([adapter.prepare(s) for s in molecules(["H2O", "CH4"])],
                        adapter.layer_names, "sum", per_item=True)
    widths = {name: v.shape[1] for name, v in out.pooled.items()}
    assert widths == {"aev": 384, "hidden_1": 560, "hidden_2": 464, "hidden_3": 384}
    water = out.per_item["hidden_3"][0]  # atoms O, H, H
    # O atom fills only the O block (columns 288-383), H atoms only the H block (0-95).
    assert np.all(water[0, :288] == 0) and np.any(water[0, 288:] != 0)
    assert np.all(water[1:, 96:] == 0) and np.any(water[1:, :96] != 0)
    # No carbon or nitrogen in water: those blocks stay zero after pooling.
    assert np.all(out.pooled["hidden_3"][0, 96:288] == 0)


def test_parameter_count_matches_card(adapter) -> None:
    assert adapter.n_parameters == adapter.card.parameters


def test_uncovered_element_fails_naming_it(adapter) -> None:
    with pytest.raises(SampleError, match=r"element\(s\) S not covered by ani-1x"):
        adapter.prepare(Sample(id="h2s", atoms=molecule("SH2")))


def test_hidden_layers_match_member_nets_on_the_aev(adapter, molecules) -> None:
    """Captured activations equal member 0's element nets run by hand on each atom's AEV."""
    import torch

    water = adapter.prepare(molecules(["H2O"])[0]).copy()
    boxed = water.copy()
    boxed.center(vacuum=4.0)
    boxed.pbc = True
    batch = [water, boxed, adapter.prepare(molecules(["CH4"])[0])]
    out = adapter.embed(batch, adapter.layer_names, "mean", per_item=True)
    member = list(adapter._member.values())  # nets of H, C, N, O
    starts = {"hidden_1": [0, 160, 304, 432], "hidden_3": [0, 96, 192, 288]}
    for atoms, aev, hidden_1, hidden_3 in zip(
        batch, out.per_item["aev"], out.per_item["hidden_1"], out.per_item["hidden_3"],
        strict=True,
    ):
        for row, z in enumerate(atoms.numbers):
            index = {1: 0, 6: 1, 7: 2, 8: 3}[int(z)]
            net = member[index]
            x1 = net[1](net[0](torch.as_tensor(aev[row : row + 1])))
            x3 = net[5](net[4](net[3](net[2](x1))))
            s1, s3 = starts["hidden_1"][index], starts["hidden_3"][index]
            np.testing.assert_allclose(hidden_1[row, s1 : s1 + x1.shape[1]], x1[0], rtol=1e-12)
            np.testing.assert_allclose(hidden_3[row, s3 : s3 + 96], x3[0].detach(), rtol=1e-12)
            assert np.count_nonzero(hidden_3[row]) == np.count_nonzero(x3[0].detach().numpy())


def test_card_budget_embeds_600_atoms_in_one_pass_as_torchani_evaluates_each_molecule(
    adapter, tmp_path, monkeypatch
) -> None:
    """The card's 2048-atom default batch puts 80 molecules (624 atoms, more than the runner's
    512-atom default) through one padded pass; each molecule's energy, mean AEV and mean
    ``hidden_3`` equal torchani's own evaluation of that molecule alone (every 8th molecule,
    all five kinds): a fresh AEVComputer, each of the 8 ensemble members run separately and
    averaged, plus the self energies."""
    from pathlib import Path

    import torch
    import torchani
    from ase.build import molecule as g2

    from matteralign.data.sample import Dataset, DatasetCard
    from matteralign.run.embed import default_batch_budget, embed_dataset
    from matteralign.store.embedding_store import EmbeddingStore

    rng = np.random.default_rng(0)
    samples = []
    for i in range(80):
        atoms = g2(["C6H6", "CH3CH2OH", "CH3NO2", "H2O", "CH3COOH"][i % 5])
        atoms.positions += rng.normal(scale=0.05, size=atoms.positions.shape)
        samples.append(Sample(id=f"mol-{i:02d}", atoms=atoms))
    card = DatasetCard(name="g2-rattled", version="1", domain="molecules", description="test",
                       provenance="ase g2, rattled", license="CC0")
    calls = []
    embed = adapter.embed
    monkeypatch.setattr(adapter, "embed", lambda batch, *args, **kw: calls.append(len(batch))
                        or embed(batch, *args, **kw))
    store = EmbeddingStore(tmp_path)
    embed_dataset(adapter, Dataset(card, samples), store, dtype="float64")
    assert default_batch_budget(adapter.card) == 2048 and calls == [80]
    stored = {layer: store.load("g2-rattled", "ani-1x", layer) for layer in ("aev", "hidden_3")}

    root = Path(torchani.__file__).parent / "resources" / "ani-1x_8x"
    constants = torchani.neurochem.Constants(str(root / "rHCNO-5.2R_16-3.5A_a4-8.params"))
    aev_computer = torchani.AEVComputer(**constants).double()
    members = list(adapter._ensemble)  # torchani's 8 ANIModels, each run on its own below
    sae = torchani.neurochem.load_sae(str(root / "sae_linfit.dat"))
    index = {1: 0, 6: 1, 7: 2, 8: 3}
    with torch.no_grad():
        for row, sample in list(enumerate(samples))[::8]:
            species = torch.as_tensor([[index[int(z)] for z in sample.atoms.numbers]])
            positions = torch.as_tensor(sample.atoms.positions)[None]
            _, aev = aev_computer((species, positions))
            member_energies = [member((species, aev)).energies for member in members]
            energy = sae((species, torch.stack(member_energies).mean(0))).energies
            np.testing.assert_allclose(stored["aev"].energy[row] / Hartree, float(energy),
                                       rtol=1e-12)
            np.testing.assert_allclose(stored["aev"].values[row], aev[0].mean(0), atol=1e-12)
            hidden_3 = torch.zeros((len(sample.atoms), 384), dtype=torch.float64)
            for s, symbol in enumerate(constants.species):  # member 0's net of each element
                rows = species[0] == s
                hidden_3[rows, 96 * s : 96 * s + 96] = members[0][symbol][:6](aev[0, rows])
            np.testing.assert_allclose(stored["hidden_3"].values[row], hidden_3.mean(0),
                                       atol=1e-12)
