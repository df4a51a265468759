"""Finished runs the app finds unmeasured are measured in the background, once.

When a page opens runs (the Diversity page does), :func:`ensure_measured` starts
``culturesim measure RUN --if-unmeasured`` (a confined job of the app's launcher, a process of
its own: no torch in the app's workers) for each finished run without metrics.parquet, and
says where each one stands, from the run's ``measure.json`` (see :mod:`analysis.measure`).

One at a time per run, across app workers and terminals: the job takes the run's
``.measure.lock`` and leaves the run alone if someone holds it or measured it meanwhile; the
app does not start a job while the lock is held, while its own job for the run is running,
or after a measuring of the run failed (the page then offers its Measure button instead).
Everything is written inside the run folder and the app's ``.app/`` folder.
"""

from __future__ import annotations

from dataclasses import dataclass

from analysis.measure import is_measured, lock_held, read_state


@dataclass(frozen=True)
class Standing:
    run: str
    state: str  # measuring | failed | waiting (not finished, or measuring is off) | done
    done: int | None = None
    total: int | None = None
    error: str | None = None

    def line(self) -> str:
        if self.state == "measuring":
            count = f" {self.done}/{self.total}" if self.total else ""
            return f"Measuring… {self.run}{count}"
        if self.state == "failed":
            return f"Measuring {self.run} failed: {self.error}"
        return f"{self.run}: not measured yet"


def ensure_measured(res, launcher, runs: list[str]) -> list[Standing]:
    """Start measuring each finished, unmeasured run of ``runs`` that nobody is measuring, and
    say where each of them stands (measured runs are left out)."""
    standings = []
    for rel in runs:
        try:
            run = res.run_dir(rel)
            status = res.manifest(rel).get("status")
        except Exception:  # noqa: BLE001 - an unreadable run: its page says so
            continue
        if is_measured(run):
            continue
        state = read_state(run) or {}
        ours = launcher.measuring(rel)
        if ours is not None and ours.state() != "running" and not is_measured(run) and not state:
            # our job ended without a word in measure.json (it could not start): say it, do not loop
            standings.append(Standing(rel, "failed", error=f"the measuring job {ours.state()}; see {ours.log}"))
            continue
        busy = (ours is not None and ours.state() == "running") or lock_held(run)
        if busy:
            standings.append(Standing(rel, "measuring", state.get("done"), state.get("total")))
        elif state.get("status") == "failed":
            standings.append(Standing(rel, "failed", error=state.get("error")))
        elif status == "done" and launcher.measure_embedder and ours is None:
            launcher.start_measure(rel)
            standings.append(Standing(rel, "measuring"))
        else:
            standings.append(Standing(rel, "waiting"))
    return standings
