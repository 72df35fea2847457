"""EvolutionaryScale's ESM C (300M, 600M) and ESM3 open (sequence track, or sequence and structure
tracks from a backbone), read layer by layer.

The ``esm`` package pins ``transformers<4.48.2``, so these models run in the ``esm`` model
environment (``matteralign env create esm``). Models are built with the package's own
constructors and tokenised with its own ``EsmSequenceTokenizer`` (and, for structures, its own
``ESM3.encode``); pooling is :class:`~matteralign.models.token_encoder.TokenEncoderAdapter`'s.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from matteralign.data.sample import Sample
from matteralign.errors import AdapterError, ModelNotFoundError, SampleError
from matteralign.models.adapter import EmbeddingOutput
from matteralign.models.token_encoder import TokenEncoderAdapter, TokenizedText, torch_dtype

#: The esm package's model names and the size its constructors build for each:
#: (d_model, n_heads, v_heads or None for ESM C, n_layers).
ARCHITECTURES: dict[str, tuple[int, int, int | None, int]] = {
    "esmc_300m": (960, 15, None, 30),
    "esmc_600m": (1152, 18, None, 36),
    "esm3_sm_open_v1": (1536, 24, 256, 48),
}

#: The esm package's ESM3 structure token encoder (VQ-VAE) size: (d_model, n_heads, v_heads,
#: n_layers, d_out, n_codes), as ``esm.pretrained.ESM3_structure_encoder_v0`` builds it.
STRUCTURE_ENCODER: tuple[int, ...] = (1024, 1, 128, 2, 128, 4096)
#: Where atom37 (the esm package's atom order) puts N, CA, C and O.
ATOM37_BACKBONE = (0, 1, 2, 4)


def build_model(name: str, architecture: Sequence[int | None] | None = None) -> Any:
    """An untrained ESM C or ESM3 from the esm package's constructors, on the CPU, in eval mode.

    Parameters
    ----------
    name : {"esmc_300m", "esmc_600m", "esm3_sm_open_v1"}
    architecture : (d_model, n_heads, v_heads, n_layers), optional
        Another size of the same model (tiny twins); default the named model's.

    Notes
    -----
    ESM C is built without flash attention (padding handled by its boolean ``sequence_id``
    mask). ESM3's tokenizer collection reads data files of the ``esm3-sm-open-v1`` hub repository
    (downloaded on first use, or found where ``INFRA_PROVIDER`` points the esm package).
    """
    d_model, n_heads, v_heads, n_layers = architecture or ARCHITECTURES[name]
    if name.startswith("esmc"):
        from esm.models.esmc import ESMC
        from esm.tokenization import get_esmc_model_tokenizers

        return ESMC(d_model=d_model, n_heads=n_heads, n_layers=n_layers,
                    tokenizer=get_esmc_model_tokenizers(), use_flash_attn=False).eval()
    from esm.models.esm3 import ESM3
    from esm.pretrained import (
        ESM3_function_decoder_v0,
        ESM3_structure_decoder_v0,
        ESM3_structure_encoder_v0,
    )
    from esm.tokenization import get_esm3_model_tokenizers

    return ESM3(d_model=d_model, n_heads=n_heads, v_heads=v_heads, n_layers=n_layers,
                structure_encoder_fn=ESM3_structure_encoder_v0,
                structure_decoder_fn=ESM3_structure_decoder_v0,
                function_decoder_fn=ESM3_function_decoder_v0,
                tokenizers=get_esm3_model_tokenizers()).eval()


class EsmSequenceAdapter(TokenEncoderAdapter):
    """ESM C or ESM3 (sequence track only) over protein sequences, every layer.

    Layers: ``"0"`` the token embedding (ESM3: the sum of its track embeddings with every other
    track at its mask/pad default), ``"1"`` .. ``"L"`` the transformer blocks' outputs; ``"L"``
    is what the esm package returns as ``embeddings``: after the final LayerNorm for ESM C, the
    last block's output before it for ESM3.

    Options
    -------
    model : {"esmc_300m", "esmc_600m", "esm3_sm_open_v1"}
        Which model; without ``path`` its weights come from the esm package's
        ``from_pretrained`` (the Hugging Face hub, or its cache offline).
    path : str, optional
        A ``.pth`` state dict (as the hub repository's ``data/weights/*.pth``) loaded into the
        package's constructor.
    architecture : list of int, optional
        (d_model, n_heads, v_heads, n_layers) instead of the named model's (tiny twins).
    """

    #: No position limit (rotary embeddings); windows only if the ``window`` option asks.
    max_tokens = 2**62

    def __init__(self, card: Any, **options: Any) -> None:
        super().__init__(card, **options)
        self._tokenizer: Any = None
        self._captured: list[torch.Tensor] = []

    @property
    def model_name(self) -> str:
        name = str(self.options.get("model", ""))
        if name not in ARCHITECTURES:
            raise AdapterError(
                f"model {self.id}: option model must be one of {list(ARCHITECTURES)}"
            )
        return name

    def load(self, device: str = "cpu", dtype: str = "float32") -> None:
        if self._model is not None and (device, dtype) == (self.device, self.dtype):
            return
        name = self.model_name
        if self.options.get("path"):
            model = build_model(name, self.options.get("architecture"))
            state = torch.load(self.weights_path(), map_location="cpu", weights_only=True)
            model.load_state_dict(state)
        else:
            model = self._from_pretrained(name)
        n_layers = len(model.transformer.blocks)
        self._check_layer_count(n_layers)
        self._model = model.to(device=device, dtype=torch_dtype(dtype)).eval()
        self._tokenizer = model.tokenizer if name.startswith("esmc") else model.tokenizers.sequence
        if not name.startswith("esmc"):  # ESM3 returns no hidden states: hooks collect them
            model.encoder.register_forward_hook(self._capture)
            for block in model.transformer.blocks:
                block.register_forward_hook(self._capture)
        self.device, self.dtype = device, dtype

    def _from_pretrained(self, name: str) -> Any:
        from esm.models.esm3 import ESM3
        from esm.models.esmc import ESMC

        loader = ESMC if name.startswith("esmc") else ESM3
        try:
            model = loader.from_pretrained(name, device=torch.device("cpu"))
        except Exception as error:  # huggingface_hub's offline / not-found errors vary
            raise ModelNotFoundError(
                f"model {self.id}: the esm package could not load {name!r} "
                f"({type(error).__name__}: {str(error).strip().splitlines()[0][:200]}); "
                "offline, its hub files must be in the Hugging Face cache, or pass "
                "path=<state dict .pth>"
            ) from error
        return model.float().eval()

    def _capture(self, module: Any, inputs: Any, output: torch.Tensor) -> None:
        self._captured.append(output)

    def tokenize(self, text: str, sample_id: str) -> TokenizedText:
        """``<cls>`` residues ``<eos>`` from the esm package's ``tokenize_sequence``."""
        if self._tokenizer is None:
            raise AdapterError(f"model {self.id} is not loaded; call load() before prepare()")
        from esm.utils.encoding import tokenize_sequence

        ids = [int(i) for i in tokenize_sequence(text, self._tokenizer, add_special_tokens=True)]
        unknown = self._tokenizer.unk_token_id
        self.check_unknown(sample_id, text, list(text), [i != unknown for i in ids[1:-1]])
        return TokenizedText(text, tuple(ids), (False,) + (True,) * (len(ids) - 2) + (False,))

    @property
    def pad_id(self) -> int:
        if self._tokenizer is None:
            raise AdapterError(f"model {self.id} is not loaded; call load() first")
        return int(self._tokenizer.pad_token_id)

    def hidden_states(self, ids: torch.Tensor, mask: torch.Tensor) -> Sequence[torch.Tensor]:
        model = self._ready()
        if self.model_name.startswith("esmc"):
            out = model(sequence_tokens=ids, sequence_id=mask)
            blocks = list(out.hidden_states.unbind(0))
            return [model.embed(ids), *blocks[:-1], out.embeddings]
        batch, length = ids.shape
        return self._esm3_states(
            sequence_tokens=ids, sequence_id=mask,
            structure_coords=torch.full((batch, length, 3, 3), float("nan"), device=ids.device),
        )

    def _esm3_states(self, **inputs: torch.Tensor) -> list[torch.Tensor]:
        """ESM3's encoder output and every block's output for one forward of ``inputs``,
        collected by the hooks that :meth:`load` registered."""
        self._captured = []
        try:
            self._ready()(**inputs)
            return list(self._captured)
        finally:
            self._captured = []

    def weights_path(self) -> Path:
        path = super().weights_path()
        if not path.is_file():
            raise ModelNotFoundError(f"model {self.id}: {path} is not a state dict file (.pth)")
        return path

    def unload(self) -> None:
        super().unload()
        self._tokenizer = None


@dataclass(frozen=True)
class StructureTokens(TokenizedText):
    """A backbone prepared for ESM3: its sequence tokens plus the structure track.

    Attributes
    ----------
    structure : tuple of int, length T
        Structure tokens from the esm package's VQ-VAE encoder, ``<bos>`` and ``<eos>`` included.
    coords : (T, 3, 3) float32 array
        N, CA, C in Å, ``inf`` at ``<bos>`` / ``<eos>`` and NaN where an atom is missing, as
        ``ESM3.encode`` returns them (the first block's geometric attention reads them).
    plddt : (T,) float32 array
        Per-residue pLDDT as ``ESM3.logits`` sets it: 1 where any atom has coordinates, else 0.
    """

    structure: tuple[int, ...]
    coords: np.ndarray
    plddt: np.ndarray


class Esm3StructureAdapter(EsmSequenceAdapter):
    """ESM3 open reading a backbone through its sequence and structure tracks, every layer.

    Each sample's chain goes through the esm package's own ``ESM3.encode`` (sequence tokens;
    structure tokens from the VQ-VAE structure encoder; coordinates with ``inf`` at the special
    tokens), and the model is run as ``ESM3.logits`` runs it: per-residue pLDDT 1 where a residue
    has coordinates, average pLDDT 1, the backbone coordinates for the first block's geometric
    attention, the other tracks at their defaults. Layers as :class:`EsmSequenceAdapter`'s ESM3.

    Options
    -------
    model : {"esm3_sm_open_v1"}
    path, architecture
        As :class:`EsmSequenceAdapter`.
    structure_encoder : str, optional
        A state dict file (``.pth``, as the hub repository's
        ``data/weights/esm3_structure_encoder_v0.pth``) of the structure encoder; default the
        esm package's ``ESM3_structure_encoder_v0`` (hub, or its cache offline).
    structure_encoder_architecture : list of int, optional
        (d_model, n_heads, v_heads, n_layers, d_out, n_codes) of that file instead of
        :data:`STRUCTURE_ENCODER` (tiny twins).

    Notes
    -----
    Sequences are read whole (no windows). Residues missing N, CA or C are encoded as the esm
    package encodes them (no frame for the structure encoder; pLDDT 0 if no atom is present);
    they stay in the mean, since their sequence token is real.
    """

    def __init__(self, card: Any, **options: Any) -> None:
        super().__init__(card, **options)
        self._tracks: Sequence[StructureTokens] = ()

    def load(self, device: str = "cpu", dtype: str = "float32") -> None:
        if not self.model_name.startswith("esm3"):
            raise AdapterError(f"model {self.id}: only ESM3 has a structure track")
        if self.options.get("window"):
            raise AdapterError(f"model {self.id}: structure inputs are read whole, not windowed")
        super().load(device, dtype)
        if self.options.get("structure_encoder"):
            self._model.structure_encoder_fn = self._structure_encoder_loader()
            self._model._structure_encoder = None

    def _structure_encoder_loader(self) -> Callable[[Any], Any]:
        """``device -> StructureTokenEncoder`` reading the ``structure_encoder`` state dict."""
        from esm.models.vqvae import StructureTokenEncoder

        path = Path(str(self.options["structure_encoder"])).expanduser()
        if not path.is_file():
            raise ModelNotFoundError(
                f"model {self.id}: structure encoder weights not found at {path}")
        d_model, n_heads, v_heads, n_layers, d_out, n_codes = (
            self.options.get("structure_encoder_architecture") or STRUCTURE_ENCODER)

        def load(device: Any) -> Any:
            encoder = StructureTokenEncoder(d_model=d_model, n_heads=n_heads, v_heads=v_heads,
                                            n_layers=n_layers, d_out=d_out, n_codes=n_codes)
            encoder.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
            return encoder.to(device).eval()

        return load

    def prepare(self, sample: Sample) -> StructureTokens:
        """Sequence and structure tokens of the sample's chain from ``ESM3.encode``."""
        from esm.sdk.api import ESMProtein

        if sample.protein is None:
            raise SampleError(sample.id, f"has no protein backbone, which {self.id} reads")
        backbone = np.asarray(sample.protein.backbone, dtype=np.float32)
        if not np.isfinite(backbone[:, :3]).all(axis=(1, 2)).any():
            raise SampleError(sample.id, "has no residue with all of N, CA and C resolved")
        sequence = sample.protein.sequence.upper()
        item = self.tokenize(sequence, sample.id)
        atom37 = np.full((len(backbone), 37, 3), np.nan, dtype=np.float32)
        atom37[:, ATOM37_BACKBONE] = backbone
        with torch.inference_mode():
            encoded = self._ready().encode(
                ESMProtein(sequence=sequence, coordinates=torch.from_numpy(atom37)))
        if encoded.sequence.tolist() != list(item.ids):
            raise AdapterError(f"model {self.id}: ESM3.encode tokenised {sample.id} differently")
        coordinates = encoded.coordinates.float().cpu()  # (T, 37, 3)
        return StructureTokens(
            item.text, item.ids, item.real, tuple(int(i) for i in encoded.structure.tolist()),
            coordinates[:, :3].numpy(),
            coordinates.isfinite().all(dim=-1).any(dim=-1).float().numpy(),
        )

    def embed(
        self,
        batch: Sequence[StructureTokens],
        layers: Sequence[str],
        pooling: str,
        per_item: bool = False,
    ) -> EmbeddingOutput:
        """As :meth:`TokenEncoderAdapter.embed`; the structure tracks of ``batch`` are kept for
        :meth:`hidden_states`, whose padded rows are the batch's items in order."""
        self._tracks = batch
        try:
            return super().embed(batch, layers, pooling, per_item)
        finally:
            self._tracks = ()

    def hidden_states(self, ids: torch.Tensor, mask: torch.Tensor) -> Sequence[torch.Tensor]:
        from esm.utils.constants.esm3 import STRUCTURE_PAD_TOKEN

        if len(self._tracks) != ids.shape[0]:
            raise AdapterError(f"model {self.id}: hidden_states runs inside embed() only")
        structure = torch.full_like(ids, STRUCTURE_PAD_TOKEN)
        coords = torch.full((*ids.shape, 3, 3), float("nan"), device=ids.device)
        plddt = torch.zeros(ids.shape, device=ids.device)
        for row, item in enumerate(self._tracks):
            structure[row, : len(item.ids)] = torch.tensor(item.structure, device=ids.device)
            coords[row, : len(item.ids)] = torch.from_numpy(item.coords).to(ids.device)
            plddt[row, : len(item.ids)] = torch.from_numpy(item.plddt).to(ids.device)
        return self._esm3_states(sequence_tokens=ids, structure_tokens=structure,
                                 per_res_plddt=plddt, structure_coords=coords,
                                 sequence_id=mask)
