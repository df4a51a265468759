"""Language models behind one door: ``culturesim.llm.client.LLM`` (built in door.py).

Layers, outermost first: cache.py, outage.py, retry.py; then one backend from
backends/. types.py holds what goes in and comes out (Request, Reply); local.py and
local_batch.py run the embedded model; limits.py shares a server's concurrency across
the runs of a sweep.
"""
