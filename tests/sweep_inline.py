"""A sweep run in the test's own process, one run after another: what ``culturesim sweep``
does without its process pool, so a fixture pays no interpreter start per run."""

from __future__ import annotations

from pathlib import Path

from culturesim.sweep import Sweep, execute


def run_inline(scenario, folder: Path) -> Path:
    """Every run of ``scenario``'s sweep under ``folder``, then the sweep's index; a run that
    does not finish fails the test with its error."""
    sweep = Sweep(scenario, folder)
    sweep.prepare()
    for spec in sweep.runs:
        _run_id, state, error = execute(spec, str(folder), {})
        assert state == "done", error
    sweep.write_index()
    return folder
