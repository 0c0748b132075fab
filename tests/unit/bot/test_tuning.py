"""bot/tuning.py: the patched Rasa behaves as Rasa does, only without the per-turn overheads."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import types
from pathlib import Path
from typing import Any

import pytest

from bot import tuning

jsonschema = pytest.importorskip("jsonschema")


def test_selection_from_the_environment() -> None:
    assert tuning.selected({}) == tuning.PATCHES
    assert tuning.selected({"LOANBOT_RASA_TUNING": "0"}) == ()
    assert tuning.selected({"LOANBOT_RASA_TUNING": "off"}) == ()
    assert tuning.selected({"LOANBOT_RASA_TUNING": "sqlite, http"}) == ("sqlite", "http")
    with pytest.raises(ValueError, match="unknown patch"):
        tuning.selected({"LOANBOT_RASA_TUNING": "turbo"})


def test_jax_is_kept_out_unless_already_loaded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "jax", None)  # whatever was there is back after the test
    del sys.modules["jax"]
    assert tuning.block_unused_optional_module()
    assert sys.modules["jax"] is None
    with pytest.raises(ImportError):
        import jax  # noqa: F401
    loaded = types.ModuleType("jax")
    sys.modules["jax"] = loaded
    assert not tuning.block_unused_optional_module()
    assert sys.modules["jax"] is loaded


def test_tensorflow_loads_without_jax_in_the_serving_process() -> None:
    """What `python -m bot.serve` imports before Rasa, then the patch, then TensorFlow: jax is
    never loaded and TFLite's optional jax converter is simply absent."""
    script = (
        "import sys\n"
        "from bot import serve, tuning\n"
        "assert 'jax' not in sys.modules and 'tensorflow' not in sys.modules\n"
        "tuning.apply(('no_jax',))\n"
        "import tensorflow\n"
        "from tensorflow.lite.python import util\n"
        "assert sys.modules['jax'] is None and 'jaxlib' not in sys.modules\n"
        "assert util._xla_computation is None\n"
        "print('ok', tensorflow.constant(2).numpy() * 21)\n"
    )
    root = Path(__file__).resolve().parents[3]
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    done = subprocess.run([sys.executable, "-c", script], cwd=root, env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split()[-2:] == ["ok", "42"]


RESPONSES: list[Any] = [
    {"events": [{"event": "slot", "name": "topic", "value": "rate"}],
     "responses": [{"text": "您好", "buttons": [{"title": "信用贷", "payload": "/inform"}]}]},
    {"events": [], "responses": []},
    {"events": [{"event": "slot"}], "responses": []},          # slot without name
    {"events": [{"event": 5}], "responses": "x"},              # wrong types
    {"responses": [{"text": 3}]},
    {"events": [{"event": "followup", "name": None}], "responses": [{"custom": {"a": 1}}]},
]


@pytest.mark.parametrize("response", RESPONSES)
def test_cached_validator_accepts_and_refuses_exactly_as_rasa(response: Any) -> None:
    from rasa.core.actions.action import RemoteAction

    action = RemoteAction.__new__(RemoteAction)
    original = RemoteAction.__dict__["_validate_action_result"]
    patched = tuning.cached_action_result_validator()

    def outcome(validate: Any) -> tuple[bool, str]:
        try:
            return validate(action, response), ""
        except jsonschema.ValidationError as err:
            return False, err.message

    assert outcome(patched) == outcome(original)


def test_sqlite_tracker_store_keeps_one_connection_in_wal_mode(tmp_path: Path) -> None:
    from rasa.core import tracker_store
    from rasa.shared.core.domain import Domain
    from rasa.shared.core.events import ActionExecuted, UserUttered
    from rasa.shared.core.trackers import DialogueStateTracker

    saved = (tracker_store.create_engine_kwargs, tracker_store.SQLTrackerStore.__init__)
    try:
        tuning.tune_sql_tracker_store()
        store = tracker_store.SQLTrackerStore(Domain.empty(), dialect="sqlite",
                                              db=str(tmp_path / "t.sqlite"))
        assert type(store.engine.pool).__name__ == "SingletonThreadPool"
        with store.engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 1  # NORMAL

        async def turn() -> DialogueStateTracker | None:
            tracker = DialogueStateTracker("s1", [])
            tracker.update(UserUttered("你好"))
            tracker.update(ActionExecuted("action_listen"))
            await store.save(tracker)
            return await store.retrieve("s1")

        again = asyncio.run(turn())
        assert again is not None and again.latest_message.text == "你好"
    finally:
        tracker_store.create_engine_kwargs, tracker_store.SQLTrackerStore.__init__ = saved


def test_other_databases_get_rasas_own_engine_arguments() -> None:
    from rasa.core import tracker_store

    saved = (tracker_store.create_engine_kwargs, tracker_store.SQLTrackerStore.__init__)
    try:
        tuning.tune_sql_tracker_store()
        assert tracker_store.create_engine_kwargs("sqlite://") == {}
        assert "pool_size" in tracker_store.create_engine_kwargs(
            "postgresql://u@127.0.0.1:5432/x")
    finally:
        tracker_store.create_engine_kwargs, tracker_store.SQLTrackerStore.__init__ = saved


def test_endpoint_sessions_are_kept_per_loop() -> None:
    from rasa.utils import endpoints

    saved = endpoints.EndpointConfig.session
    try:
        tuning.keep_endpoint_sessions()
        endpoint = endpoints.EndpointConfig(url="http://127.0.0.1:9/webhook",
                                            headers={"X-A": "1"})

        async def two() -> tuple[Any, Any]:
            async with endpoint.session() as first:
                pass
            async with endpoint.session() as second:
                pass
            assert not first.closed and first.headers["X-A"] == "1"
            await first.close()
            return first, second

        first, second = asyncio.run(two())
        assert first is second
    finally:
        endpoints.EndpointConfig.session = saved


EVENT_BODIES: list[Any] = [
    [{"event": "resume"}, {"event": "action", "name": "action_listen"}],
    {"event": "slot", "name": "product", "value": "信用贷"},
    [{"event": "slot", "value": 3}],                     # slot without name
    [{"event": "nonsense"}],
    [{"event": "user", "text": 5}],
    "not events",
    [],
]


@pytest.mark.parametrize("body", EVENT_BODIES)
def test_cached_events_validator_accepts_and_refuses_exactly_as_rasa(body: Any) -> None:
    from rasa import server

    class Request:
        json = body

    def outcome(fn: Any) -> tuple[Any, ...]:
        try:
            fn(Request())
        except server.ErrorResponse as err:
            return (err.status, err.error_info["message"])
        return ("ok",)

    assert outcome(tuning.cached_events_validator()) == outcome(
        server.validate_events_in_request_body)


def test_tensorflow_threads_default_to_one_unless_set(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TF_INTER_OP_PARALLELISM_THREADS", "restored afterwards")
    monkeypatch.delenv("TF_INTER_OP_PARALLELISM_THREADS")
    monkeypatch.setenv("TF_INTRA_OP_PARALLELISM_THREADS", "4")
    monkeypatch.setattr(tuning, "_applied", set())
    tuning.apply(("tf_threads",))
    import os

    assert os.environ["TF_INTER_OP_PARALLELISM_THREADS"] == "1"
    assert os.environ["TF_INTRA_OP_PARALLELISM_THREADS"] == "4"  # an operator's choice stays


def test_gc_threshold_from_the_environment() -> None:
    assert tuning.gc_young_threshold({}) == 5_000
    assert tuning.gc_young_threshold({"LOANBOT_GC_YOUNG_THRESHOLD": "0"}) == 0
    assert tuning.gc_young_threshold({"LOANBOT_GC_YOUNG_THRESHOLD": " 5000 "}) == 5000
    for bad in ("many", "-1"):
        with pytest.raises(ValueError, match="LOANBOT_GC_YOUNG_THRESHOLD"):
            tuning.gc_young_threshold({"LOANBOT_GC_YOUNG_THRESHOLD": bad})


def test_the_heap_is_settled_right_after_rasa_loads_its_model(
        monkeypatch: pytest.MonkeyPatch) -> None:
    import inspect

    from rasa import server
    from rasa.core import run

    from handoff import heap

    real = run.load_agent_on_start
    order: list[Any] = []

    async def fake_load(model_path: Any, endpoints: Any, remote_storage: Any, app: Any,
                        loop: Any) -> str:
        order.append(("load", model_path))
        return "agent"

    monkeypatch.setattr(run, "load_agent_on_start", fake_load)
    monkeypatch.setattr(server, "_load_agent", server._load_agent)  # restored after the test
    monkeypatch.setattr(heap, "settle", lambda threshold: order.append(("settle", threshold)))
    tuning.settle_heap_once_loaded(123)
    wrapped = run.load_agent_on_start
    assert wrapped is not fake_load
    # Sanic calls the listener with Rasa's own arguments: the wrapper takes the same ones
    assert list(inspect.signature(wrapped).parameters) == list(
        inspect.signature(real).parameters)
    agent = asyncio.run(wrapped("m.tar.gz", None, None, None, None))
    assert agent == "agent"
    assert order == [("load", "m.tar.gz"), ("settle", 123)]


def test_a_replaced_model_is_collectable_and_the_heap_settled_again_once_it_is_gone(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """PUT /model loads a new agent through rasa.server._load_agent; the old one must not stay
    frozen (a frozen object is never collected)."""
    import gc

    from rasa import server
    from rasa.core import run
    from rasa.core.agent import Agent

    from handoff import heap

    calls: list[Any] = []
    monkeypatch.setattr(run, "load_agent_on_start", run.load_agent_on_start)
    monkeypatch.setattr(heap, "settle", lambda threshold, **_: calls.append(("settle", threshold))
                        or True)
    monkeypatch.setattr(gc, "unfreeze", lambda: calls.append("unfreeze"))
    monkeypatch.setattr(tuning, "RESETTLE_SECONDS", 0.01)
    live: dict[str, Any] = {"old": Agent()}  # the agent Rasa serves with now

    async def fake_load_agent(**kwargs: Any) -> Agent:
        calls.append("load")
        return Agent()

    monkeypatch.setattr(server, "_load_agent", fake_load_agent)
    tuning.settle_heap_once_loaded(77)

    async def switch() -> None:
        live["new"] = await server._load_agent(model_path="m2.tar.gz")
        await asyncio.sleep(0.05)  # Rasa still holds the old agent: not settled yet
        assert ("settle", 77) not in calls
        del live["old"]  # app.ctx.agent = new_agent; the last turn on the old one ends
        for _ in range(100):
            if ("settle", 77) in calls:
                break
            await asyncio.sleep(0.01)

    asyncio.run(switch())
    assert calls[:2] == ["unfreeze", "load"]
    assert calls[-1] == ("settle", 77)


def test_the_heap_stays_unfrozen_if_an_old_agent_never_goes(
        monkeypatch: pytest.MonkeyPatch) -> None:
    from rasa.core.agent import Agent

    from handoff import heap

    settled: list[int] = []
    monkeypatch.setattr(heap, "settle", lambda threshold, **_: settled.append(threshold))
    monkeypatch.setattr(tuning, "RESETTLE_SECONDS", 0.01)
    agents = [Agent(), Agent()]

    async def look() -> None:
        assert tuning.resettle_when_one_agent(77, tries_left=3) is False
        await asyncio.sleep(0.2)  # the two later looks find both agents too, and stop

    asyncio.run(look())
    assert settled == []
    assert len(agents) == 2


def test_a_failed_model_load_still_settles_the_heap_again(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """PUT /model with a bad file: Rasa keeps the model it had, unfrozen by the attempt."""
    from rasa import server
    from rasa.core import run

    from handoff import heap

    settled: list[int] = []
    monkeypatch.setattr(run, "load_agent_on_start", run.load_agent_on_start)
    monkeypatch.setattr(heap, "settle", lambda threshold, **_: settled.append(threshold))
    monkeypatch.setattr(tuning, "RESETTLE_SECONDS", 0.01)

    async def failing_load(**kwargs: Any) -> Any:
        raise OSError("no such model file")

    monkeypatch.setattr(server, "_load_agent", failing_load)
    tuning.settle_heap_once_loaded(77)

    async def attempt() -> None:
        with pytest.raises(OSError, match="no such model file"):
            await server._load_agent(model_path="missing.tar.gz")
        await asyncio.sleep(0.2)

    asyncio.run(attempt())
    assert settled == [77]


def test_the_empty_domain_check_answers_as_rasas(monkeypatch: pytest.MonkeyPatch) -> None:
    from rasa.shared.core.domain import Domain

    rasas = Domain.is_empty
    root = Path(__file__).resolve().parents[3]
    domains = [Domain.empty(), Domain.load(str(root / "bot" / "domain")),
               Domain.from_dict({"intents": ["greet"]}),
               Domain.from_dict({"responses": {"utter_hi": [{"text": "你好"}]}})]
    expected = [rasas(domain) for domain in domains]
    assert expected == [True, False, False, False]
    monkeypatch.setattr(Domain, "is_empty", rasas)  # restored after the test
    tuning.compare_with_empty_domain_built_once()
    assert Domain.is_empty is not rasas
    assert [domain.is_empty() for domain in domains] == expected
    assert Domain.empty().is_empty()


def test_every_patch_has_an_installer_applied_once_in_order(
        monkeypatch: pytest.MonkeyPatch) -> None:
    assert list(tuning.INSTALLERS) == list(tuning.PATCHES)
    calls: list[str] = []
    monkeypatch.setattr(tuning, "_applied", set())
    monkeypatch.setattr(tuning, "INSTALLERS",
                        {name: (lambda name=name: calls.append(name)) for name in tuning.PATCHES})
    tuning.apply(("heap", "rules", "no_jax"))
    tuning.apply(("rules", "sqlite"))
    assert calls == ["no_jax", "rules", "heap", "sqlite"]
