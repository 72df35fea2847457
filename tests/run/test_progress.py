"""Study progress: each bar's clock starts with its work; piped output gets plain lines."""

from __future__ import annotations

import io

from rich.console import Console

from matteralign.run.progress import PhaseProgress, phase


def test_bars_start_when_their_work_starts_and_stop_when_done():
    console = Console(file=io.StringIO(), force_terminal=True, width=100)
    with PhaseProgress(console) as progress:
        first = progress.add_task("a · x", total=4)
        second = progress.add_task("b · x", total=2)
        bars = {task.id: task for task in progress._bars.tasks}
        assert bars[first].started and not bars[second].started
        progress.advance(first, 2)
        assert not bars[second].started
        progress.advance(first, 2)  # first done: its clock stops, the next one's starts
        assert bars[first].finished and bars[first].stop_time is not None
        assert bars[second].started
        assert bars[second].start_time >= bars[first].stop_time


def test_piped_output_is_plain_lines():
    out = io.StringIO()
    console = Console(file=out, force_terminal=False)
    with PhaseProgress(console) as progress:
        task = progress.add_task("composition · cells", total=3)
        progress.advance(task, 2)
        progress.advance(task, 1)
    with phase(console, "report"):
        pass
    lines = out.getvalue().splitlines()
    assert lines[0].startswith("composition · cells: 2/3 (") and lines[0].endswith(" s)")
    assert lines[1].startswith("composition · cells: 3/3 (")
    assert lines[2:4] == ["report: started", lines[3]] and lines[3].startswith("report: done in")
