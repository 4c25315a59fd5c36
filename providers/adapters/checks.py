"""Shape checks at the adapter boundary: what a provider sent, before it becomes an
internal type.

A provider that answers 200 with the wrong shape (choices that are not a list, a
stream `delta` that is not an object, text that is not a string) has failed, as
surely as one that answered 500: each check raises ProviderError(BAD_RESPONSE), so
the engine falls back and the breaker counts it, and nothing downstream (rendering,
accounting, the ledger) ever meets a value of the wrong type. Token counts are
checked by `providers.types.reported_tokens` / `Usage.reported`.
"""

from __future__ import annotations

from typing import Any

from ..types import ErrorKind, ProviderError


def bad(provider: str, what: str) -> ProviderError:
    return ProviderError(ErrorKind.BAD_RESPONSE, f"{provider}: {what}")


def expect_object(value: Any, provider: str, what: str, *, optional: bool = False) -> dict:
    """A JSON object; with `optional`, a missing/null one is {}."""
    if value is None and optional:
        return {}
    if not isinstance(value, dict):
        raise bad(provider, f"{what} is not an object")
    return value


def expect_list(value: Any, provider: str, what: str, *, optional: bool = False) -> list:
    """A JSON array; with `optional`, a missing/null one is []."""
    if value is None and optional:
        return []
    if not isinstance(value, list):
        raise bad(provider, f"{what} is not a list")
    return value


def expect_text(value: Any, provider: str, what: str) -> str | None:
    """A string or null."""
    if value is not None and not isinstance(value, str):
        raise bad(provider, f"{what} is not a string")
    return value


def expect_index(value: Any, provider: str, default: int) -> int:
    if value is None:
        return default
    if type(value) is not int or value < 0:
        raise bad(provider, "choice index is not a non-negative integer")
    return value


def tool_calls(value: Any, provider: str) -> list | None:
    """OpenAI-shaped tool calls (message or delta): a list of objects whose
    `function` is an object with string `name`/`arguments`."""
    if value is None:
        return None
    for call in expect_list(value, provider, "tool_calls"):
        expect_object(call, provider, "a tool call")
        function = expect_object(call.get("function"), provider, "a tool call's function", optional=True)
        expect_text(function.get("name"), provider, "a tool call's name")
        expect_text(function.get("arguments"), provider, "a tool call's arguments")
    return value


def chat_message(value: Any, provider: str, what: str = "a choice's message", *, optional: bool = False) -> dict:
    """An OpenAI-shaped message or stream delta as the gateway relays and accounts it
    (with `optional`, a missing/null one is {})."""
    message = expect_object(value, provider, what, optional=optional)
    expect_text(message.get("role"), provider, f"{what}'s role")
    expect_text(message.get("content"), provider, f"{what}'s content")
    tool_calls(message.get("tool_calls"), provider)
    return message


def finish_reason(value: Any, provider: str) -> str | None:
    return expect_text(value, provider, "finish_reason")
