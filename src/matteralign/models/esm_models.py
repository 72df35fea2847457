"""EvolutionaryScale's ESM C (300M, 600M) and ESM3 open (sequence track), read layer by layer.

The ``esm`` package pins ``transformers<4.48.2``, so these models run in the ``esm`` model
environment (``matteralign env create esm``). Models are built with the package's own
constructors and tokenised with its own ``EsmSequenceTokenizer``; pooling and long-sequence
handling are :class:`~matteralign.models.token_encoder.TokenEncoderAdapter`'s.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from matteralign.errors import AdapterError, ModelNotFoundError
from matteralign.models.token_encoder import TokenEncoderAdapter, TokenizedText, torch_dtype

#: The esm package's model names and the size its constructors build for each:
#: (d_model, n_heads, v_heads or None for ESM C, n_layers).
ARCHITECTURES: dict[str, tuple[int, int, int | None, int]] = {
    "esmc_300m": (960, 15, None, 30),
    "esmc_600m": (1152, 18, None, 36),
    "esm3_sm_open_v1": (1536, 24, 256, 48),
}


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
        self._captured = []
        try:
            model(sequence_tokens=ids, sequence_id=mask,
                  structure_coords=torch.full((batch, length, 3, 3), float("nan"),
                                              device=ids.device))
            states = list(self._captured)
        finally:
            self._captured = []
        return states

    def weights_path(self) -> Path:
        path = super().weights_path()
        if not path.is_file():
            raise ModelNotFoundError(f"model {self.id}: {path} is not a state dict file (.pth)")
        return path

    def unload(self) -> None:
        super().unload()
        self._tokenizer = None
