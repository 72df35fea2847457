"""AntiBERTy (Ruffolo et al. 2021), an 8-layer BERT antibody language model, weights bundled in
antiberty 0.1.3. Layers ``"0"`` (embedding output) to ``"8"`` are BertModel hidden states.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from matteralign.data.sample import Sample
from matteralign.errors import AdapterError
from matteralign.models.adapter import EmbeddingOutput, ModelAdapter
from matteralign.models.hidden_state_pooling import pooled_hidden_output
from matteralign.models.protein_sequence import (
    read_vocabulary,
    residue_token_batch,
    standard_sequence,
)

TORCH_DTYPES = ("float32", "float64", "bfloat16", "float16")


class AntiBERTyAdapter(ModelAdapter):
    """AntiBERTy hidden states of every layer, input ``[CLS] residues [SEP]``.

    Notes
    -----
    Poolings: ``mean`` over the residue tokens ([CLS], [SEP] and padding excluded), ``cls``
    (the [CLS] token) and ``last`` (the [SEP] token). Per-item output has one row per residue.
    The vocabulary holds only the 20 standard amino acids, so other letters raise
    :class:`SampleError`. Sequences longer than 510 residues do not fit the position embeddings.
    """

    max_residues = 510

    def __init__(self, card: Any, **options: Any) -> None:
        super().__init__(card, **options)
        self.model_: Any = None
        self.vocab_: dict[str, int] = {}

    def load(self, device: str = "cpu", dtype: str = "float32") -> None:
        if self.model_ is not None:
            return
        if dtype not in TORCH_DTYPES:
            raise AdapterError(
                f"model {self.id}: dtype must be one of {TORCH_DTYPES}, not {dtype!r}"
            )
        import torch
        from antiberty.AntiBERTyRunner import CHECKPOINT_PATH, VOCAB_FILE
        from antiberty.model.AntiBERTy import AntiBERTy

        model = AntiBERTy.from_pretrained(CHECKPOINT_PATH).bert
        self.model_ = model.to(device=device, dtype=getattr(torch, dtype)).eval()
        self.vocab_ = read_vocabulary(VOCAB_FILE)
        self._check_layer_count(model.config.num_hidden_layers)
        self.device, self.dtype = device, dtype

    def unload(self) -> None:
        self.model_ = None

    def prepare(self, sample: Sample) -> str:
        return standard_sequence(sample, self.id, max_length=self.max_residues)

    def cost(self, item: str) -> int:
        return len(item) + 2

    def embed(
        self,
        batch: Sequence[str],
        layers: Sequence[str],
        pooling: str,
        per_item: bool = False,
    ) -> EmbeddingOutput:
        import torch

        self._check_loaded(self.model_)
        self._check_layers(layers)
        ids, attention, residues, last = residue_token_batch(batch, self.vocab_, ["[CLS]"])
        with torch.no_grad():
            out = self.model_(
                input_ids=ids.to(self.device),
                attention_mask=attention.to(self.device),
                output_hidden_states=True,
            )
        hidden = ((layer, out.hidden_states[int(layer)].cpu()) for layer in layers)
        return pooled_hidden_output(hidden, residues, last, pooling, per_item)
