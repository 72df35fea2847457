"""SMILES canonicalisation with RDKit and SMILES → SELFIES conversion for string models.

Every adapter that reads SMILES passes its input through :func:`canonical_smiles` first, so the
same molecule always reaches a model as the same string, whatever way the dataset wrote it.
"""

from __future__ import annotations

from matteralign.errors import SampleError

REACTION_ARROW = ">"


def _canonical_molecule(smiles: str, sample_id: str) -> str:
    from rdkit import Chem, rdBase

    with rdBase.BlockLogs():  # RDKit would print its own parse error to stderr
        mol = Chem.MolFromSmiles(smiles)
    if mol is None or mol.GetNumAtoms() == 0:
        raise SampleError(sample_id, f"invalid SMILES {smiles!r}: RDKit cannot parse it")
    return Chem.MolToSmiles(mol, canonical=True, isomericSmiles=True)


def canonical_smiles(smiles: str | None, sample_id: str, allow_reaction: bool = False) -> str:
    """RDKit canonical isomeric SMILES of one molecule (or of each part of a reaction).

    Parameters
    ----------
    smiles : str
        SMILES as a dataset wrote it; several fragments (``"[Na+].[Cl-]"``) are one molecule.
    sample_id : str
        Id of the sample, named in the error.
    allow_reaction : bool
        Accept reaction SMILES ``reactants>agents>products``: each part is canonicalised on its
        own (agents may be empty). Without it, a ``>`` makes the SMILES invalid.

    Returns
    -------
    str
        The canonical SMILES, e.g. ``"CCO"`` for ``"OCC"``.

    Raises
    ------
    SampleError
        If the SMILES is empty or RDKit cannot parse it; the message names the SMILES.
    """
    if not smiles or not smiles.strip():
        raise SampleError(sample_id, "empty SMILES")
    smiles = smiles.strip()
    if REACTION_ARROW not in smiles:
        return _canonical_molecule(smiles, sample_id)
    if not allow_reaction:
        raise SampleError(
            sample_id, f"SMILES {smiles!r} is a reaction; this model reads single molecules"
        )
    parts = smiles.split(REACTION_ARROW)
    if len(parts) != 3 or not parts[0] or not parts[2]:
        raise SampleError(
            sample_id, f"invalid reaction SMILES {smiles!r}: expected reactants>agents>products"
        )
    return REACTION_ARROW.join(
        _canonical_molecule(part, sample_id) if part else "" for part in parts
    )


def to_selfies(smiles: str, sample_id: str) -> str:
    """SELFIES string of a SMILES, after RDKit canonicalisation.

    Parameters
    ----------
    smiles : str
        One molecule.
    sample_id : str
        Id of the sample, named in the error.

    Returns
    -------
    str
        E.g. ``"[C][C][O]"`` for ``"OCC"``.

    Raises
    ------
    SampleError
        If the SMILES is invalid or ``selfies`` cannot encode it (unsupported valence, ...).
    """
    import selfies

    canonical = canonical_smiles(smiles, sample_id)
    try:
        return selfies.encoder(canonical, strict=True)
    except selfies.EncoderError as error:
        raise SampleError(
            sample_id, f"SMILES {canonical!r} cannot be written as SELFIES: {error}"
        ) from None


def selfies_tokens(selfies_string: str) -> list[str]:
    """The bracketed symbols of a SELFIES string, e.g. ``["[C]", "[C]", "[O]"]``."""
    import selfies

    return list(selfies.split_selfies(selfies_string))
