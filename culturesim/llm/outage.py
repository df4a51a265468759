"""The outage layer: a server that is down is waited for, so that a day-long study is
not ended by a restart.

When *every* request of a batch failed on errors a server can recover from (refused
connections, timeouts, 5xx: ``Reply.transient``), after the retry layer's own attempts,
the batch is sent again after a pause (2 s, doubling to 30 s), up to ``llm.outage_s``
seconds of waiting in all. Per-request retries ride out seconds of trouble; this rides
out minutes. A batch with any answer in it is not an outage: its failures are recorded.
The requests go again with their own seeds, so the run is the one an outage-free run
would give. Replies of the failed sends reach ``on_reply`` too (progress counts them).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable

from culturesim.llm.types import Layer, Reply, Request


class OutageWait:
    def __init__(self, inner: Layer, *, outage_s: float, sleep: Callable[[float], None] = time.sleep,
                 first_pause_s: float = 2.0, max_pause_s: float = 30.0):
        self.inner = inner
        self.outage_s = outage_s
        self.sleep = sleep
        self.first_pause_s = first_pause_s
        self.max_pause_s = max_pause_s

    def generate(self, requests: list[Request], on_reply: Callable[[Reply], None] | None = None) -> list[Reply]:
        if not requests:
            return []
        waited, pause = 0.0, self.first_pause_s
        while True:
            replies = self.inner.generate(requests, on_reply)
            down = all(not r.ok and r.transient for r in replies)
            if not down or waited >= self.outage_s:
                return replies
            wait = min(pause, self.outage_s - waited)
            print(f"every request failed ({replies[0].error}); the server may be down: sending the "
                  f"{len(requests)} request(s) again in {wait:.0f} s (waited {waited:.0f} of "
                  f"llm.outage_s={self.outage_s:.0f} s)", file=sys.stderr, flush=True)
            self.sleep(wait)
            waited += wait
            pause = min(pause * 2, self.max_pause_s)
