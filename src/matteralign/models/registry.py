"""Registry of models: built-in YAML cards plus the entry-point group ``matteralign.models``.

Listing reads cards only; a model's package is imported when its adapter is created.
"""

from __future__ import annotations

import ast
import difflib
import importlib
import importlib.util
import warnings
from functools import cache
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from matteralign.errors import ConfigError, ModelNotFoundError
from matteralign.models.adapter import ModelAdapter
from matteralign.models.card import ModelCard
from matteralign.models.weights import card_modules

CARD_DIR = Path(__file__).parent / "cards"
ENTRY_POINT_GROUP = "matteralign.models"


class PluginCardWarning(UserWarning):
    """A plugin's model card cannot be read; its models are left out, everything else works."""


@cache
def _builtin_and_plugin_cards() -> dict[str, ModelCard]:
    cards = {}
    for path in sorted(CARD_DIR.glob("*.yaml")):
        card = ModelCard.from_yaml(path)
        cards[card.id] = card
    for entry in entry_points(group=ENTRY_POINT_GROUP):
        # A plugin's entry point is a callable returning its ModelCards (or card dicts).
        try:
            found = list(entry.load()())
        except Exception as error:  # noqa: BLE001 - one broken plugin must not stop the rest
            _warn_plugin(entry.name, entry.value, error)
            continue
        for item in found:
            try:
                card = item if isinstance(item, ModelCard) else ModelCard.model_validate(item)
            except ValidationError as error:
                _warn_plugin(entry.name, entry.value, error)
                continue
            cards[card.id] = card
    return cards


def _warn_plugin(name: str, value: str, error: Exception) -> None:
    if isinstance(error, ValidationError):
        first = error.errors()[0]
        field = ".".join(str(part) for part in first["loc"]) or "(card)"
        reason = f"card field {field!r}: {first['msg']}"
        if error.error_count() > 1:
            reason += f" (and {error.error_count() - 1} more)"
    else:
        reason = f"{type(error).__name__}: {error}"
    warnings.warn(f"model plugin {name!r} ({value}): {reason}; its models are not registered",
                  PluginCardWarning, stacklevel=3)


_REGISTERED: dict[str, ModelCard] = {}


def _cards() -> dict[str, ModelCard]:
    return {**_builtin_and_plugin_cards(), **_REGISTERED}


def register_card_file(path: Path | str) -> ModelCard:
    """Register the model card in the YAML file ``path`` for this process (a study's
    ``models: [{card: my_card.yaml}]``); registering the same id again replaces it.

    Raises
    ------
    ConfigError
        If the file is missing or not a valid card (the message names the file and the field),
        or its id is a built-in or plugin model's.
    """
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"model card {path} does not exist")
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
        card = ModelCard.model_validate(raw)
    except ValidationError as error:
        problems = "; ".join(f"field {'.'.join(str(p) for p in issue['loc']) or '(card)'!r}: "
                             f"{issue['msg']}" for issue in error.errors())
        raise ConfigError(f"model card {path}: {problems}") from None
    except (yaml.YAMLError, OSError, UnicodeDecodeError) as error:
        raise ConfigError(f"model card {path} cannot be read as YAML ({error})") from None
    if card.id in _builtin_and_plugin_cards():
        raise ConfigError(f"model card {path}: id {card.id!r} is already a registered model's; "
                          "give your card another id")
    _REGISTERED[card.id] = card
    return card


def runs_here(card: ModelCard, data_root: Path | None = None) -> tuple[bool, str]:
    """Whether the model of ``card`` can run in this environment, without importing anything.

    Checks that the weights the card names exist under ``<data_root>/weights`` and that the
    packages the card's adapter imports (:func:`card_packages`) are installed
    (``importlib.util.find_spec``).

    A card that names a model environment imports its packages there, not here: only its
    weights are checked (whether the environment is built is the caller's to ask, through
    ``matteralign.run.environments``).

    Returns
    -------
    ok : bool
    reason : str
        What is missing, or what the model runs in; empty when nothing is to say.
    """
    in_environment = isinstance(card.environment, str)
    missing = [] if in_environment else sorted(
        name for name in card_packages(card) if importlib.util.find_spec(name) is None)
    if missing:
        return False, f"missing package {', '.join(missing)}{_install_hint(card, missing)}"
    if card.weights:
        import os

        root = data_root or (Path(os.environ["MATTERALIGN_DATA_ROOT"])
                             if os.environ.get("MATTERALIGN_DATA_ROOT") else None)
        if root is None or not (root / "weights" / card.weights).exists():
            return False, f"weights <data root>/weights/{card.weights} not found"
    return True, f"in environment {card.environment!r}" if in_environment else ""


def card_packages(card: ModelCard) -> frozenset[str]:
    """Top-level packages that the adapter of ``card`` imports, read from source.

    Those of the adapter's module (:func:`_imported_packages`), and of the ``matteralign.models``
    modules that :func:`~matteralign.models.weights.card_modules` names: modules the adapter
    imports inside a function only for some cards (a ``transformers`` encoder reading a fair-esm
    ``.pt`` checkpoint imports ``fair_esm``, and so fair-esm's ``esm``). Nothing is imported.

    Returns
    -------
    frozenset of str
        Top-level import names (``transformers``, ``esm``), standard library left out.
    """
    found = _imported_packages(card.adapter.split(":")[0])
    for name in card_modules(card):
        found |= _imported_packages(name)
    return found


def _install_hint(card: ModelCard, missing: list[str]) -> str:
    """How to get the ``missing`` packages of ``card``, in parentheses: where a module that
    :func:`~matteralign.models.weights.card_modules` adds for this card brings one (fair-esm's
    ``esm`` for a fair-esm ``.pt`` checkpoint), the model environment its own cards run in;
    else the card's pip extra; else nothing."""
    modules = set(card_modules(card))
    environment = next((other.environment for other in list_cards()
                        if isinstance(other.environment, str)
                        and other.adapter.split(":")[0] in modules), None)
    if environment and not set(missing) <= _imported_packages(card.adapter.split(":")[0]):
        return (f" (a copy of the card with environment: {environment}; "
                f"matteralign env create {environment})")
    return f" (pip install 'matteralign[{card.extra}]')" if card.extra else ""


@cache
def _imported_packages(module_name: str, seen: frozenset[str] = frozenset(),
                       imported_only: bool = False) -> frozenset[str]:
    """Top-level packages that ``module_name`` imports unguarded, anywhere in its source (an
    adapter imports its model package in ``load``); read with ``ast``, nothing imported.

    A ``matteralign.models`` module it imports at module level (a base class, a helper) is
    followed the same way. One it imports inside a function counts with what importing it
    needs (``imported_only``: its module-level imports), not with what its own functions
    import: which of those a card's path calls,
    :func:`~matteralign.models.weights.card_modules` says per card (:func:`card_packages`).
    """
    import sys

    try:
        spec = importlib.util.find_spec(module_name)
    except (ImportError, ValueError):
        return frozenset({module_name.split(".")[0]})
    if spec is None or not spec.origin or not spec.origin.endswith(".py"):
        return frozenset() if spec is not None else frozenset({module_name.split(".")[0]})
    tree = ast.parse(Path(spec.origin).read_text(encoding="utf-8"))
    guarded = {id(node) for handler in ast.walk(tree) if isinstance(handler, ast.Try)
               and any(_catches_import_error(h) for h in handler.handlers)
               for statement in handler.body for node in ast.walk(statement)}
    in_functions = {id(node) for function in ast.walk(tree)
                    if isinstance(function, ast.FunctionDef | ast.AsyncFunctionDef)
                    for statement in function.body for node in ast.walk(statement)}
    found: set[str] = set()
    for node in ast.walk(tree):
        in_function = id(node) in in_functions
        if id(node) in guarded or (imported_only and in_function):
            continue
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module]
            if node.module == "matteralign.models":
                names = [f"matteralign.models.{alias.name}" for alias in node.names]
        else:
            continue
        for name in names:
            top = name.split(".")[0]
            if name.startswith("matteralign.models.") and name not in seen | {module_name}:
                found |= _imported_packages(name, seen | {module_name},
                                            imported_only or in_function)
            elif top != "matteralign" and top not in sys.stdlib_module_names:
                found.add(top)
    return frozenset(found)


def _catches_import_error(handler: ast.ExceptHandler) -> bool:
    names = handler.type.elts if isinstance(handler.type, ast.Tuple) else [handler.type]
    return handler.type is None or any(
        isinstance(n, ast.Name) and n.id in ("ImportError", "ModuleNotFoundError", "Exception")
        for n in names)


def list_cards() -> list[ModelCard]:
    """Cards of every registered model, built-in first, in id order."""
    return list(_cards().values())


def get_card(model_id: str) -> ModelCard:
    """The card registered under ``model_id``.

    Raises
    ------
    ModelNotFoundError
        If no model has that id; the message lists close matches.
    """
    cards = _cards()
    if model_id not in cards:
        import difflib

        close = difflib.get_close_matches(model_id, list(cards), n=3)
        hint = f" Did you mean {', '.join(close)}?" if close else ""
        raise ModelNotFoundError(
            f"unknown model {model_id!r}.{hint} `matteralign models list` shows every model."
        )
    return cards[model_id]


def accepted_options(card: ModelCard) -> frozenset[str] | None:
    """The options the adapter of ``card`` reads, found in its source without importing it.

    An option is accepted when the card sets it, or when the adapter's module (or a
    ``matteralign.models`` module it imports, such as the base class's) reads it by name:
    ``options["k"]``, ``options.get("k")``, ``options.pop("k")`` or ``"k" in options``. None
    when the adapter's source is not at hand (a compiled plugin): then nothing is checked.
    """
    found = _options_read(card.adapter.split(":")[0])
    return None if found is None else frozenset(found | set(card.options))


def check_options(card: ModelCard, options: dict[str, Any]) -> None:
    """Refuse an option the adapter of ``card`` does not read (a misspelling would be ignored).

    Raises
    ------
    ConfigError
        Naming the model and the option, with the close spellings and every accepted option.
    """
    accepted = accepted_options(card)
    if accepted is None:
        return
    for key in options:
        if key not in accepted:
            close = difflib.get_close_matches(str(key), sorted(accepted), n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise ConfigError(
                f"model {card.id} has no option {key!r}{hint}; it accepts: "
                f"{', '.join(sorted(accepted)) or 'none'}"
            )


@cache
def _options_read(module_name: str, seen: frozenset[str] = frozenset()) -> set[str] | None:
    try:
        spec = importlib.util.find_spec(module_name)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.origin or not spec.origin.endswith(".py"):
        return None
    tree = ast.parse(Path(spec.origin).read_text(encoding="utf-8"))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            targets = [node.module] if node.module != "matteralign.models" else [
                f"matteralign.models.{alias.name}" for alias in node.names]
            for target in targets:
                if target.startswith("matteralign.models.") and target not in seen | {module_name}:
                    found |= _options_read(target, seen | {module_name}) or set()
        key = _option_key(node)
        if key is not None:
            found.add(key)
    return found


def _is_options(node: ast.AST) -> bool:
    return (isinstance(node, ast.Name) and node.id == "options") or (
        isinstance(node, ast.Attribute) and node.attr == "options")


def _option_key(node: ast.AST) -> str | None:
    """``k`` where ``node`` is options["k"], options.get/pop/setdefault("k", ...) or "k" in
    options; else None."""
    key: ast.AST | None = None
    if isinstance(node, ast.Subscript) and _is_options(node.value):
        key = node.slice
    elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
          and node.func.attr in ("get", "pop", "setdefault") and _is_options(node.func.value)
          and node.args):
        key = node.args[0]
    elif (isinstance(node, ast.Compare) and len(node.ops) == 1
          and isinstance(node.ops[0], ast.In | ast.NotIn) and _is_options(node.comparators[0])):
        key = node.left
    return key.value if isinstance(key, ast.Constant) and isinstance(key.value, str) else None


def create_adapter(model_id: str, **options: Any) -> ModelAdapter:
    """Instantiate the adapter of ``model_id`` (imports its module, not yet its weights)."""
    card = get_card(model_id)
    module_name, class_name = card.adapter.split(":")
    adapter_class = getattr(importlib.import_module(module_name), class_name)
    adapter: ModelAdapter = adapter_class(card, **options)
    return adapter
