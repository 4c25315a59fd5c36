"""Shared by the tests/test_admin_*.py modules: a complete sample configuration,
response text for asserting error messages, and a page's form as a browser submits it.

Import the `config` fixture by name into a test module to use it there."""

from __future__ import annotations

from html.parser import HTMLParser

import pytest

from billing.keys import issue_key

from .factories import ModelFactory, ProviderFactory, RouteFactory, RouteTargetFactory, TeamFactory, UsageRecordFactory


def errors_text(response) -> str:
    return response.content.decode()


@pytest.fixture
def config():
    """A small but complete configuration: two providers, a route, a key, a usage row."""
    route = RouteFactory(name="chat-default")
    first = RouteTargetFactory(route=route, order=0)
    RouteTargetFactory(route=route, order=1, model=ModelFactory(provider=ProviderFactory(kind="mock", base_url="")))
    issued = issue_key("search-backend", team=TeamFactory(), routes=[route])
    UsageRecordFactory(
        request_id="req-123",
        route_name=route.name,
        provider_name=first.model.provider.name,
        model_name=str(first.model),
        prompt_tokens=12,
        completion_tokens=34,
        attempts=2,
        attempt_log=[
            {"target": "p/a", "outcome": "timeout", "latency_ms": 5000, "status": None},
            {"target": "p/b", "outcome": "ok", "latency_ms": 321, "status": None},
        ],
    )
    return {"route": route, "key": issued.key, "model": first.model, "provider": first.model.provider}


class _FormFields(HTMLParser):
    """The fields of an HTML page's forms as a browser would submit them untouched:
    text inputs with their value, checkboxes and radios only when checked, a select's
    selected options, a textarea's text."""

    def __init__(self) -> None:
        super().__init__()
        self.fields: list[tuple[str, str]] = []
        self._select: str | None = None
        self._select_multiple = False
        self._options: list[tuple[str, bool]] = []
        self._textarea: str | None = None
        self._text = ""

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        name = a.get("name")
        if tag == "input" and name and a.get("type", "text") not in ("submit", "button", "file", "image", "reset"):
            if a.get("type") in ("checkbox", "radio") and "checked" not in a:
                return
            self.fields.append((name, a.get("value", "on" if a.get("type") == "checkbox" else "")))
        elif tag == "select" and name:
            self._select, self._select_multiple, self._options = name, "multiple" in a, []
        elif tag == "option" and self._select is not None:
            self._options.append((a.get("value", ""), "selected" in a))
        elif tag == "textarea" and name:
            self._textarea, self._text = name, ""

    def handle_data(self, data: str) -> None:
        if self._textarea is not None:
            self._text += data

    def handle_endtag(self, tag: str) -> None:
        if tag == "select" and self._select is not None:
            chosen = [v for v, selected in self._options if selected]
            if not chosen and not self._select_multiple and self._options:
                chosen = [self._options[0][0]]  # a browser submits the first option
            self.fields.extend((self._select, v) for v in chosen)
            self._select = None
        elif tag == "textarea" and self._textarea is not None:
            self.fields.append((self._textarea, self._text.removeprefix("\n")))
            self._textarea = None


def untouched_form(response) -> dict[str, list[str]]:
    """What submitting the page's form without touching anything sends (for the test
    client's post(); fill in what an editor would type before posting)."""
    parser = _FormFields()
    parser.feed(response.content.decode())
    data: dict[str, list[str]] = {}
    for name, value in parser.fields:
        data.setdefault(name, []).append(value)
    data.pop("csrfmiddlewaretoken", None)
    return data
