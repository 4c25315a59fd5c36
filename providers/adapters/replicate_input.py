"""What a chat request becomes as a Replicate prediction's `input`.

Replicate's language models take a prompt, not messages: each model declares its own
inputs (an OpenAPI schema per version), and most chat models share the names used
here (`prompt`, `system_prompt`, `max_tokens`, `temperature`, `top_p`, `top_k`,
`stop_sequences`, ...). The conversation is rendered into `prompt` (see
`render_prompt`), the sampling parameters go through the `PARAMS` table, and the
provider's options rename, drop or add inputs for models that differ:

- `input_map`: {input name used here: the model's name for it, or null to leave it
  out}; with `system_prompt` mapped to null the system text is rendered into the prompt;
- `input`: fixed inputs merged last (they override what the request produced);
- `models`: {upstream id: {"input_map": ..., "input": ...}}, laid over the two above
  for one model.

Options are checked by `option_errors` when the provider is saved.
"""

from __future__ import annotations

from typing import Any

from ..catalog import ModelInfo
from ..params import Param, as_list, map_params, overlay, table
from ..tokens import message_text
from ..types import ChatRequest
from .base import RequestNotTranslatable

MAX_WAIT_S = 60  # the longest `Prefer: wait=N` Replicate holds a request open


def _comma_joined(value: Any) -> Any:
    """OpenAI's `stop` (a string or a list) as Replicate's `stop_sequences`: one string,
    the sequences separated by commas."""
    items = as_list(value)
    return items if not isinstance(items, list) else ",".join(str(item) for item in items)


# The prediction input names most Replicate language models use. `to` paths are under
# `input` (the prediction body's object of model inputs).
PARAMS = table(
    Param("max_tokens", to="input.max_tokens"),
    Param("temperature", to="input.temperature"),
    Param("top_p", to="input.top_p"),
    Param("top_k", to="input.top_k"),
    Param("stop", to="input.stop_sequences", transform=_comma_joined),
    Param("seed", to="input.seed"),
    Param("presence_penalty", to="input.presence_penalty"),
    Param("frequency_penalty", to="input.frequency_penalty"),
)

ROLE_NAMES = {"user": "User", "assistant": "Assistant", "system": "System"}


def _text(message: dict, where: str) -> str:
    """A message's text; parts other than text (images, files) have no place in a
    prompt string."""
    content = message.get("content")
    if isinstance(content, list):
        for j, part in enumerate(content):
            if not isinstance(part, dict) or part.get("type", "text") != "text":
                raise RequestNotTranslatable(
                    f"'{where}.content[{j}]' cannot be sent to a Replicate model: its prompt is text only.",
                    param=f"{where}.content[{j}]")
    return message_text(content, sep="")


def render_prompt(messages: list[dict], *, system_input: bool) -> tuple[str, str]:
    """(prompt, system prompt) of a conversation.

    System and developer messages become the system prompt (joined by a blank line),
    or, with `system_input` False, the conversation's first turn. A conversation of
    one user message is sent as that message's text alone (the model applies its own
    chat template to it); a longer one is rendered as turns::

        System: {text}        (only when there is no system_prompt input)

        User: {text}

        Assistant: {text}

        User: {text}

        Assistant:

    Tool calls and tool results cannot be rendered (Replicate's language models take
    no tools): RequestNotTranslatable.
    """
    system: list[str] = []
    turns: list[tuple[str, str]] = []
    for i, message in enumerate(messages):
        role = message.get("role")
        where = f"messages[{i}]"
        if role in ("system", "developer"):
            system.append(_text(message, where))
        elif role in ("user", "assistant") and not message.get("tool_calls"):
            turns.append((role, _text(message, where)))
        else:
            raise RequestNotTranslatable(
                f"'{where}' ({role} message with tool calls or results) cannot be sent to a Replicate model: "
                "its predictions take a prompt, not tools.", param=where)
    system_text = "\n\n".join(s for s in system if s)
    if system_text and not system_input:
        turns.insert(0, ("system", system_text))
        system_text = ""
    if len(turns) == 1 and turns[0][0] == "user":
        return turns[0][1], system_text
    lines = [f"{ROLE_NAMES[role]}: {text}" for role, text in turns]
    if not turns or turns[-1][0] != "assistant":
        lines.append("Assistant:")
    return "\n\n".join(lines), system_text


def _model_options(model: ModelInfo) -> tuple[dict[str, Any], dict[str, Any]]:
    """(input_map, fixed inputs) for this model: the provider's, with the model's own
    entry under `options.models` laid over them."""
    options = model.provider.options
    input_map = dict(options.get("input_map") or {})
    fixed = dict(options.get("input") or {})
    own = (options.get("models") or {}).get(model.upstream_id) or {}
    input_map.update(own.get("input_map") or {})
    fixed.update(own.get("input") or {})
    return input_map, fixed


def unsupported(req: ChatRequest) -> str | None:
    """The first request parameter a prompt cannot carry (tools, response formats)."""
    for name in ("tools", "tool_choice", "response_format"):
        value = req.params.get(name)
        if value and not (name == "response_format" and isinstance(value, dict) and value.get("type") == "text"):
            return name
    return None


def prediction_input(model: ModelInfo, req: ChatRequest) -> dict[str, Any]:
    """The prediction's `input` object for `req` (RequestNotTranslatable when it cannot
    be one)."""
    name = unsupported(req)
    if name is not None:
        raise RequestNotTranslatable(
            f"'{name}' cannot be sent to {model.label}: Replicate's language models take a prompt "
            "(no tools, no response formats).", param=name)
    input_map, fixed = _model_options(model)
    prompt, system = render_prompt(req.messages, system_input=input_map.get("system_prompt", "system_prompt") is not None)
    body: dict[str, Any] = {"input": {"prompt": prompt}}
    if system:
        body["input"]["system_prompt"] = system
    params = {**req.params, "max_tokens": req.max_tokens}
    map_params(overlay(PARAMS, model.provider.spec.param_table), params, passthrough=False, into=body)
    inputs: dict[str, Any] = {}
    for key, value in body["input"].items():
        target = input_map.get(key, key)
        if target is not None:
            inputs[target] = value
    inputs.update(fixed)
    return inputs


def option_errors(options: dict[str, Any]) -> list[str]:
    """What is wrong with a provider's Replicate options (empty when usable)."""
    errors: list[str] = []
    wait = options.get("wait", MAX_WAIT_S)
    if isinstance(wait, bool) or not isinstance(wait, int) or not 0 <= wait <= MAX_WAIT_S:
        errors.append(f"'wait' must be a whole number of seconds from 0 (poll only) to {MAX_WAIT_S}.")
    collection = options.get("discovery_collection", "")
    if not isinstance(collection, str):
        errors.append("'discovery_collection' must be a collection slug (text).")
    errors += _shape_errors(options, "")
    models = options.get("models", {})
    if not isinstance(models, dict):
        errors.append("'models' must map upstream ids to {input_map, input} objects.")
    else:
        for upstream_id, own in models.items():
            if not isinstance(own, dict):
                errors.append(f"'models.{upstream_id}' must be an object with 'input_map' and/or 'input'.")
            else:
                errors += _shape_errors(own, f"models.{upstream_id}.")
    return errors


def _shape_errors(options: dict[str, Any], prefix: str) -> list[str]:
    errors: list[str] = []
    input_map = options.get("input_map", {})
    if not isinstance(input_map, dict) or not all(
            isinstance(v, str) and v or v is None for v in input_map.values()):
        errors.append(f"'{prefix}input_map' must map input names to the model's input names (or null to leave one out).")
    if not isinstance(options.get("input", {}), dict):
        errors.append(f"'{prefix}input' must be an object of fixed model inputs.")
    return errors
