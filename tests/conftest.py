"""Shared test helpers: real llama.cpp servers on loopback, started and stopped by tests."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

# runs finished by `culturesim run|sweep` (subprocesses too) and runs the app finds unmeasured
# are measured in TF-IDF in tests, not MiniLM (torch's import alone is seconds per process);
# tests of the default ("best") take this variable out of their environment
os.environ.setdefault("CULTURESIM_MEASURE_EMBEDDER", "tfidf")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def llama_server(log: Path, *extra: str):
    """`culturesim serve llama` on a free loopback port; yields its OpenAI base URL.

    The log goes to a file, not a pipe: llama.cpp logs enough to fill a pipe and block.
    """
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "culturesim.cli", "serve", "llama", "--model", "smollm2", "--port", str(port), *extra],
        stdout=subprocess.DEVNULL, stderr=log.open("w"),
    )
    base = f"http://127.0.0.1:{port}/v1"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                urllib.request.urlopen(f"{base}/models", timeout=2).read()
                break
            except OSError:
                assert proc.poll() is None, log.read_text()[-2000:]
                assert time.monotonic() < deadline, "server did not start"
                time.sleep(0.25)
        yield base
    finally:
        proc.terminate()
        proc.wait(timeout=30)
