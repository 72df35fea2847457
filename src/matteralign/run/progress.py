"""Progress of a study's phases: rich bars on a terminal, plain-text lines when piped.

Each bar's clock starts when its work starts (not when the bar is created) and stops when it
finishes, so bars show their own elapsed time. Piped output (``| tee``, CI logs) gets one line
per advance instead of bars that a non-terminal never shows.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
)

__all__ = ["PhaseProgress", "phase"]


class PhaseProgress:
    """Bars (or lines) for tasks that run in the order they were added.

    A task starts at its first :meth:`advance` or when the task before it finishes, whichever
    is first; on a terminal the bar's elapsed time counts from then and freezes when it
    completes.

    Parameters
    ----------
    console : rich Console
        Where bars and lines go (the study's stderr console).
    """

    def __init__(self, console: Console) -> None:
        self.console = console
        self._bars: Progress | None = None
        if console.is_terminal:
            self._bars = Progress(TextColumn("{task.description}"), BarColumn(),
                                  MofNCompleteColumn(), TimeElapsedColumn(), console=console,
                                  transient=False)
        self._order: list[int] = []
        self._state: dict[int, list] = {}  # id -> [description, done, total, started_at]

    def __enter__(self) -> PhaseProgress:
        if self._bars is not None:
            self._bars.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._bars is not None:
            self._bars.__exit__(*exc)

    def add_task(self, description: str, total: int) -> int:
        """A task of ``total`` units; the first task added starts at once."""
        if self._bars is not None:
            task = self._bars.add_task(description, total=total, start=False)
        else:
            task = len(self._order)
        self._order.append(task)
        self._state[task] = [description, 0, total, None]
        if len(self._order) == 1:
            self._start(task)
        return task

    def _start(self, task: int) -> None:
        if self._state[task][3] is None:
            self._state[task][3] = time.perf_counter()
            if self._bars is not None:
                self._bars.start_task(task)

    def advance(self, task: int, amount: int) -> None:
        """``amount`` more units of ``task`` are done."""
        self._start(task)
        state = self._state[task]
        state[1] += amount
        finished = state[1] >= state[2]
        if self._bars is not None:
            self._bars.advance(task, amount)
            if finished:
                self._bars.stop_task(task)
        else:
            seconds = time.perf_counter() - state[3]
            self.console.print(f"{state[0]}: {state[1]}/{state[2]} ({seconds:.1f} s)",
                               highlight=False, soft_wrap=True)
        if finished:
            later = self._order[self._order.index(task) + 1:]
            waiting = next((t for t in later if self._state[t][3] is None), None)
            if waiting is not None:
                self._start(waiting)


@contextmanager
def phase(console: Console, name: str) -> Iterator[None]:
    """Show that the phase ``name`` runs: a spinner with its elapsed time on a terminal, a start
    and an end line (with the seconds it took) otherwise."""
    started = time.perf_counter()
    if console.is_terminal:
        with Progress(SpinnerColumn(finished_text="done"), TextColumn("{task.description}"),
                      TimeElapsedColumn(), console=console, transient=False) as bar:
            task = bar.add_task(name, total=1)
            yield
            bar.update(task, completed=1)
        return
    console.print(f"{name}: started", highlight=False)
    yield
    console.print(f"{name}: done in {time.perf_counter() - started:.1f} s", highlight=False)
