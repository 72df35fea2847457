"""RCSB PDB entries by id: download mmCIF files into a folder (needs internet), read their chains.

Files already in the folder are read without network, so a fetched set rebuilds offline.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from matteralign.data.protein_structure import read_chains
from matteralign.data.sample import Dataset, DatasetCard, Sample
from matteralign.data.sources import package_version
from matteralign.errors import DatasetError


def fetch(pdb_ids: Sequence[str], folder: Path | str) -> list[Path]:
    """mmCIF files of ``pdb_ids`` in ``folder``, downloading the missing ones from RCSB.

    Raises
    ------
    DatasetError
        If a download fails (no network, unknown id); the message names the id and the folder.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for pdb_id in pdb_ids:
        path = folder / f"{pdb_id.lower()}.cif"
        if not path.is_file():
            try:
                from biotite.database import rcsb

                rcsb.fetch(pdb_id, "cif", str(folder))
            except Exception as error:  # noqa: BLE001 - requests/biotite raise many types
                raise DatasetError(
                    f"cannot download PDB entry {pdb_id!r} into {folder} ({type(error).__name__}: "
                    f"{error}); check the id and the network, or put {path.name} there yourself"
                ) from None
        paths.append(path)
    return paths


def load(
    pdb_ids: Sequence[str] | None = None,
    folder: Path | str = ".",
    name: str = "rcsb",
    n: int | None = None,
    seed: int = 0,
) -> Dataset:
    """Protein chains of PDB entries (first model, every protein chain of >= 5 residues).

    Parameters
    ----------
    pdb_ids : sequence of str, optional
        Entries to fetch (missing files are downloaded into ``folder``); None reads every
        ``*.cif``, ``*.pdb``, ``*.ent`` (optionally ``.gz``) file already in ``folder``.
    folder : Path
        Download and cache folder (nothing is written elsewhere).
    name, n, seed : dataset name and seeded subset.

    Returns
    -------
    Dataset
        Samples ``<file stem>_<chain>`` with sequence and N/CA/C/O backbone (Å).
    """
    folder = Path(folder)
    if pdb_ids is not None:
        paths = fetch(pdb_ids, folder)
    else:
        patterns = ("*.cif", "*.cif.gz", "*.pdb", "*.pdb.gz", "*.ent", "*.ent.gz")
        paths = sorted({p for pattern in patterns for p in folder.glob(pattern)})
        if not paths:
            raise DatasetError(f"no PDB/mmCIF files in {folder}; give pdb_ids to download some")
    samples = []
    for path in paths:
        stem = path.name.split(".")[0]
        for chain_id, protein in read_chains(path):
            samples.append(
                Sample(id=f"{stem}_{chain_id}", sequence=protein.sequence, protein=protein)
            )
    card = DatasetCard(
        name=name,
        version=f"{len(paths)}-entries",
        domain="proteins",
        description=f"Protein chains of {len(paths)} PDB entries read with biotite",
        provenance=f"RCSB PDB mmCIF files in {folder} (biotite=={package_version('biotite')})",
        license="PDB data CC0-1.0",
    )
    return Dataset(card, samples).subset(n, seed=seed)
