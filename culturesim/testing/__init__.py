"""For tests and benchmarks only: stand-ins that misbehave on purpose.

- ``faults``: the ``faults/<spec>`` model, echo's replies with injected failures
- ``fakeserver``: a FAKE OpenAI-compatible server (instant fixed replies, injected errors)

Nothing here is a model, and nothing here is imported by a run unless its scenario
names ``faults/...``.
"""
