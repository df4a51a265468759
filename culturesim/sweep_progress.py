"""Progress of a sweep: runs done, running and failed with an ETA, plus the steps of one
running run, read from its manifest, so it works the same for local workers and Ray."""

from __future__ import annotations

import json
import sys

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn


class SweepProgress:
    def __init__(self, sweep, *, enabled: bool):
        self.sweep = sweep
        self.enabled = enabled
        self.console = Console(stderr=True)
        self.live = enabled and self.console.is_terminal
        self.already = len(sweep.runs) - len(sweep.pending())
        self.reported: set[str] = set()
        self.elapsed = 0.0
        self._bar = Progress(
            TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
            TextColumn("{task.fields[info]}"), TimeElapsedColumn(), TextColumn("eta"), TimeRemainingColumn(),
            console=self.console, disable=not self.live,
        )
        self._runs = self._bar.add_task("runs", total=len(sweep.runs), completed=self.already, info="")
        self._current = self._bar.add_task("current", total=1, info="", visible=False)

    def __enter__(self) -> SweepProgress:
        self._bar.__enter__()
        if self.enabled and not self.live:
            print(f"sweep: {len(self.sweep.runs)} runs, {self.already} already done", file=sys.stderr, flush=True)
        return self

    def __exit__(self, *exc) -> None:
        self._bar.__exit__(*exc)

    def update(self, outcomes: dict[str, tuple[str, str | None]], running: list[str]) -> None:
        failed = sum(1 for state, _ in outcomes.values() if state == "failed")
        finished = self.already + len(outcomes)
        if self.live:
            self._bar.update(self._runs, completed=finished,
                             info=f"{len(running)} running, {failed} failed")
            self._show_current(running)
        elif self.enabled:
            for run_id, (state, error) in outcomes.items():
                if run_id not in self.reported:
                    self.reported.add(run_id)
                    tail = f": {error.splitlines()[0]}" if error else ""
                    count = f"{self.already + len(self.reported)}/{len(self.sweep.runs)}"
                    print(f"[{count}] {run_id} {state}{tail}", file=sys.stderr, flush=True)

    def _show_current(self, running: list[str]) -> None:
        for run_id in running:
            try:
                manifest = json.loads((self.sweep.folder / run_id / "manifest.json").read_text())
            except (OSError, ValueError):
                continue
            self._bar.update(self._current, visible=True, description=run_id,
                             completed=manifest.get("steps_completed", 0), total=manifest.get("steps_total", 1),
                             info="steps")
            return
        self._bar.update(self._current, visible=False)
