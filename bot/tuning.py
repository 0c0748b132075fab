"""Per-turn overheads of Rasa 3.6 that cost throughput without buying anything, removed.

Measured with py-spy under load (docs/benchmarks.md): of Rasa's CPU per turn, about a third
went to `jsonschema.validate` re-checking the *schema* of the action-server response on every
action call, and the SQLite tracker store opened a new connection per transaction (SQLAlchemy
1.4 uses NullPool for SQLite files) and committed in rollback-journal mode with a full fsync,
blocking Rasa's event loop.

`apply()` patches, in this process only:

- `jax` is never imported (`sys.modules["jax"] = None`, before TensorFlow is). TensorFlow 2.12
  depends on jax only for TFLite's jax converter, which it imports inside `try/except
  ImportError` and Rasa never calls; loaded, jax and jaxlib cost each Rasa process ≈ 105 MB of
  RSS (≈ 66 MB of PSS with two Rasa sharing the library pages) and ≈ 2 s of its start.

- `RemoteAction._validate_action_result`: the same schema and the same error (jsonschema's
  `best_match`, message amended exactly as Rasa does), with the validator built once; the
  same for `rasa.server.validate_events_in_request_body` (the tracker-events endpoint).
- `SQLTrackerStore` on a SQLite file: one kept connection per thread and WAL journal with
  `synchronous=NORMAL` (as the gateway's own store): commits no longer fsync; a power loss may
  lose the last turns, a process crash does not. Other databases are untouched.

- `EndpointConfig.session` (action server calls): one kept aiohttp session per endpoint and
  event loop instead of a new session and TCP connection per action call. Idle connections
  are dropped after 2 s, before the action server's (Sanic) 5 s keep-alive ends, so a request
  never goes out on a connection the server is closing.

- `SQLTrackerStore.retrieve/save`: the tracker a turn saved is handed to the next turn of
  the same conversation instead of being rebuilt from every stored event, after one indexed
  query shows the database has not moved on; every event is still inserted as Rasa would
  (`bot/tracker_cache.py`, which says why this stays exact).

- `DaskGraphRunner.run`: the same graph nodes called in plain topological order instead of
  through dask's scheduler (`bot/graph_runner.py`).

- `RasaModel._rasa_predict` and `Features._combine_sparse_features`: DIET's one concrete
  prediction function called directly, and two COO feature matrices joined without scipy's
  general block code (`bot/fast_inference.py`, which says why both are exact).

- `RasaModel.load` (DIET): the model built by its first prediction with the checkpoint
  already open, instead of by a one-batch training step whose traced graphs and optimizer
  slots it then keeps; the same weights, proven restored (`bot/lean_model_load.py`).
  ≈ 186 MB less private memory per Rasa process, the model loaded ≈ 9 s sooner; that first
  prediction eager, and the prediction function not traced where `diet_forward` predicts
  (≈ 3 s sooner again).

- TensorFlow's inter- and intra-op thread pools of one thread each (Rasa's
  `TF_INTER_OP_PARALLELISM_THREADS` / `TF_INTRA_OP_PARALLELISM_THREADS`, unless already set):
  DIET predicts one message at a time, too little to split across threads, and idle pool
  threads spin on cores the other processes need (measured with two Rasa behind the gateway:
  about 3 % more messages per second).

- Once the model is loaded, the objects alive then (the model is ≈ 630,000 of them) are frozen
  out of the garbage collector's sight and young collections run every 5,000 allocations
  instead of 700 (`handoff/heap.py` says why; `LOANBOT_GC_YOUNG_THRESHOLD`, 0 = Python's
  collector as it is): a full collection of a loaded Rasa took 344 ms, during which it
  answers no one; frozen, ≈ 0. Loading another model (`PUT /model`) unfreezes the heap
  first, so the replaced model can be collected, and settles it again once it is gone.

- DIET's input for one message built from its sparse feature matrices instead of through a
  deep-copied join, `RasaModelData` and a data generator (`bot/diet_batch.py`); DIET's
  prediction for it computed with numpy from the model's weights instead of by TensorFlow
  (`bot/diet_forward.py`, equal to float32 rounding); the count-vector featurizers'
  matrices without scikit-learn's per-call set-up (`bot/count_vectors.py`); RulePolicy's
  rule search with each rule parsed once (`bot/rule_matching.py`); `Domain.is_empty` against
  an empty domain built once; a slot's shallow copy made directly instead of through
  `copy.copy`'s reduce path (`bot/slot_copy.py`); a conversation's past states continued
  from the last computation instead of replayed from its first event (`bot/past_states.py`);
  a conversation's applied events continued from the last call instead of refolded from its
  first event (`bot/applied_events.py`); an event's class found by its type name in a table
  instead of a walk of every subclass (`bot/event_types.py`); the deep copies Rasa makes only
  as arguments of its debug log, and its slot listing for that log, skipped while its debug
  log is off (`bot/log_copies.py`). Each says why its result is Rasa's, and a test compares.

`LOANBOT_RASA_TUNING`: `1`/`all` (default) applies everything, `0` nothing (then
`python -m bot.serve` is plain `rasa`), or a comma list of `no_jax`, `validator`, `sqlite`,
`http`, `tracker_cache`, `graph`, `inference`, `lean_load`, `diet_batch`, `diet_forward`,
`count_vectors`, `rules`, `domain_check`, `slot_copy`, `past_states`, `applied_events`,
`event_types`, `log_copies`, `tf_threads`, `heap`.
"""

from __future__ import annotations

import asyncio
import gc
import importlib
import os
import sys
from collections.abc import Callable, Mapping
from http import HTTPStatus
from typing import Any

ENV_SWITCH = "LOANBOT_RASA_TUNING"
PATCHES = ("no_jax", "validator", "sqlite", "http", "tracker_cache", "graph", "inference",
           "lean_load", "diet_batch", "diet_forward", "count_vectors", "rules", "domain_check",
           "slot_copy", "past_states", "applied_events", "event_types", "log_copies",
           "tf_threads", "heap")
GC_SETTING = "LOANBOT_GC_YOUNG_THRESHOLD"
UNUSED_OPTIONAL_MODULE = "jax"
TF_THREAD_SETTINGS = ("TF_INTER_OP_PARALLELISM_THREADS", "TF_INTRA_OP_PARALLELISM_THREADS")
KEEPALIVE_SECONDS = 2.0
_applied: set[str] = set()


def selected(environ: Mapping[str, str] | None = None) -> tuple[str, ...]:
    """The patches the environment asks for (all by default)."""
    value = (environ if environ is not None else os.environ).get(ENV_SWITCH, "1")
    value = value.strip().lower()
    if value in ("1", "all", "true", "yes", "on", ""):
        return PATCHES
    if value in ("0", "none", "false", "no", "off"):
        return ()
    names = tuple(n.strip() for n in value.split(",") if n.strip())
    unknown = [n for n in names if n not in PATCHES]
    if unknown:
        raise ValueError(f"{ENV_SWITCH}: unknown patch {unknown}; choose from {PATCHES}")
    return names


def cached_action_result_validator() -> Any:
    """A replacement for RemoteAction._validate_action_result: the validator built once, and
    each event checked against its own type (bot/event_validation.py); the same error
    (jsonschema's `best_match`, message amended exactly as Rasa does) for what is invalid."""
    from jsonschema import ValidationError
    from jsonschema.exceptions import best_match
    from rasa.core.actions.action import RemoteAction
    from rasa.shared.constants import DOCS_BASE_URL

    from bot.event_validation import ActionResultValidator

    validator = ActionResultValidator(RemoteAction.action_response_format_spec())

    def _validate_action_result(self: Any, result: dict[str, Any]) -> bool:
        if validator.accepts(result):
            return True
        error = best_match(validator.full.iter_errors(result))
        if error is None:
            return True
        assert isinstance(error, ValidationError)
        error.message += (
            f". Failed to validate Action server response from API, "
            f"make sure your response from the Action endpoint is valid. "
            f"For more information about the format visit "
            f"{DOCS_BASE_URL}/custom-actions"
        )
        raise error

    return _validate_action_result


def cached_events_validator() -> Any:
    """A replacement for rasa.server.validate_events_in_request_body (the tracker-events
    endpoint the gateway calls to resume a conversation), validated as above: same schema,
    same error response, same text."""
    from jsonschema.exceptions import best_match
    from rasa import server
    from rasa.server import ErrorResponse
    from rasa.shared.utils.schemas.events import EVENTS_SCHEMA

    from bot.event_validation import EventListValidator

    validator = EventListValidator(EVENTS_SCHEMA)

    def validate_events_in_request_body(request: Any) -> None:
        events = request.json if isinstance(request.json, list) else [request.json]
        if validator.accepts(events):
            return
        error = best_match(validator.full.iter_errors(events))
        if error is not None:
            raise ErrorResponse(
                HTTPStatus.BAD_REQUEST,
                "BadRequest",
                f"Failed to validate the events format. "
                f"For more information about the format visit the docs. Error: {error}",
                help_url=server._docs("/pages/http-api"),
            ) from error

    return validate_events_in_request_body


def compare_with_empty_domain_built_once() -> None:
    """`Domain.is_empty` against the empty domain's dict built once, not on every call.

    Rasa asks `self.domain.is_empty()` for every message it parses (its check for intents and
    entities the domain lacks), and each call builds a whole empty `Domain` from `{}` to
    compare with: ≈ 0.14 ms of a ≈ 10 ms turn. The empty domain's dict depends on Rasa's
    defaults only, so it is built once; this domain's own dict is still built every call."""
    from rasa.shared.core.domain import Domain

    empty = Domain.empty().as_dict()

    def is_empty(self: Any) -> bool:
        return bool(self.as_dict() == empty)

    Domain.is_empty = is_empty


def sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cursor = dbapi_conn.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def tune_sql_tracker_store() -> None:
    import sqlalchemy as sa
    from rasa.core import tracker_store
    from sqlalchemy.pool import SingletonThreadPool

    original_kwargs = tracker_store.create_engine_kwargs

    def create_engine_kwargs(url: Any) -> dict[str, Any]:
        parsed = sa.engine.make_url(str(url)) if not isinstance(url, sa.engine.URL) else url
        if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
            return dict(original_kwargs(url))
        # Rasa uses the store from its event-loop thread only: one connection, kept.
        return {"poolclass": SingletonThreadPool}

    tracker_store.create_engine_kwargs = create_engine_kwargs
    original_init = tracker_store.SQLTrackerStore.__init__

    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        original_init(self, *args, **kwargs)
        if self.engine.dialect.name == "sqlite":
            sa.event.listen(self.engine, "connect", sqlite_pragmas)
            self.engine.dispose()  # reconnect with the pragmas

    tracker_store.SQLTrackerStore.__init__ = __init__


class _KeptSession:
    """`async with` over a shared ClientSession that leaves it open on exit."""

    def __init__(self, session: Any) -> None:
        self._session = session

    async def __aenter__(self) -> Any:
        return self._session

    async def __aexit__(self, *exc: object) -> None:
        return None


def keep_endpoint_sessions() -> None:
    import asyncio

    import aiohttp
    from rasa.utils import endpoints

    original = endpoints.EndpointConfig.session
    kept: dict[tuple[int, int], aiohttp.ClientSession] = {}

    def session(self: Any) -> Any:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return original(self)
        key = (id(self), id(loop))
        current = kept.get(key)
        if current is None or current.closed:
            # the same headers, auth and timeout as Rasa's EndpointConfig.session()
            auth = (aiohttp.BasicAuth(self.basic_auth["username"], self.basic_auth["password"])
                    if self.basic_auth else None)
            current = aiohttp.ClientSession(
                headers=self.headers, auth=auth,
                timeout=aiohttp.ClientTimeout(total=endpoints.DEFAULT_REQUEST_TIMEOUT),
                connector=aiohttp.TCPConnector(keepalive_timeout=KEEPALIVE_SECONDS),
            )
            kept[key] = current
        return _KeptSession(current)

    endpoints.EndpointConfig.session = session


def block_unused_optional_module() -> bool:
    """Make `import jax` fail as if jax were not installed, unless it is loaded already
    (then unloading it would free nothing and could break whoever holds it)."""
    if sys.modules.get(UNUSED_OPTIONAL_MODULE) is not None:
        return False
    sys.modules[UNUSED_OPTIONAL_MODULE] = None  # type: ignore[assignment]
    return True


def gc_young_threshold(environ: Mapping[str, str] | None = None) -> int:
    from handoff import heap

    raw = (environ if environ is not None else os.environ).get(GC_SETTING, "").strip()
    if not raw:
        return heap.YOUNG_THRESHOLD
    try:
        value = int(raw)
    except ValueError:
        raise ValueError(f"{GC_SETTING} must be an integer, got {raw!r}") from None
    if value < 0:
        raise ValueError(f"{GC_SETTING} must be 0 or more, got {value}")
    return value


def settle_heap_once_loaded(young_threshold: int) -> None:
    """Rasa loads its model in a listener that runs before the server takes requests
    (`rasa.core.run.load_agent_on_start`); settle the heap right after it.

    A frozen object is never collected, so a model that `PUT /model` (the trainer's deploy)
    or `POST /model/test` replaces would stay in memory for good: before such a load the
    heap is unfrozen, and it is settled again once only one agent is left alive."""
    from rasa import server
    from rasa.core import run

    from handoff import heap

    original_start = run.load_agent_on_start
    original_load = server._load_agent

    async def load_agent_on_start(model_path: Any, endpoints: Any, remote_storage: Any,
                                  app: Any, loop: Any) -> Any:
        agent = await original_start(model_path, endpoints, remote_storage, app, loop)
        heap.settle(young_threshold)
        return agent

    async def _load_agent(*args: Any, **kwargs: Any) -> Any:
        gc.unfreeze()  # the model in use may be dropped after this load
        try:
            return await original_load(*args, **kwargs)
        finally:  # a failed load leaves the old model in use: settle again all the same
            asyncio.get_running_loop().call_later(
                RESETTLE_SECONDS, resettle_when_one_agent, young_threshold, RESETTLE_TRIES)

    run.load_agent_on_start = load_agent_on_start
    server._load_agent = _load_agent


RESETTLE_SECONDS = 5.0  # the replaced agent's last turns finish before it is dropped
RESETTLE_TRIES = 12


def resettle_when_one_agent(young_threshold: int, tries_left: int) -> bool:
    """Settle the heap if no agent but the one in use is alive; otherwise look again later,
    and after the last try leave the heap unfrozen (only slower collections, no leak)."""
    from rasa.core.agent import Agent

    from handoff import heap

    gc.collect()  # a replaced agent that is garbage goes now, before the count
    if sum(1 for obj in gc.get_objects() if isinstance(obj, Agent)) <= 1:
        return heap.settle(young_threshold, collected=True)
    if tries_left > 1:
        asyncio.get_running_loop().call_later(
            RESETTLE_SECONDS, resettle_when_one_agent, young_threshold, tries_left - 1)
    return False


def install_validators() -> None:
    from rasa import server
    from rasa.core.actions.action import RemoteAction

    RemoteAction._validate_action_result = cached_action_result_validator()
    server.validate_events_in_request_body = cached_events_validator()


def one_thread_tensorflow_pools() -> None:
    for name in TF_THREAD_SETTINGS:  # read by Rasa when it sets TensorFlow up
        os.environ.setdefault(name, "1")


def _module_install(module: str) -> Callable[[], None]:
    """The `install()` of one of the project's patch modules, imported when it is applied."""
    return lambda: importlib.import_module(module).install()


# Applied in PATCHES' order: `no_jax` first, before the others import Rasa and TensorFlow.
INSTALLERS: dict[str, Callable[[], object]] = {
    "no_jax": block_unused_optional_module,
    "validator": install_validators,
    "sqlite": tune_sql_tracker_store,
    "http": keep_endpoint_sessions,
    "tracker_cache": _module_install("bot.tracker_cache"),
    "graph": _module_install("bot.graph_runner"),
    "inference": _module_install("bot.fast_inference"),
    "lean_load": _module_install("bot.lean_model_load"),
    "diet_batch": _module_install("bot.diet_batch"),
    "diet_forward": _module_install("bot.diet_forward"),
    "count_vectors": _module_install("bot.count_vectors"),
    "rules": _module_install("bot.rule_matching"),
    "domain_check": compare_with_empty_domain_built_once,
    "slot_copy": _module_install("bot.slot_copy"),
    "past_states": _module_install("bot.past_states"),
    "applied_events": _module_install("bot.applied_events"),
    "event_types": _module_install("bot.event_types"),
    "log_copies": _module_install("bot.log_copies"),
    "tf_threads": one_thread_tensorflow_pools,
    "heap": lambda: settle_heap_once_loaded(gc_young_threshold()),
}


def apply(names: tuple[str, ...] = PATCHES) -> None:
    """Patch this process's Rasa (each patch at most once)."""
    for name in PATCHES:
        if name in names and name not in _applied:
            INSTALLERS[name]()
            _applied.add(name)
