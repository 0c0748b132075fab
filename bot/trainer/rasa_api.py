"""A small synchronous client for the Rasa HTTP API endpoints the trainer tools need.

`/model/parse` (the current model's guess for inbox items), `GET /status` (which model file and
fingerprint the server runs) and `PUT /model` (switch the running server to another model).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import requests
from tqdm import tqdm


class RasaApiError(Exception):
    """Rasa answered with an error or could not be reached."""


@dataclass
class RasaApi:
    base_url: str
    token: str | None = None
    timeout_seconds: float = 10.0

    def _url(self, path: str) -> str:
        return self.base_url.rstrip("/") + path

    def _params(self) -> dict[str, str]:
        return {"token": self.token} if self.token else {}

    def _call(self, method: str, path: str, *, json_body: Any = None,
              timeout: float | None = None) -> Any:
        try:
            response = requests.request(
                method, self._url(path), params=self._params(), json=json_body,
                timeout=timeout or self.timeout_seconds,
            )
        except requests.RequestException as exc:
            raise RasaApiError(f"{method} {path}: {exc}") from None
        if response.status_code >= 400:
            raise RasaApiError(
                f"{method} {path}: HTTP {response.status_code} {response.text[:300]}")
        return response.json() if response.content else None

    def status(self) -> dict[str, Any]:
        """`{"model_file", "model_id", "num_active_training_jobs", "fingerprint"}`."""
        result = self._call("GET", "/status")
        if not isinstance(result, dict):
            raise RasaApiError("GET /status: not a JSON object")
        return result

    def parse(self, text: str) -> tuple[str | None, float | None]:
        result = self._call("POST", "/model/parse", json_body={"text": text})
        intent = (result or {}).get("intent") or {}
        name = intent.get("name")
        confidence = intent.get("confidence")
        return (name if isinstance(name, str) else None,
                float(confidence) if isinstance(confidence, (int, float)) else None)

    def predict(self, texts: Sequence[str]) -> dict[str, tuple[str | None, float | None]]:
        """Parse each distinct text once, with a progress bar."""
        distinct = list(dict.fromkeys(texts))
        return {text: self.parse(text)
                for text in tqdm(distinct, desc="predicting", unit="text", leave=False)}

    def replace_model(self, model_file: str, timeout: float = 300.0) -> None:
        """PUT /model: Rasa loads the file (a path on the server's disk) and swaps its agent.

        Rasa 3.6 loads synchronously inside its event loop, so the server answers nothing
        else until the load finishes (rasa#3910); callers must allow for that pause.
        """
        self._call("PUT", "/model", json_body={"model_file": model_file}, timeout=timeout)
