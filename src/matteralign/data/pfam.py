"""The 40 Pfam domain structures of Ollikainen & Kortemme (2013): one PDB chain per Pfam family.

Read from ``<data_root>/proteins/pfam_domains/PF<family>_<PDB id>_<chain>.pdb``.
"""

from __future__ import annotations

from pathlib import Path

from matteralign.data.protein_structure import read_chains
from matteralign.data.sample import Dataset, DatasetCard, Sample
from matteralign.data.sources import read_source_line, require_data_files, resolve_data_root
from matteralign.errors import DatasetError

NAME = "pfam-domains"
FOLDER = "proteins/pfam_domains"
N_DOMAINS = 40


def build(n: int | None = None, seed: int = 0, data_root: Path | None = None) -> Dataset:
    """The Pfam domains with sequence and N/CA/C/O backbone (Å), ids ``<PFxxxxx>_<PDB>_<chain>``.

    Raises
    ------
    DatasetError
        If the data root or the domain files are missing, or a file does not parse.
    """
    root = resolve_data_root(data_root)
    folder = root / FOLDER if root is not None else None
    files = sorted(folder.glob("PF*.pdb")) if folder is not None and folder.is_dir() else []
    if len(files) < N_DOMAINS:
        # names the folder and what is expected there
        require_data_files(data_root, [f"{FOLDER}/PF00013_1WVN_A.pdb"], NAME)
        raise DatasetError(
            f"dataset {NAME!r}: found {len(files)} of {N_DOMAINS} PF*.pdb files in {folder}; "
            "copy the Pfam domain files there (see docs/datasets.md)"
        )
    samples = []
    for path in files:
        family, pdb_id, chain = path.stem.split("_")
        _, protein = read_chains(path, chain=chain)[0]
        samples.append(Sample(id=path.stem, sequence=protein.sequence, protein=protein))
    card = DatasetCard(
        name=NAME,
        version="covariation-e806290",
        domain="proteins",
        description="40 single-chain Pfam domains (50-150 residues, diverse folds), first altloc, "
        "heavy-atom backbone",
        provenance=read_source_line(folder) or "Kortemme-Lab/covariation@e806290:input/domains/",
        license="MIT (covariation repository); PDB data CC0",
        citation="Ollikainen & Kortemme, PLoS Comput. Biol. 9, e1003313 (2013)",
    )
    return Dataset(card, samples).subset(n, seed=seed)
