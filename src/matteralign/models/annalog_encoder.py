"""Adapter for the encoder half of ANNalog, a SMILES-to-SMILES transformer for analogue design.

The seq2seq model ships in the ``annalog`` wheel (checkpoint + vocabulary); only its 3-layer
encoder is run, and its per-token states are mean-pooled over the SMILES tokens.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from matteralign.errors import AdapterError
from matteralign.models.token_encoder import TokenEncoderAdapter, TokenizedText, torch_dtype
from matteralign.models.transformer_encoders import package_folder

SOS, EOS, PAD, UNK = "<sos>", "<eos>", "<pad>", "<unk>"


class AnnalogEncoderAdapter(TokenEncoderAdapter):
    """ANNalog's transformer encoder, read after the embedding and after each block.

    Options
    -------
    package, folder : str
        Folder holding ``checkpoint`` and ``vocabulary`` (default: the wheel's
        ``annalog/ckpt_and_vocab``).
    path : str, optional
        A folder to use instead.
    checkpoint, vocabulary : str
        File names inside the folder.
    unknown_tokens
        See :class:`TokenEncoderAdapter`.
    """

    #: Length of ANNalog's learned position table (``max_length`` of its handler).
    max_tokens = 102

    def __init__(self, card: Any, **options: Any) -> None:
        super().__init__(card, **options)
        self._handler: Any = None

    def weights_path(self) -> Path:
        if self.options.get("path"):
            return super().weights_path()
        return package_folder(
            str(self.options.get("package", "annalog")),
            str(self.options.get("folder", "ckpt_and_vocab")),
            self.id,
        )

    def load(self, device: str = "cpu", dtype: str = "float32") -> None:
        if self._model is not None and (device, dtype) == (self.device, self.dtype):
            return
        from annalog.model_handler import SMILESModelHandler

        folder = self.weights_path()
        vocabulary = str(folder / str(self.options.get("vocabulary",
                                                       "stereo_experiment_vocab_ttf.pkl")))
        checkpoint = str(folder / str(self.options.get("checkpoint", "Lev_extended.pt")))
        handler = SMILESModelHandler(
            vocabulary, vocabulary, checkpoint,
            device="cuda" if device.startswith("cuda") else "cpu",
            max_length=self.max_tokens,
        )
        handler.model.eval()
        self._handler = handler
        self._model = handler.model.to(dtype=torch_dtype(dtype))
        self.device = str(handler.device)
        self.dtype = dtype

    def tokenize(self, text: str, sample_id: str) -> TokenizedText:
        if self._handler is None:
            raise AdapterError(f"model {self.id} is not loaded; call load() before prepare()")
        field = self._handler.SRC
        stoi = field.vocab.stoi
        tokens = field.preprocess(text)
        # dict membership, not stoi[...]: the package's stoi inserts missing keys on lookup
        self.check_unknown(sample_id, text, tokens, [dict.__contains__(stoi, t) for t in tokens])
        unknown = field.vocab.unk_index
        ids = [stoi[SOS]] + [dict.get(stoi, t, unknown) for t in tokens] + [stoi[EOS]]
        real = [False] + [True] * len(tokens) + [False]
        return TokenizedText(text, tuple(ids), tuple(real))

    @property
    def pad_id(self) -> int:
        if self._handler is None:
            raise AdapterError(f"model {self.id} is not loaded; call load() first")
        return int(self._handler.SRC.vocab.stoi[PAD])

    def hidden_states(self, ids: torch.Tensor, mask: torch.Tensor) -> Sequence[torch.Tensor]:
        model = self._ready()
        encoder = model.encoder
        states: list[torch.Tensor] = []
        # the embedding output is what the encoder's own dropout returns (identity in eval)
        modules = [encoder.dropout, *encoder.layers]
        hooks = [
            module.register_forward_hook(lambda _m, _i, output: states.append(output))
            for module in modules
        ]
        try:
            encoder(ids, model.make_src_mask(ids))
        finally:
            for hook in hooks:
                hook.remove()
        if len(states) != len(modules):
            raise AdapterError(
                f"model {self.id}: expected {len(modules)} encoder outputs, hooks saw {len(states)}"
            )
        return states

    def unload(self) -> None:
        super().unload()
        self._handler = None
