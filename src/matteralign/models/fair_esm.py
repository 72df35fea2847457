"""Meta's fair-esm models: ESM-IF1's structure encoder over protein backbones, and ESM-2 read
from fair-esm's own ``.pt`` checkpoints into the Hugging Face ``EsmModel``.

fair-esm installs the module ``esm``, as EvolutionaryScale's package does, so these models run in
the ``fair-esm`` model environment (``matteralign env create fair-esm``).
"""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from matteralign.data.sample import Sample
from matteralign.errors import AdapterError, ModelNotFoundError, SampleError
from matteralign.models.adapter import EmbeddingOutput, ModelAdapter
from matteralign.models.hidden_state_pooling import TOKEN_POOLINGS, pooled_hidden_output
from matteralign.models.weights import ESM_IF1


def import_inverse_folding() -> Any:
    """``esm.inverse_folding``, imported after registering what its imports need here.

    fair-esm's inverse folding imports ``torch_scatter`` (no wheels for this torch: the stand-in
    :mod:`matteralign.models._torch_scatter_shim` is registered) and biotite's
    ``filter_backbone``, which biotite 1.0 renamed ``filter_peptide_backbone`` (the old name is
    set to it; fair-esm calls it only when reading structure files, which matteralign does
    itself).
    """
    import biotite.structure

    from matteralign.models._torch_scatter_shim import install

    install()
    if not hasattr(biotite.structure, "filter_backbone"):
        biotite.structure.filter_backbone = biotite.structure.filter_peptide_backbone
    import esm.inverse_folding

    return esm.inverse_folding


def _fair_esm_error(model_id: str, what: str, error: Exception) -> ModelNotFoundError:
    """One line naming the model, what could not be read and why."""
    first = str(error).strip().splitlines()[0][:200] if str(error).strip() else ""
    return ModelNotFoundError(
        f"model {model_id}: fair-esm could not load {what} ({type(error).__name__}: {first}); "
        "offline, pass path=<fair-esm .pt checkpoint>"
    )


def esm2_as_transformers(
    path: str | Path, model_id: str, attention: str = "eager"
) -> tuple[Any, Any]:
    """An ESM-2 checkpoint in fair-esm's format as a Hugging Face ``EsmModel`` and tokenizer.

    The checkpoint is read by ``esm.pretrained.load_model_and_alphabet_local`` (so its file name
    must start with ``esm2`` and ``<stem>-contact-regression.pt`` must lie beside it, as fair-esm
    requires); its weights are copied, renamed, into an ``EsmModel`` (no pooler) whose
    ``EsmConfig`` has the checkpoint's sizes, rotary positions, token dropout and fair-esm's
    LayerNorm epsilon 1e-5; ``EsmTokenizer`` gets the checkpoint's alphabet in id order.

    Parameters
    ----------
    path : str or Path
        The ``.pt`` file.
    model_id : str
        Named in errors.
    attention : {"eager", "sdpa"}
        transformers' attention kernel.

    Returns
    -------
    (transformers.EsmModel in eval mode, transformers.EsmTokenizer)

    Raises
    ------
    ModelNotFoundError
        If fair-esm is not installed or cannot read the file.
    """
    try:
        import esm.pretrained
        from esm.model.esm2 import ESM2
    except ImportError as error:
        raise ModelNotFoundError(
            f"model {model_id}: reading the fair-esm checkpoint {path} needs fair-esm, which is "
            "in the fair-esm model environment (matteralign env create fair-esm; a card with "
            "environment: fair-esm runs there)"
        ) from error
    import transformers

    try:
        source, alphabet = esm.pretrained.load_model_and_alphabet_local(str(path))
    except Exception as error:  # fair-esm raises OSError, KeyError, RuntimeError, ...
        raise _fair_esm_error(model_id, str(path), error) from error
    if not isinstance(source, ESM2):
        raise AdapterError(f"model {model_id}: {path} holds a {type(source).__name__}, not ESM-2")
    config = transformers.EsmConfig(
        vocab_size=len(alphabet.all_toks), hidden_size=source.embed_dim,
        num_hidden_layers=source.num_layers, num_attention_heads=source.attention_heads,
        intermediate_size=source.layers[0].fc1.out_features, max_position_embeddings=1026,
        position_embedding_type="rotary", token_dropout=source.token_dropout,
        mask_token_id=alphabet.mask_idx, pad_token_id=alphabet.padding_idx,
        emb_layer_norm_before=False, layer_norm_eps=source.emb_layer_norm_after.eps,
        hidden_act="gelu", attn_implementation=attention,
    )
    model = transformers.EsmModel(config, add_pooling_layer=False)
    loaded = model.load_state_dict(_esm2_state_dict(source.state_dict()), strict=False)
    missing = [name for name in loaded.missing_keys if not name.endswith("inv_freq")]
    if missing or loaded.unexpected_keys:
        raise AdapterError(f"model {model_id}: {path} does not fill EsmModel (missing "
                           f"{missing[:3]}, unexpected {loaded.unexpected_keys[:3]})")
    with tempfile.TemporaryDirectory() as folder:  # EsmTokenizer reads its vocabulary file
        vocab = Path(folder) / "vocab.txt"
        vocab.write_text("\n".join(alphabet.all_toks) + "\n")
        tokenizer = transformers.EsmTokenizer(str(vocab))
    return model.eval(), tokenizer


#: fair-esm ESM-2 parameter names (after ``layers.<i>.``) → Hugging Face ``EsmLayer`` names.
_LAYER_NAMES = {
    "self_attn.q_proj": "attention.self.query",
    "self_attn.k_proj": "attention.self.key",
    "self_attn.v_proj": "attention.self.value",
    "self_attn.out_proj": "attention.output.dense",
    "self_attn_layer_norm": "attention.LayerNorm",
    "fc1": "intermediate.dense",
    "fc2": "output.dense",
    "final_layer_norm": "LayerNorm",
}


def _esm2_state_dict(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """fair-esm ``ESM2`` weights under ``EsmModel``'s names; the LM head and the rotary
    frequencies (a fixed buffer both compute alike) are left out.

    Raises
    ------
    AdapterError
        If a weight has no counterpart (another architecture than ESM-2).
    """
    renamed: dict[str, torch.Tensor] = {}
    for name, value in state.items():
        if name.startswith("lm_head.") or name.endswith("rot_emb.inv_freq"):
            continue
        if name == "embed_tokens.weight":
            renamed["embeddings.word_embeddings.weight"] = value
        elif name.startswith(("emb_layer_norm_after.", "contact_head.")):
            renamed[("encoder." if name.startswith("emb") else "") + name] = value
        else:
            _, index, rest = name.split(".", 2)
            module, parameter = rest.rsplit(".", 1)
            if module not in _LAYER_NAMES:
                raise AdapterError(f"fair-esm weight {name!r} has no EsmModel counterpart")
            renamed[f"encoder.layer.{index}.{_LAYER_NAMES[module]}.{parameter}"] = value
    return renamed


class EsmIF1Adapter(ModelAdapter):
    """ESM-IF1's GVP-Transformer encoder over a backbone's N, CA, C coordinates, every layer.

    Layers: ``"0"`` the encoder's input embedding (GVP-GNN output, dihedral and GVP input
    features, confidence and sinusoidal position embeddings, summed), ``"1"`` .. ``"L"`` the
    transformer encoder layers' outputs, ``"L"`` after the final LayerNorm (what fair-esm's
    ``esm.inverse_folding.util.get_encoder_output`` returns). The sequence decoder never runs.

    Options
    -------
    model : str
        fair-esm's checkpoint name (``esm.pretrained.<model>()``, downloaded into torch's hub
        cache on first use); default :data:`ESM_IF1`.
    path : str, optional
        A fair-esm ``.pt`` checkpoint file, read by ``load_model_and_alphabet_local``.

    Notes
    -----
    Input: the N, CA, C coordinates (Å) of the sample's backbone, centred on the mean CA
    position, batched by fair-esm's own ``CoordBatchConverter`` (confidence 1, a padding slot
    before and after the chain). fair-esm puts those slots at the origin (``nan_to_num`` of their
    infinite coordinates) and the chain ends' dihedral and orientation features read them, so
    its raw encoder output moves when the chain is translated; centring makes the embedding
    independent of where the chain lies in its file's frame. A residue missing one of the three
    atoms is given to the model as missing (NaN), as fair-esm reads such residues from files, and
    left out of the pooling. Poolings: ``mean`` over the resolved residues; ``cls`` / ``last``
    the first / last resolved residue. Invariant to rotations and translations of the backbone,
    except where a dihedral is exactly 0 or 180 degrees (idealised backbones): fair-esm takes
    the sign of a zero triple product there.
    """

    def __init__(self, card: Any, **options: Any) -> None:
        super().__init__(card, **options)
        self.model_: Any = None
        self.alphabet_: Any = None

    def load(self, device: str = "cpu", dtype: str = "float32") -> None:
        if self.model_ is not None and (device, dtype) == (self.device, self.dtype):
            return
        if dtype not in ("float32", "float64"):
            raise AdapterError(f"model {self.id}: dtype must be float32 or float64, not {dtype!r}")
        import_inverse_folding()
        import esm.pretrained

        if self.options.get("path"):
            path = self.weights_path()
            try:
                model, alphabet = esm.pretrained.load_model_and_alphabet_local(str(path))
            except Exception as error:  # fair-esm raises OSError, KeyError, RuntimeError, ...
                raise _fair_esm_error(self.id, str(path), error) from error
        else:
            name = str(self.options.get("model", ESM_IF1))
            if not name.startswith("esm_if") or not hasattr(esm.pretrained, name):
                raise AdapterError(f"model {self.id}: fair-esm has no inverse folding model "
                                   f"{name!r} (use {ESM_IF1!r})")
            try:
                model, alphabet = getattr(esm.pretrained, name)()
            except Exception as error:  # download, HTTP and unpickling errors vary
                raise _fair_esm_error(self.id, name, error) from error
        self._check_layer_count(len(model.encoder.layers))
        self.model_ = model.to(device=device, dtype=getattr(torch, dtype)).eval()
        self.alphabet_ = alphabet
        self.device, self.dtype = device, dtype

    def unload(self) -> None:
        self.model_ = None
        self.alphabet_ = None

    def prepare(self, sample: Sample) -> np.ndarray:
        """The (L, 3, 3) N, CA, C coordinates in Å of the sample's backbone (NaN if missing),
        centred on the mean CA position of the resolved residues."""
        if sample.protein is None:
            raise SampleError(sample.id, f"has no protein backbone, which {self.id} reads")
        coords = np.asarray(sample.protein.backbone[:, :3], dtype=np.float64)
        resolved = np.isfinite(coords).all(axis=(1, 2))
        if not resolved.any():
            raise SampleError(sample.id, "has no residue with all of N, CA and C resolved")
        return (coords - coords[resolved, 1].mean(axis=0)).astype(np.float32)

    def cost(self, item: np.ndarray) -> int:
        return len(item) + 2

    def embed(
        self,
        batch: Sequence[np.ndarray],
        layers: Sequence[str],
        pooling: str,
        per_item: bool = False,
    ) -> EmbeddingOutput:
        """Pooled encoder states of ``layers`` for a batch of (L_b, 3, 3) backbones.

        Returns
        -------
        EmbeddingOutput
            ``pooled[layer]`` (B, D) float32; ``per_item[layer][b]`` (n_b, D), one row per
            resolved residue.
        """
        self._check_loaded(self.model_)
        self._check_layers(layers)
        if pooling not in TOKEN_POOLINGS:
            raise ValueError(
                f"model {self.id} pools residues with one of {TOKEN_POOLINGS}, not {pooling!r}"
            )
        converter = import_inverse_folding().util.CoordBatchConverter(self.alphabet_)
        coords, confidence, _, _, padding = converter.from_lists(
            [item.astype(np.float32) for item in batch], device=self.device
        )
        dtype = getattr(torch, self.dtype)
        with torch.inference_mode():
            out = self.model_.encoder(coords.to(dtype), padding, confidence.to(dtype),
                                      return_all_hiddens=True)
        states = [*out["encoder_states"][:-1], out["encoder_out"][0]]  # each (T, B, D)
        residues = torch.zeros(padding.shape, dtype=torch.bool)
        for b, item in enumerate(batch):  # slot 0 and L_b + 1 are fair-esm's padding slots
            residues[b, 1 : len(item) + 1] = torch.from_numpy(np.isfinite(item).all(axis=(1, 2)))
        first = [int(row.nonzero()[0]) for row in residues]
        last = [int(row.nonzero()[-1]) for row in residues]
        if pooling == "cls":  # the first resolved residue, not fair-esm's padding slot
            pooling, last = "last", first
        hidden = ((layer, states[int(layer)].transpose(0, 1)) for layer in layers)
        return pooled_hidden_output(hidden, residues, last, pooling, per_item)

    def weights_path(self) -> Path:
        path = super().weights_path()
        if not path.is_file():
            raise ModelNotFoundError(f"model {self.id}: {path} is not a fair-esm .pt file")
        return path
