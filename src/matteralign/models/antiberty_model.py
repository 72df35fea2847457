"""AntiBERTy (Ruffolo et al. 2021), an 8-layer BERT antibody language model, weights bundled in
antiberty 0.1.3. Layers ``"0"`` (embedding output) to ``"8"`` are BertModel hidden states.
"""

from __future__ import annotations

from matteralign.errors import AdapterError
from matteralign.models.protein_sequence import (
    ResidueTokenAdapter,
    read_vocabulary,
)

TORCH_DTYPES = ("float32", "float64", "bfloat16", "float16")


class AntiBERTyAdapter(ResidueTokenAdapter):
    """AntiBERTy hidden states of every layer, input ``[CLS] residues [SEP]``.

    Notes
    -----
    Poolings: ``mean`` over the residue tokens ([CLS], [SEP] and padding excluded), ``cls``
    (the [CLS] token) and ``last`` (the [SEP] token). Per-item output has one row per residue.
    The vocabulary holds only the 20 standard amino acids, so other letters raise
    :class:`SampleError`. Sequences longer than 510 residues do not fit the position embeddings.
    """

    max_residues = 510

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

    def prefix_tokens(self) -> list[str]:
        return ["[CLS]"]
