"""Custom actions run inside the Rasa process instead of over HTTP to a separate server.

Rasa 3.6 runs every custom action (and every form validation) as an HTTP call to the action
server: it serialises the whole tracker and the domain to JSON, the action server parses it,
runs the rasa-sdk action, and answers with JSON that Rasa parses and validates. Measured on
two cores with two Rasa behind the gateway (docs/benchmarks.md), running the actions here
instead saved about 1.4 ms of CPU per message (of 25-26 ms) and 5 % more messages per second.

`InProcessActions` is the action endpoint Rasa read from endpoints.yml, with the one call
Rasa makes on it (`request(json=action_call)`) answered by rasa-sdk's own `ActionExecutor`
over the same `actions` package the action server loads. Everything else stays as it was:
Rasa still validates the response against its schema, still turns a rejected validation
(HTTP 400 from the action server) into `ActionExecutionRejection`, still reports an unknown
action or a crash as a failed custom action. The action call and its result go through a
JSON round trip exactly as over the wire (rasa-sdk parses the request with ujson, as Sanic
does), so an action can neither share objects with Rasa's tracker nor hand Rasa something
that would not have crossed HTTP.

`LOANBOT_ACTIONS` chooses: `inprocess` (the default of `python -m bot.serve`) or `remote`
(the action server named in endpoints.yml, as plain Rasa does: e.g. to scale or isolate the
action code from Rasa, docs/deploy.md).
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Mapping
from typing import Any

import ujson
from rasa.utils.endpoints import ClientResponseError, EndpointConfig

log = logging.getLogger(__name__)

ENV_SWITCH = "LOANBOT_ACTIONS"
MODES = ("inprocess", "remote")
ACTIONS_PACKAGE = "actions"


def selected_mode(environ: Mapping[str, str] | None = None) -> str:
    """`inprocess` unless the environment asks for the remote action server."""
    value = (environ if environ is not None else os.environ).get(ENV_SWITCH, "inprocess")
    value = value.strip().lower() or "inprocess"
    if value not in MODES:
        raise ValueError(f"{ENV_SWITCH} must be one of {MODES}, got {value!r}")
    return value


def _over_the_wire(value: Any) -> Any:
    """What the other side of an HTTP call would have received."""
    return ujson.loads(ujson.dumps(value, ensure_ascii=False))


class InProcessActions(EndpointConfig):
    """The configured action endpoint, with action calls run by rasa-sdk in this process."""

    def __init__(self, configured: EndpointConfig, package: str = ACTIONS_PACKAGE) -> None:
        super().__init__(
            url=configured.url, params=configured.params, headers=configured.headers,
            basic_auth=configured.basic_auth, token=configured.token,
            token_name=configured.token_name, cafile=configured.cafile, type=configured.type,
            **configured.kwargs,
        )
        from rasa_sdk.executor import ActionExecutor

        self.package = package
        self.executor = ActionExecutor()
        self.executor.register_package(package)

    async def request(
        self,
        method: str = "post",
        subpath: str | None = None,
        content_type: str | None = "application/json",
        compress: bool = False,
        **kwargs: Any,
    ) -> Any:
        body = kwargs.get("json")
        if method.lower() != "post" or subpath or not isinstance(body, dict):
            # Not an action call (Rasa makes no other): the real endpoint.
            return await super().request(method, subpath, content_type, compress, **kwargs)
        return await self.run_action(body)

    async def run_action(self, action_call: dict[str, Any]) -> Any:
        """The action server's webhook, minus HTTP: same results, same error statuses."""
        from rasa_sdk.interfaces import ActionExecutionRejection, ActionNotFoundException

        call = _over_the_wire(action_call)
        try:
            result = await self.executor.run(call)
        except ActionExecutionRejection as exc:
            raise ClientResponseError(400, "Bad Request", json.dumps(
                {"error": exc.message, "action_name": exc.action_name})) from exc
        except ActionNotFoundException as exc:
            log.error("%s", exc)
            raise ClientResponseError(404, "Not Found", json.dumps(
                {"error": exc.message, "action_name": exc.action_name})) from exc
        except Exception as exc:
            log.exception("custom action %s crashed", call.get("next_action"))
            raise ClientResponseError(500, "Internal Server Error",
                                      json.dumps({"error": str(exc)})) from exc
        return _over_the_wire(result)


def install(package: str = ACTIONS_PACKAGE) -> None:
    """Make Rasa's endpoints reader hand out the in-process action endpoint."""
    from rasa.core import utils

    reader = utils.AvailableEndpoints.read_endpoints.__func__

    def read_endpoints(cls: Any, endpoint_file: str) -> Any:
        endpoints = reader(cls, endpoint_file)
        if not isinstance(endpoints.action, InProcessActions):
            # the action server's URL (kept for `remote`) is not called
            endpoints.action = InProcessActions(endpoints.action or EndpointConfig(), package)
        return endpoints

    utils.AvailableEndpoints.read_endpoints = classmethod(read_endpoints)
