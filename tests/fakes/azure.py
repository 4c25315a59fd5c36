"""Fake Azure OpenAI (classic deployments): the Azure OpenAI data-plane reference.

- ``POST /openai/deployments/{deployment}/chat/completions?api-version=V`` and
  ``.../embeddings``; the deployment comes from the URL (a body ``model`` is ignored);
  without ``api-version``: 404 "Resource not found"; an unknown deployment (when
  ``known_models`` is set): 404 DeploymentNotFound.
- Key in the ``api-key`` header (a Bearer token is not a key): 401 "Access denied
  due to invalid subscription key or wrong API endpoint...".
- Errors ``{"error": {"code", "message", ...}}``; the prompt filter refusing a prompt
  is 400 with ``code`` "content_filter", ``param`` "prompt" and
  ``innererror.content_filter_result`` (``filter_prompt()``).
- Answers carry ``prompt_filter_results`` and per-choice ``content_filter_results``,
  and ``model`` is the deployed model's name, not the deployment; a stream starts
  with a chunk whose ``choices`` is empty and ``model``/``id`` are "" that carries
  only ``prompt_filter_results``. ``filter_completion()`` makes the next answer end
  with finish_reason "content_filter" (the output filter).
- Body fields newer than the request's api-version are refused, as Azure does:
  400 "Unrecognized request argument supplied: <name>" (``SINCE`` below, from the
  per-version specs: stream_options and max_completion_tokens 2024-09-01-preview,
  parallel_tool_calls 2024-08-01-preview, tools/tool_choice/response_format/seed
  2023-12-01-preview).
Tool calls and cached tokens as in tests/fakes/openai_tools.py.
"""

from __future__ import annotations

import json
import re
import threading
from typing import Any, Iterator

from .base import Behaviour, Exchange, Route
from .openai import _sse
from .openai_tools import ToolCallingOpenAI
from .text import Answer

_PATH = re.compile(r"^/openai/deployments/([^/]+)/(chat/completions|embeddings)$")
SINCE = {"stream_options": "2024-09-01", "max_completion_tokens": "2024-09-01",
         "parallel_tool_calls": "2024-08-01", "tools": "2023-12-01", "tool_choice": "2023-12-01",
         "response_format": "2023-12-01", "seed": "2023-12-01"}
SAFE = {category: {"filtered": False, "severity": "safe"}
        for category in ("hate", "self_harm", "sexual", "violence")}
PROMPT_FILTER = [{"prompt_index": 0, "content_filter_results": SAFE}]
_ERRORS = {
    401: ("401", "Access denied due to invalid subscription key or wrong API endpoint. Make sure to provide a "
                 "valid key for an active subscription and use a correct regional API endpoint for your resource."),
    404: ("404", "Resource not found"),
    429: ("429", "Requests to the ChatCompletions_Create Operation under Azure OpenAI API version 2024-10-21 "
                 "have exceeded token rate limit of your current OpenAI S0 pricing tier. Please retry after "
                 "6 seconds."),
    500: ("InternalServerError", "The server had an error while processing your request. Sorry about that!"),
}


def content_filter_error(category: str = "violence") -> dict[str, Any]:
    """Azure's 400 for a prompt its content filter refused."""
    result = {name: {"filtered": name == category, "severity": "high" if name == category else "safe"}
              for name in SAFE}
    return {"error": {
        "message": "The response was filtered due to the prompt triggering Azure OpenAI's content management "
                   "policy. Please modify your prompt and retry. To learn more about our content filtering "
                   "policies please read our documentation: https://go.microsoft.com/fwlink/?linkid=2198766",
        "type": None, "param": "prompt", "code": "content_filter", "status": 400,
        "innererror": {"code": "ResponsibleAIPolicyViolation", "content_filter_result": result},
    }}


class FakeAzureOpenAI(ToolCallingOpenAI):
    """``base_url`` is the resource endpoint (what AzureOpenAI(azure_endpoint=...) takes)."""

    default_reply_text = "Hello from fake-azure."
    deployed_model = "gpt-4o-2024-11-20"  # what answers name as their model

    def __init__(self, **kw: Any) -> None:
        super().__init__(**kw)
        self._filtered = 0
        self._lock = threading.Lock()

    @property
    def base_url(self) -> str:
        return self.url

    def filter_prompt(self, category: str = "violence", *, times: int = 1) -> None:
        self.fail(400, body=content_filter_error(category), times=times)

    def filter_completion(self, *, times: int = 1) -> None:
        with self._lock:
            self._filtered += times

    def _take_filtered(self) -> bool:
        with self._lock:
            if self._filtered:
                self._filtered -= 1
                return True
            return False

    def reset(self) -> None:
        super().reset()
        with self._lock:
            self._filtered = 0

    def response_headers(self) -> dict[str, str]:
        return {"apim-request-id": "0f5c8e3c-0000-4000-8000-000000000000", "x-ms-region": "Sweden Central"}

    def error_payload(self, status: int, message: str | None = None, *, code: str | None = None,
                      **details: Any) -> Any:
        default_code, default_message = _ERRORS.get(status, (str(status), "Request failed."))
        if status == 400 and "type" not in details:
            return {"error": {"message": message or "Invalid request.", "type": "invalid_request_error",
                              "param": details.get("param"), "code": code}}
        return {"error": {"code": code or default_code, "message": message or default_message}}

    def route(self, ex: Exchange) -> tuple[Route, bool] | None:
        match = _PATH.match(ex.path)
        if ex.method != "POST" or match is None:
            return None
        deployment, operation = match.groups()
        handler = self._chat_completions if operation == "chat/completions" else self._embeddings

        def serve(ex: Exchange, behaviour: Behaviour | None) -> None:
            problem = self._azure_problem(ex, deployment)
            if problem is not None:
                status, body = problem
                return ex.send_json(status, body)
            if isinstance(ex.json, dict):
                ex.json = {**ex.json, "model": deployment}  # a copy: the recorded body stays as sent
            handler(ex, behaviour)
        return serve, True

    def _azure_problem(self, ex: Exchange, deployment: str) -> tuple[int, Any] | None:
        version = ex.query.get("api-version")
        if not version:
            return 404, self.error_payload(404)
        if self.api_key is not None and ex.headers.get("api-key") != self.api_key:
            return 401, self.error_payload(401)
        if not self.model_known(deployment):
            return 404, self.error_payload(404, "The API deployment for this resource does not exist. If you "
                                                "created the deployment within the last 5 minutes, please wait "
                                                "a moment and try again.", code="DeploymentNotFound")
        body = ex.json if isinstance(ex.json, dict) else {}
        for name, since in SINCE.items():
            if name in body and version[:10] < since:
                return 400, self.error_payload(400, f"Unrecognized request argument supplied: {name}")
        return None

    # the base class's checks, with Azure's key header instead of a Bearer token
    def _authorized(self, ex: Exchange) -> bool:
        return True

    def _completion(self, body: dict[str, Any], answer: Answer) -> dict[str, Any]:
        payload = super()._completion(body, answer)
        payload["model"] = self.deployed_model
        payload["prompt_filter_results"] = PROMPT_FILTER
        filtered = self._take_filtered()
        for choice in payload["choices"]:
            choice["content_filter_results"] = SAFE
            if filtered:
                choice["finish_reason"] = "content_filter"
                choice["content_filter_results"] = {**SAFE, "violence": {"filtered": True, "severity": "medium"}}
        payload.pop("service_tier", None)
        return payload

    def _chunks(self, body: dict[str, Any], answer: Answer) -> Iterator[tuple[str, bytes]]:
        filtered = self._take_filtered()
        yield "head", _sse({"choices": [], "created": 0, "id": "", "model": "", "object": "",
                            "prompt_filter_results": PROMPT_FILTER})
        for phase, data in super()._chunks(body, answer):
            if not data.startswith(b"data: {"):
                yield phase, data
                continue
            chunk = json.loads(data[6:])
            chunk["model"] = self.deployed_model
            chunk.pop("service_tier", None)
            for choice in chunk["choices"]:
                choice["content_filter_results"] = {} if choice["delta"].get("role") else SAFE
                if filtered and choice.get("finish_reason"):
                    choice["finish_reason"] = "content_filter"
            yield phase, _sse(chunk)
