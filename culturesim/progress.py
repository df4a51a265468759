"""Progress of a run: a live bar of requests on a terminal, one line per step elsewhere.

Researchers watch ideas/s and tokens/s to know whether the model or the simulation is
the bottleneck, so both are shown as the run goes.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from culturesim.llm.types import Reply


class StepProgress:
    def __init__(self, *, first_step: int, last_step: int, requests: int | None, enabled: bool, label: str):
        """``requests=None``: a kind without language models, whose bar counts steps."""
        self.enabled = enabled
        self.by_step = requests is None
        self.console = Console(stderr=True)
        self.live = enabled and self.console.is_terminal
        self.last_step = last_step
        self.label = label
        self.started = time.perf_counter()
        self.replies = 0
        self.ideas = 0
        self.failures = 0
        self.tokens = 0
        self.steps_done = 0
        self._bar = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[rates]}"),
            TimeElapsedColumn(),
            TextColumn("eta"),
            TimeRemainingColumn(),
            console=self.console,
            disable=not self.live,
        )
        total = last_step - first_step + 1 if requests is None else requests
        self._task = self._bar.add_task(f"step {first_step}/{last_step}", total=total, rates="")

    def __enter__(self) -> StepProgress:
        self.started = time.perf_counter()
        self._bar.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        self._bar.__exit__(*exc)

    def rates(self) -> tuple[float, float]:
        elapsed = max(time.perf_counter() - self.started, 1e-9)
        return self.ideas / elapsed, self.tokens / elapsed

    def _rate_text(self) -> str:
        if self.by_step:
            return f"{self.steps_done / max(time.perf_counter() - self.started, 1e-9):.2f} steps/s"
        ideas_s, tokens_s = self.rates()
        failed = f" | {self.failures} failed" if self.failures else ""
        return f"{ideas_s:.2f} ideas/s | {tokens_s:.0f} tok/s{failed}"

    def reply(self, reply: Reply) -> None:
        """Called for every reply as it arrives (from the LLM door)."""
        self.replies += 1
        if reply.ok:
            self.ideas += 1
        else:
            self.failures += 1
        self.tokens += reply.completion_tokens
        if self.live:
            self._bar.update(self._task, advance=1, rates=self._rate_text())

    def step_done(self, step: int, rows: list[dict]) -> None:
        self.steps_done += 1
        if self.live:
            self._bar.update(self._task, description=f"step {min(step + 1, self.last_step)}/{self.last_step}",
                             advance=1 if self.by_step else 0, rates=self._rate_text())
        elif self.enabled:
            rows_text = "" if self.by_step else f"{len(rows)} rows, "
            print(f"[{self.label}] step {step}: {rows_text}{self._rate_text()}", file=sys.stderr, flush=True)

    def summary(self, path: Path) -> None:
        if not self.enabled:
            return
        if self.by_step:
            self.console.print(f"{self.steps_done} step(s), {self._rate_text()} -> {path}", soft_wrap=True)
            return
        ideas_s, tokens_s = self.rates()
        self.console.print(
            f"{self.steps_done} step(s), {self.ideas} ideas, {self.failures} failures, "
            f"{ideas_s:.2f} ideas/s, {tokens_s:.0f} tokens/s -> {path}",
            soft_wrap=True,
        )
