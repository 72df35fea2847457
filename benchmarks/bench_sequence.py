"""Sequences per second of ESM-2 650M and ProstT5 (random weights): runner vs plain forward.

Both architectures are built at full size from their configuration classes (EsmConfig of
facebook/esm2_t33_650M_UR50D, T5Config of Rostlab/ProstT5's encoder) with random weights, so
nothing is downloaded. Tokenizers are built offline: ESM's fixed vocabulary, and for ProstT5 a
sentencepiece word model over the amino-acid letters with the "<AA2fold>" prefix added.

For each model, in one process and on the same random protein sequences:

* ``runner``: ``matteralign.run.embed.embed_dataset`` with the card's adapter (esm2-t33-650m,
  prostt5-aa), every layer mean-pooled over residues and written to a temporary store;
* ``plain``: the same model object called as a user would without this package: the tokenizer
  on each batch (padding to the longest), one forward, the masked mean of
  ``last_hidden_state`` copied to the host; batches are the runner's (same sequences, same token
  budget).

One warm-up batch runs first for each; the ratio is runner / plain sequences per second.

    python benchmarks/bench_sequence.py --device cuda                # H100: n 512, both models
    python benchmarks/bench_sequence.py --tiny --n 16 --device cpu   # tiny twins, a test run
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

AMINO_ACIDS = "ACDEFGHIKLMNPQRSTVWY"
ESM_VOCAB = [
    "<cls>", "<pad>", "<eos>", "<unk>", "L", "A", "G", "V", "S", "E", "R", "T", "I", "D", "P",
    "K", "Q", "N", "F", "Y", "M", "H", "W", "C", "X", "B", "U", "Z", "O", ".", "-", "<null_1>",
    "<mask>",
]


def esm_checkpoint(folder: Path, tiny: bool) -> None:
    """ESM-2 650M (33 layers, hidden 1280) with random weights, or a 33-layer tiny twin."""
    import transformers

    (folder / "vocab.txt").write_text("\n".join(ESM_VOCAB) + "\n")
    hidden, heads, ffn = (16, 2, 32) if tiny else (1280, 20, 5120)
    config = transformers.EsmConfig(
        vocab_size=33, hidden_size=hidden, num_hidden_layers=33, num_attention_heads=heads,
        intermediate_size=ffn, max_position_embeddings=1026, position_embedding_type="rotary",
        token_dropout=True, mask_token_id=32, pad_token_id=1, emb_layer_norm_before=False,
    )
    transformers.EsmModel(config, add_pooling_layer=False).save_pretrained(folder)
    transformers.EsmTokenizer(str(folder / "vocab.txt")).save_pretrained(folder)


def prostt5_checkpoint(folder: Path, tiny: bool) -> None:
    """ProstT5's encoder (24 blocks, d_model 1024, d_ff 16384) with random weights, or a twin."""
    import sentencepiece
    import transformers

    sentencepiece.SentencePieceTrainer.train(
        sentence_iterator=iter([" ".join(AMINO_ACIDS + "X")] * 20),
        model_prefix=str(folder / "spiece"), vocab_size=24, model_type="word", pad_id=0,
        eos_id=1, unk_id=2, bos_id=-1, hard_vocab_limit=False, minloglevel=2,
    )
    tokenizer = transformers.T5Tokenizer(str(folder / "spiece.model"), extra_ids=0, legacy=True)
    tokenizer.add_tokens(["<AA2fold>", "<fold2AA>"])
    d_model, d_kv, d_ff, heads = (16, 8, 32, 2) if tiny else (1024, 128, 16384, 32)
    config = transformers.T5Config(
        vocab_size=150, d_model=d_model, d_kv=d_kv, d_ff=d_ff, num_layers=24, num_heads=heads,
        feed_forward_proj="relu", is_encoder_decoder=False,
    )
    transformers.T5EncoderModel(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)


MODELS = {"esm2-t33-650m": esm_checkpoint, "prostt5-aa": prostt5_checkpoint}


def sequences(n: int, shortest: int, longest: int, seed: int) -> list[str]:
    rng = np.random.default_rng(seed)
    lengths = rng.integers(shortest, longest + 1, size=n)
    return ["".join(rng.choice(list(AMINO_ACIDS), size=int(k))) for k in lengths]


def batches(adapter, items: list, budget: int) -> list[list[int]]:  # noqa: ANN001
    """Indices of the runner's batches: consecutive items within ``budget`` tokens."""
    out: list[list[int]] = []
    used = 0
    for index, item in enumerate(items):
        cost = adapter.cost(item)
        if out and out[-1] and used + cost <= budget:
            out[-1].append(index)
            used += cost
        else:
            out.append([index])
            used = cost
    return out


def synchronize(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def plain_forward(adapter, texts: list[str], groups: list[list[int]], device: str) -> float:  # noqa: ANN001
    """Seconds for the plain loop: tokenizer, forward, masked mean of the last hidden state."""
    tokenizer, model = adapter._tokenizer, adapter._model
    started = time.perf_counter()
    for group in groups:
        encoded = tokenizer([texts[i] for i in group], padding=True, return_tensors="pt",
                            return_token_type_ids=False).to(device)
        with torch.inference_mode():
            hidden = model(**encoded).last_hidden_state
            mask = encoded["attention_mask"].unsqueeze(-1).to(hidden.dtype)
            (hidden * mask).sum(1).div(mask.sum(1)).float().cpu()
    synchronize(device)
    return time.perf_counter() - started


def bench(model_id: str, args: argparse.Namespace) -> dict:
    from matteralign.data.sample import Dataset, DatasetCard, Sample
    from matteralign.models.registry import create_adapter
    from matteralign.run.embed import embed_dataset
    from matteralign.store.embedding_store import EmbeddingStore

    with tempfile.TemporaryDirectory() as root:
        folder = Path(root) / "checkpoint"
        folder.mkdir()
        torch.manual_seed(0)
        MODELS[model_id](folder, args.tiny)
        adapter = create_adapter(model_id, path=str(folder))
        started = time.perf_counter()
        adapter.load(args.device, args.dtype)
        load_s = time.perf_counter() - started
        seqs = sequences(args.n, args.shortest, args.longest, args.seed)
        samples = [Sample(f"s{i}", sequence=s) for i, s in enumerate(seqs)]
        card = DatasetCard(name="random-proteins", version=str(args.seed), domain="proteins",
                           description="uniform random residues", provenance="generated",
                           license="CC0-1.0")
        items = [adapter.prepare(s) for s in samples]
        groups = batches(adapter, items, args.budget)
        texts = [adapter.model_text(item.text) for item in items]
        warm = groups[0]
        adapter.embed([items[i] for i in warm], adapter.layer_names, "mean")
        plain_forward(adapter, texts, [warm], args.device)

        synchronize(args.device)
        started = time.perf_counter()
        store = EmbeddingStore(Path(root) / "store")
        summary = embed_dataset(adapter, Dataset(card, samples), store, layers="all",
                                batch_budget=args.budget, device=args.device, dtype=args.dtype)
        synchronize(args.device)
        runner_s = time.perf_counter() - started
        plain_s = plain_forward(adapter, texts, groups, args.device)
    runner_rate, plain_rate = args.n / runner_s, args.n / plain_s
    return {
        "model": model_id, "size": "tiny" if args.tiny else "full", "device": args.device,
        "device_name": torch.cuda.get_device_name() if args.device.startswith("cuda") else "cpu",
        "dtype": args.dtype, "n": args.n, "residues": sum(map(len, seqs)),
        "lengths": [args.shortest, args.longest], "budget_tokens": args.budget,
        "batches": len(groups), "layers_pooled": len(adapter.layer_names),
        "embedded": summary.n_embedded, "failed": summary.n_failed, "load_s": round(load_s, 2),
        "runner_s": round(runner_s, 3), "plain_s": round(plain_s, 3),
        "runner_sequences_per_s": round(runner_rate, 2),
        "plain_sequences_per_s": round(plain_rate, 2),
        "ratio_runner_to_plain": round(runner_rate / plain_rate, 3),
        "torch": torch.__version__,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="*", default=list(MODELS), choices=list(MODELS))
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    parser.add_argument("--dtype", default="float32", help="float32, bfloat16 or float16")
    parser.add_argument("--n", type=int, default=512, help="sequences per model")
    parser.add_argument("--shortest", type=int, default=100, help="residues")
    parser.add_argument("--longest", type=int, default=500, help="residues")
    parser.add_argument("--budget", type=int, default=16384, help="tokens per batch")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--tiny", action="store_true", help="tiny twins of the architectures")
    parser.add_argument("--out", type=Path, default=None, help="append the rows (JSON lines)")
    args = parser.parse_args()
    for model_id in args.models:
        row = bench(model_id, args)
        print(json.dumps(row), flush=True)
        if args.out:
            with open(args.out, "a") as handle:
                handle.write(json.dumps(row) + "\n")


if __name__ == "__main__":
    main()
