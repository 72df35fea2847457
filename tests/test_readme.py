"""The README's study examples are valid configurations that do what the text says."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from matteralign.config import StudyConfig

README = Path(__file__).parents[1] / "README.md"


def _yaml_after(heading: str) -> dict:
    text = README.read_text().split(heading, 1)[1]
    return yaml.safe_load(re.search(r"```yaml\n(.*?)```", text, re.S).group(1))


def test_atom_level_example_validates_and_samples_atoms_per_structure():
    from matteralign.data.atom_sample import sample_atoms
    from matteralign.data.registry import load_dataset
    from matteralign.run.study import validate_study

    config = StudyConfig.model_validate(_yaml_after("### Atom level"))
    validate_study(config)  # datasets, models and metrics exist
    assert config.level == "atoms"
    assert config.stored_dataset("crystals-perturbed") == "crystals-perturbed@atoms"
    sampling = config.atom_sampling()
    assert (sampling.per_structure, sampling.per_stratum, sampling.seed) == (8, 500, 0)
    data = load_dataset("crystals-perturbed", n=20, seed=0)
    plan = sample_atoms(data.samples, sampling)
    for sample in data.samples:
        chosen = plan[sample.id]
        assert len(chosen) == min(8, len(sample.atoms))
        elements = set(sample.atoms.get_chemical_symbols())
        if len(sample.atoms) >= 8:  # spread over the structure's elements
            assert {sample.atoms[int(i)].symbol for i in chosen} == elements or len(elements) > 8
