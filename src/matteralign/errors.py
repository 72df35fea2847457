"""Exception classes shared by every stage of matteralign.

Each names the sample, file or model at fault and says what to do.
"""

from __future__ import annotations


class MatterAlignError(Exception):
    """Base class of every error matteralign raises on purpose."""


class DatasetError(MatterAlignError, ValueError):
    """A dataset is malformed: duplicate ids, unreadable files, missing sources."""


class SampleError(MatterAlignError, ValueError):
    """One sample cannot be given to a model (invalid SMILES, unsupported element, ...).

    Raised by adapters inside ``prepare``/``embed``; the runner records it against the sample
    and goes on with the rest of the batch.
    """

    def __init__(self, sample_id: str, reason: str) -> None:
        super().__init__(f"sample {sample_id!r}: {reason}")
        self.sample_id = sample_id
        self.reason = reason


class ModelNotFoundError(MatterAlignError, KeyError):
    """No model card or adapter is registered under the requested id."""

    def __str__(self) -> str:  # KeyError quotes its message; show it plainly
        return str(self.args[0])


class AdapterError(MatterAlignError, RuntimeError):
    """A model adapter broke its contract (wrong shapes, non-finite output, ...)."""


class StoreError(MatterAlignError, RuntimeError):
    """The embedding store is corrupt, locked by another run, or inconsistent."""


class ConfigError(MatterAlignError, ValueError):
    """A study configuration is invalid (unknown key, model or dataset)."""


class MetricError(MatterAlignError, KeyError):
    """An unknown metric id or parameter; the message lists the registered families."""

    def __str__(self) -> str:  # KeyError quotes its message; show it plainly
        return str(self.args[0])


class NothingScoredError(MatterAlignError, RuntimeError):
    """A study or ``align`` run produced no score at all (every model or metric was skipped)."""
