"""The written contract between a kind's model and the runner.

The runner knows nothing of any study: it builds the network through the model class,
hands the model its door to the language models once, calls :meth:`KindModel.step` and
writes the :class:`StepRecord` it returns, and resumes a killed run the one way the model
declares. Everything a step produced travels in its return value, never in attributes the
runner has to know to read.
"""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Literal

import networkx as nx

from culturesim.llm.types import Reply, Request


@dataclass
class StepRecord:
    """What one step produced: rows of the ideas table (``store.IDEAS_SCHEMA``), the exact
    messages behind them (``store.PROMPTS_SCHEMA``), and rows of the kind's own per-step
    tables by name (schemas in the kind's ``tables`` module)."""

    ideas: list[dict] = field(default_factory=list)
    prompts: list[dict] = field(default_factory=list)
    tables: dict[str, list[dict]] = field(default_factory=dict)


class Door:
    """A model's only way to its language models, handed in once.

    ``generate`` sends one batch (all requests of a phase of a step, so that batching and
    concurrency live in the backend) and returns the replies in order; ``open`` gives a door
    to another model on the same cache (exposure's AI pool). The runner listens to replies
    for its progress bar through ``on_reply``; a model never needs to.

    Agents on other models: ``route(spec)`` names the model of an ``llm`` block (opened once
    per distinct block, "" for the scenario's own), and a request carrying that name in
    ``Request.route`` goes to it. A batch that spans models is split: each model gets its
    share as one batch, all models at once (the door's own model on the calling thread, every
    other on a thread of its own, always the same one, so each backend keeps its own event
    loop and connection pool), and the replies come back in request order.
    """

    def __init__(self, llm: Any, opener: Callable[[Any], Any] | None = None):
        self._llm = llm  # anything with generate(requests, on_reply) -> replies
        self._opener = opener
        self.on_reply: Callable[[Reply], None] | None = None
        self._routes: dict[str, tuple[Any, Any]] = {}  # route -> (spec, llm)
        self._threads: dict[str, ThreadPoolExecutor] = {}
        self._lock = threading.Lock()

    @classmethod
    def of(cls, generate: Callable[[list[Request]], list[Reply]]) -> Door:
        """A door onto a plain function (tests, benchmarks): ``generate(requests) -> replies``,
        every route included (the requests carry their ``route``)."""

        class _Plain:
            def generate(self, requests, on_reply=None):
                return generate(requests)

        return cls(_Plain())

    def route(self, spec: Any) -> str:
        """The route of the model an llm block names: "" for the door's own model, else the
        model string (``#2``, ``#3``... for further blocks on a model string already named)."""
        own = getattr(self._llm, "spec", None)
        if spec == own:
            return ""
        for key, (known, _) in self._routes.items():
            if known == spec:
                return key
        key, k = spec.model, 1
        while key in self._routes or key == getattr(own, "model", ""):  # the own model's string reads as #1
            k += 1
            key = f"{spec.model}#{k}"
        self._routes[key] = (spec, self._opener(spec) if self._opener is not None else self._llm)
        return key

    def generate(self, requests: list[Request]) -> list[Reply]:
        if not requests:
            return []
        routes = {r.route for r in requests}
        if routes <= {""} or self._opener is None:  # one model (or a plain function): as it always was
            return self._llm.generate(requests, self.on_reply)
        unknown = routes - set(self._routes) - {""}
        if unknown:
            raise KeyError(f"no model was routed as {sorted(unknown)[0]!r} (Door.route opens one)")
        shares: dict[str, list[int]] = {}
        for i, r in enumerate(requests):
            shares.setdefault(r.route, []).append(i)
        on_reply = self._locked(self.on_reply)
        running = {key: self._thread(key).submit(self._model(key).generate, [requests[i] for i in idx], on_reply)
                   for key, idx in shares.items() if key != ""}
        replies: list[Reply | None] = [None] * len(requests)
        try:  # the door's own model on the calling thread, as when it is the only one
            if "" in shares:
                for i, reply in zip(shares[""], self._llm.generate([requests[i] for i in shares[""]], on_reply),
                                    strict=True):
                    replies[i] = reply
        except BaseException:  # Ctrl-C, SIGTERM: stop now, whatever the other models are doing
            for future in running.values():
                future.cancel()
            raise
        for key, future in running.items():
            for i, reply in zip(shares[key], future.result(), strict=True):
                replies[i] = reply
        return replies  # type: ignore[return-value]

    def _model(self, key: str) -> Any:
        return self._routes[key][1]

    def _thread(self, key: str) -> ThreadPoolExecutor:
        if key not in self._threads:
            self._threads[key] = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"route-{len(self._threads)}")
        return self._threads[key]

    def _locked(self, fn: Callable[[Reply], None] | None) -> Callable[[Reply], None] | None:
        if fn is None:
            return None

        def report(reply: Reply) -> None:
            with self._lock:
                fn(reply)

        return report

    def open(self, spec: Any) -> Door:
        if self._opener is None:
            raise RuntimeError("this door opens no other model")
        return Door(self._opener(spec), self._opener)

    def close(self) -> None:
        """Stop the route threads (the models themselves are closed by whoever opened them);
        a batch still in flight after an interrupted step is not waited for."""
        for pool in self._threads.values():
            pool.shutdown(wait=False, cancel_futures=True)
        self._threads.clear()


class KindModel(ABC):
    """What every kind's model is, beside a ``mesa.Model``: ``class M(KindModel, mesa.Model)``.

    Class attributes declare how the runner treats the kind: ``uses_llm`` (False: no door,
    no ``llm`` block), ``resume`` (``"restore"``: rebuilt from the recorded ideas of the
    completed steps; ``"replay"``: deterministic from its seed, so the completed steps are
    simulated again), and ``progress`` (the unit of its progress bar: model requests, whose
    number :meth:`planned_requests` tells, or steps).

    The runner builds it as ``Model(scenario, graph, llm, run_id, base_dir=...)``: ``llm`` is the
    :class:`Door` (None for kinds that use no language model), ``base_dir`` resolves the
    scenario's relative paths. (Not declared here: mesa.Model's own ``__init__`` passes its
    arguments on along the MRO.)
    """

    uses_llm: ClassVar[bool] = True
    resume: ClassVar[Literal["restore", "replay"]] = "restore"
    progress: ClassVar[Literal["requests", "steps"]] = "requests"

    first_step: int  # 0 for kinds with a step 0 (seed ideas, a first population), else 1

    def _wrapped_step(self, *args: Any, **kwargs: Any) -> StepRecord:
        """mesa.Model wraps ``step`` to count steps and drops what it returns; this keeps the
        count and returns the record. It takes effect because a kind's model lists
        KindModel before mesa.Model in its bases (the runner says so if one does not)."""
        self.steps += 1
        return self._user_step(*args, **kwargs)

    @classmethod
    @abstractmethod
    def build_graph(cls, scenario: Any, base_dir: Path | None = None) -> nx.Graph:
        """The scenario's network; ``base_dir`` resolves relative paths (edge lists)."""

    @classmethod
    def network_summary(cls, scenario: Any, graph: nx.Graph) -> str:
        """How ``culturesim validate`` describes the network."""
        net = getattr(scenario, "network", None)
        if net is None:
            return "no network (panmictic)"
        return f"{net.topology} network with {graph.number_of_edges()} edges"

    @property
    @abstractmethod
    def next_step(self) -> int:
        """The step the next call of :meth:`step` runs."""

    @abstractmethod
    def step(self) -> StepRecord:
        """Run the next step and return what it produced."""

    @abstractmethod
    def agents_table(self) -> list[dict]:
        """One row per agent (``agents.parquet``), written when the run starts."""

    def tables(self) -> dict[str, dict]:
        """The per-step tables this run writes (name -> polars schema), a subset of the
        kind's ``tables.TABLES`` chosen by the scenario."""
        return {}

    def planned_requests(self, first: int, last: int) -> int:
        """Model requests steps first..last will make (progress and ETA; kinds counting requests)."""
        raise NotImplementedError(f"{type(self).__name__} counts its progress in steps")

    def restore(self, ideas: list[dict]) -> None:
        """Rebuild the state after the completed steps from their recorded idea rows."""
        raise NotImplementedError(f"{type(self).__name__} resumes by replay")

    def replay(self, completed: int) -> None:
        """Simulate the first ``completed`` steps again, writing nothing."""
        raise NotImplementedError(f"{type(self).__name__} resumes by restore")
