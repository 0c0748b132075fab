"""bot/inprocess_actions.py: Rasa's own RemoteAction gives the same result whether the action
runs over HTTP on the action server or inside Rasa's process: the same events and replies for
real actions (with the loan database), the same exceptions for a rejected, crashed or unknown
action, and an action cannot reach into Rasa's tracker in either case."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from tests.stack import BIN, ROOT, Service, _spawn, _wait_until_up, free_port, seed_loan_db

pytest.importorskip("rasa")

from rasa.core.actions.action import ActionExecutionRejection, RemoteAction  # noqa: E402
from rasa.core.channels.channel import CollectingOutputChannel  # noqa: E402
from rasa.core.nlg import TemplatedNaturalLanguageGenerator  # noqa: E402
from rasa.shared.core.domain import Domain  # noqa: E402
from rasa.shared.core.events import (  # noqa: E402
    ActionExecuted,
    SlotSet,
    UserUttered,
)
from rasa.shared.core.trackers import DialogueStateTracker  # noqa: E402
from rasa.shared.exceptions import RasaException  # noqa: E402
from rasa.utils.endpoints import EndpointConfig  # noqa: E402

from bot import inprocess_actions  # noqa: E402

pytestmark = [pytest.mark.integration]

PACKAGE = "tests.integration.inprocess_sample_actions"
DOMAIN = Domain.load(str(ROOT / "bot" / "domain"))


@pytest.fixture(scope="module")
def loan_db(tmp_path_factory: pytest.TempPathFactory) -> str:
    return seed_loan_db(tmp_path_factory.mktemp("loans"))


@pytest.fixture(scope="module")
def action_server(loan_db: str, tmp_path_factory: pytest.TempPathFactory) -> Any:
    port = free_port()
    log = tmp_path_factory.mktemp("action-server") / "actions.log"
    env = {"SANIC_HOST": "127.0.0.1", "LOAN_DB_URL": loan_db}
    process = _spawn([str(BIN / "python"), "-m", "rasa_sdk", "--actions", PACKAGE,
                      "-p", str(port)], env, log)
    service = Service("action server", process, f"http://127.0.0.1:{port}", log, env)
    _wait_until_up(service, f"{service.url}/health", 90)
    yield service
    service.stop()


@pytest.fixture
def endpoints(action_server: Service, loan_db: str,
              monkeypatch: pytest.MonkeyPatch) -> tuple[EndpointConfig, EndpointConfig]:
    monkeypatch.setenv("LOAN_DB_URL", loan_db)
    remote = EndpointConfig(url=f"{action_server.url}/webhook")
    return remote, inprocess_actions.InProcessActions(remote, PACKAGE)


def tracker(*events: Any) -> DialogueStateTracker:
    return DialogueStateTracker.from_events(
        "borrower-1", [ActionExecuted("action_listen"), *events], slots=DOMAIN.slots)


def run(endpoint: EndpointConfig, name: str, state: DialogueStateTracker) -> Any:
    """Rasa's RemoteAction.run; its result as comparable data, or the exception it raised."""
    action = RemoteAction(name, endpoint)
    nlg = TemplatedNaturalLanguageGenerator(DOMAIN.responses)
    try:
        events = asyncio.run(action.run(CollectingOutputChannel(), nlg, state, DOMAIN))
    except Exception as exc:  # compared below: the same type and message either way
        return type(exc), str(exc).replace(str(endpoint.url), "URL")
    return [{k: v for k, v in e.as_dict().items() if k != "timestamp"} for e in events]


CASES = {
    "rate": (
        "action_answer_rate",
        [UserUttered("信用贷利率多少", {"name": "ask_rate", "confidence": 0.97}),
         SlotSet("product", "credit")],
    ),
    "repayment": (
        "action_answer_repayment",
        [UserUttered("借5万分12期等额本息", {"name": "ask_repayment", "confidence": 0.95}),
         SlotSet("product", "credit"), SlotSet("amount", 50000.0), SlotSet("term", 12.0),
         SlotSet("repayment_method", "equal_installment")],
    ),
    "progress (loan database)": (
        "action_report_progress",
        [UserUttered("我的申请到哪了", {"name": "ask_progress", "confidence": 0.93}),
         SlotSet("verified", True), SlotSet("borrower_id", "B0001"),
         SlotSet("application_ids", ["LN20261123001"])],
    ),
    "sensitive intent hands off": (
        "action_answer_rate",
        [UserUttered("我要投诉你们", {"name": "complaint", "confidence": 0.99})],
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_real_actions_answer_alike(
    case: str, endpoints: tuple[EndpointConfig, EndpointConfig]
) -> None:
    name, events = CASES[case]
    remote, inprocess = endpoints
    over_http = run(remote, name, tracker(*events))
    assert isinstance(over_http, list) and over_http, over_http  # a real answer, not an error
    assert run(inprocess, name, tracker(*events)) == over_http


@pytest.mark.parametrize("name, error", [
    ("action_test_reject", ActionExecutionRejection),
    ("action_test_crash", RasaException),
    ("action_does_not_exist", RasaException),
])
def test_failures_raise_what_rasa_raises_over_http(
    name: str, error: type[Exception], endpoints: tuple[EndpointConfig, EndpointConfig]
) -> None:
    remote, inprocess = endpoints
    over_http = run(remote, name, tracker())
    assert isinstance(over_http, tuple) and issubclass(over_http[0], error), over_http
    assert run(inprocess, name, tracker()) == over_http


def test_an_action_cannot_change_rasas_tracker(
    endpoints: tuple[EndpointConfig, EndpointConfig]
) -> None:
    _, inprocess = endpoints
    state = tracker(SlotSet("application_ids", ["LN20261123001"]))
    result = run(inprocess, "action_test_mutate", state)
    assert {"event": "slot", "name": "topic", "value": "progress"} in [
        {k: e.get(k) for k in ("event", "name", "value")} for e in result]
    assert state.get_slot("application_ids") == ["LN20261123001"]


def test_the_mode_comes_from_the_environment() -> None:
    assert inprocess_actions.selected_mode({}) == "inprocess"
    assert inprocess_actions.selected_mode({"LOANBOT_ACTIONS": " Remote "}) == "remote"
    with pytest.raises(ValueError, match="LOANBOT_ACTIONS"):
        inprocess_actions.selected_mode({"LOANBOT_ACTIONS": "thread"})


def test_rasa_reads_the_inprocess_endpoint_from_endpoints_yml(tmp_path: Path) -> None:
    from rasa.core import utils

    reader = utils.AvailableEndpoints.read_endpoints
    (tmp_path / "with.yml").write_text('action_endpoint:\n  url: "http://127.0.0.1:1/webhook"\n')
    (tmp_path / "without.yml").write_text("tracker_store:\n  type: InMemoryTrackerStore\n")
    try:
        inprocess_actions.install(PACKAGE)
        configured = utils.AvailableEndpoints.read_endpoints(str(tmp_path / "with.yml"))
        unnamed = utils.AvailableEndpoints.read_endpoints(str(tmp_path / "without.yml"))
    finally:
        utils.AvailableEndpoints.read_endpoints = reader
    assert isinstance(configured.action, inprocess_actions.InProcessActions)
    assert configured.action.url == "http://127.0.0.1:1/webhook"
    assert isinstance(unnamed.action, inprocess_actions.InProcessActions)
