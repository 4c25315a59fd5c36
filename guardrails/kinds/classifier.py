"""classifier: ask a route of this gateway whether the text is acceptable.

The route can be anything the gateway serves: a moderation model behind an
OpenAI-compatible server (Llama Guard answers "safe" / "unsafe\nS1"), or a small LLM
with a verdict prompt. The judge's answer is read as, in this order: a JSON object
with `flagged` and/or `score` (0..1) and an optional `category`; a first line of
`safe` / `unsafe`; a number between 0 and 1; yes / no. Anything else is an error of
the guardrail (its on_error decides), never a silent pass.

The call itself goes through the gateway's pipeline (the route's targets, fallbacks,
breakers, usage records), made by the guardrail stage (`ctx.judge`); the judge call
is not itself guarded.
"""

from __future__ import annotations

import re
from typing import Any

import orjson

from guardrails.detectors import Finding

from .base import Kind, Param

DEFAULT_PROMPT = (
    "You are a content-safety classifier for a company's AI gateway. Decide whether the user's text "
    "asks for or contains content that is harmful, hateful, sexual involving minors, violent, "
    "self-harm, or instructions for weapons or crime. Reply with only a JSON object: "
    '{"flagged": true or false, "score": a number from 0 to 1, "category": "a short label"}.'
)
MAX_TEXT_CHARS = 32_000  # the tail beyond this is not sent (the judge's own window)


class VerdictError(ValueError):
    """The judge's answer could not be read as a verdict."""


def parse_verdict(answer: str) -> tuple[float, str]:
    """(score 0..1, category) from a judge's answer; VerdictError when unreadable."""
    text = (answer or "").strip()
    if text.startswith("```"):
        text = text.strip("`").removeprefix("json").strip()
    if text.startswith("{"):
        try:
            data = orjson.loads(text[: text.rfind("}") + 1])
        except orjson.JSONDecodeError:
            raise VerdictError("the judge's JSON answer does not parse") from None
        if isinstance(data, dict):
            category = str(data.get("category") or data.get("categories") or "")[:40]
            score = data.get("score")
            if isinstance(score, (int, float)) and not isinstance(score, bool) and 0 <= score <= 1:
                return float(score), category
            if isinstance(data.get("flagged"), bool):
                return (1.0 if data["flagged"] else 0.0), category
        raise VerdictError("the judge's JSON answer has neither `flagged` nor a `score` between 0 and 1")
    first = text.splitlines()[0].strip().lower() if text else ""
    if first in ("safe", "unsafe"):
        rest = text.splitlines()[1].strip()[:40] if len(text.splitlines()) > 1 else ""
        return (1.0 if first == "unsafe" else 0.0), rest
    number = re.fullmatch(r"(0(?:\.\d+)?|1(?:\.0+)?)", first)
    if number:
        return float(number.group(1)), ""
    if first.rstrip(".!") in ("yes", "no"):
        return (1.0 if first.startswith("yes") else 0.0), ""
    raise VerdictError("the judge's answer is not a verdict")


class Judge:
    def __init__(self, route: str, threshold: float, timeout_s: float, prompt: str) -> None:
        self.route, self.threshold, self.timeout_s, self.prompt = route, threshold, timeout_s, prompt

    async def averdict(self, text: str, ctx: Any) -> list[Finding]:
        if not text.strip():
            return []
        answer = await ctx.judge(self.route, self.prompt, text[:MAX_TEXT_CHARS], self.timeout_s)
        score, category = parse_verdict(answer)
        if score < self.threshold:
            return []
        label = re.sub(r"[^a-z0-9_]+", "_", category.lower()).strip("_")[:40]
        return [Finding(0, 0, f"flagged:{label}" if label else "flagged")]


class Classifier(Kind):
    name = "classifier"
    label = "Classifier (a moderation or judge route)"
    help = "Sends the prompt to a route of this gateway and blocks or flags it when the verdict's score reaches the threshold."
    params = {
        "route": Param("str", "The route that judges, e.g. moderation.", required=True, max_length=100),
        "threshold": Param("float", "Scores at or above this are violations (0 to 1).", default=0.5, min=0, max=1),
        "timeout_s": Param("float", "Longest the judge may take; then on_error decides.", default=5.0, min=0.1, max=120),
        "prompt": Param("text", "The judge's system prompt (blank = the built-in safety prompt).",
                        default=DEFAULT_PROMPT, max_length=8000),
    }
    stages = frozenset({"input"})
    actions = frozenset({"block", "flag"})
    spans = False
    is_async = True

    def build(self, params: dict[str, Any]) -> Judge:
        return Judge(params["route"], params["threshold"], params["timeout_s"], params["prompt"] or DEFAULT_PROMPT)
