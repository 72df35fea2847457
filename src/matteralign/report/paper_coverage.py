"""Which of the paper's datasets, models and sample counts a study has, for the report header.

The paper ("Universally Converging Representations of Matter Across Scientific Foundation
Models") compares 59 models on QM9, OMat24, sAlex, OMol25 and RCSB PDB at N = 50,000 structures per
dataset. Registry ids below name the paper's models and datasets that matteralign can run.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

__all__ = ["PAPER_DATASETS", "PAPER_MODELS", "PAPER_N", "PAPER_N_MODELS", "coverage_lines"]

PAPER_N = 50_000
PAPER_N_MODELS = 59
# paper name -> registry dataset ids that are that dataset (or a sample of it)
PAPER_DATASETS: dict[str, tuple[str, ...]] = {
    "QM9": ("qm9",),
    "OMat24": ("omat24",),
    "sAlex": ("salex",),
    "OMol25": ("omol25",),
    "RCSB PDB": ("rcsb-pdb",),
}
# registry model id -> the paper's name of that model (Table 1), where the correspondence is
# certain (configs/paper.yaml runs these and more: models whose paper row is ambiguous, such as
# which ESM-2 size is "Large", count as not in the paper here)
PAPER_MODELS: dict[str, str] = {
    "mace-mp-0-large-equivariant": "MACE MP Large Equivariant",
    "mace-mp-0-large": "MACE MP Large",
    "mace-mp-0-medium-equivariant": "MACE MP Medium Equivariant",
    "mace-mp-0-medium": "MACE MP Medium",
    "mace-mp-0-small": "MACE MP Small",
    "mace-off23-large": "MACE OFF23 Large",
    "mace-off23-medium": "MACE OFF23 Medium",
    "mace-off23-small": "MACE OFF23 Small",
    "orb-v2": "Orb V2",
    "orb-v3-direct-inf-omat": "Orb V3 OMat Direct Inf",
    "orb-v3-direct-20-omat": "Orb V3 OMat Direct 20",
    "orb-v3-direct-inf-mpa": "Orb V3 MPA Direct Inf",
    "orb-v3-direct-20-mpa": "Orb V3 MPA Direct 20",
    "orb-v3-conservative-inf-omat": "Orb V3 OMat Conservative Inf",
    "orb-v3-conservative-20-omat": "Orb V3 OMat Conservative 20",
    "orb-v3-conservative-inf-mpa": "Orb V3 MPA Conservative Inf",
    "orb-v3-conservative-20-mpa": "Orb V3 MPA Conservative 20",
    "molformer-xl-both-10pct": "Molformer",
    "esmc-300m": "ESMC Small",
    "esmc-600m": "ESMC Medium",
    "esm3-sm-open-v1": "ESM3 Sequence",
    "prostt5-aa": "ProstT5 Sequence",
    "deepseek-r1-distill-llama-8b": "DeepSeek R1",
    "qwen3-30b-a3b-thinking-2507": "Qwen3 A3B",
    "gpt-oss-20b": "GPT OSS 20B",
    "proteinmpnn-v48-020": "ProteinMPNN",
    "random-gaussian": "Random Baseline",
}


def coverage_lines(datasets: Mapping[str, int], models: Sequence[str]) -> list[str]:
    """Plain-text lines saying what of the paper a study covers.

    Parameters
    ----------
    datasets : mapping of dataset id to N analysed
        The datasets that have scores in the study.
    models : sequence of str
        Model ids with embeddings in the study.

    Examples
    --------
    >>> coverage_lines({"qm9": 2000, "mlearn": 60}, ["mace-mp-0-small", "chgnet-0.3.0"])[0]
    "paper datasets present: QM9 (N = 2,000 of the paper's 50,000); absent: OMat24, sAlex, \
OMol25, RCSB PDB; not in the paper: mlearn"
    """
    present, absent = [], []
    for paper, ids in PAPER_DATASETS.items():
        here = [d for d in ids if d in datasets]
        if here:
            n = max(datasets[d] for d in here)
            present.append(f"{paper} (N = {n:,} of the paper's {PAPER_N:,})")
        else:
            absent.append(paper)
    ours = {d for ids in PAPER_DATASETS.values() for d in ids}
    extra = [d for d in datasets if d not in ours]
    line = f"paper datasets present: {', '.join(present) or 'none'}"
    line += f"; absent: {', '.join(absent)}" if absent else ""
    line += f"; not in the paper: {', '.join(extra)}" if extra else ""
    in_paper = [PAPER_MODELS[m] for m in models if m in PAPER_MODELS]
    others = [m for m in models if m not in PAPER_MODELS]
    model_line = (f"paper models present: {len(in_paper)} of {PAPER_N_MODELS}"
                  f"{' (' + ', '.join(in_paper) + ')' if in_paper else ''}; "
                  f"{PAPER_N_MODELS - len(in_paper)} absent; {len(others)} model(s) not in the "
                  "paper")
    n_values = sorted(datasets.values())
    n_line = (f"samples per dataset: N = {n_values[0]:,} to {n_values[-1]:,} (the paper: "
              f"{PAPER_N:,}); small N raises every score's chance level, see the summary's "
              "caveats" if n_values else "no dataset has scores")
    return [line, model_line, n_line]
