"""Task detection for the `task` routing strategy: what kind of work a request asks for.

Pure and deterministic: the same request always gets the same decision, made by rules
a non-engineer can read (docs/task-detection.md lists them in plain words) and
explained in one sentence. A client hint (the `x-gateway-task` header, or `task` in
the request's `metadata`) overrides the rules.

Order of decision, first match wins:
1. a recognised client hint;
2. the request's shape: an image -> vision, a very long prompt -> long_context,
   tools offered -> tool_use, JSON response_format -> extraction (or classification
   when the text asks to classify);
3. the wording of the last user message, read with USER_RULES in table order;
4. the system prompt, read with the stricter SYSTEM_RULES in table order;
5. otherwise general chat.

Rules are rows of a table, not branches: adding or moving one is a one-line change.
This runs on every task-routed request, so it is built for speed: only the last user
message and the system prompt are read, each clipped to its head and tail; a row's
regex runs only when one of its trigger words occurs in the text (a set lookup); and
each trigger gets its own regex starting with the literal word, which the regex
engine finds with a fast substring search instead of trying every position.

Modules: types (TaskType, TaskDecision), hints (client hints), text (clipping and
word sets), matching (a rule row and its builders), vocabulary (shared word lists),
user_message_rules and system_prompt_rules (the two tables), detect (the decision).
"""

from __future__ import annotations

from .detect import JSON_FORMATS, QUOTE_CHARS, SYSTEM, USER, detect_task
from .hints import HINT_ALIASES, HINT_HEADER, parse_hint
from .matching import Rule, pattern_rule, rule
from .system_prompt_rules import INSTRUCTION, ROLE, SYSTEM_RULES, system_rules
from .text import HEAD_CHARS, TAIL_CHARS, Text
from .types import TaskDecision, TaskType
from .user_message_rules import USER_RULES
from .vocabulary import (
    CLEAR_CODE_LANGS,
    CODE_LANGS,
    CODE_NOUNS,
    CODE_THINGS,
    CODE_VERBS,
    CREATIVE_NOUNS,
    ERROR_NAMES,
    FENCE,
    LANGUAGE_NAMES,
    LANGUAGES,
    PROBLEM_WORDS,
    PROSE,
)

__all__ = [
    # the decision and how to ask for it
    "HINT_ALIASES",
    "HINT_HEADER",
    "TaskDecision",
    "TaskType",
    "detect_task",
    "parse_hint",
    # the rule tables and how rows are written
    "INSTRUCTION",
    "ROLE",
    "SYSTEM_RULES",
    "USER_RULES",
    "Rule",
    "pattern_rule",
    "rule",
    "system_rules",
    # reading the text
    "HEAD_CHARS",
    "JSON_FORMATS",
    "QUOTE_CHARS",
    "SYSTEM",
    "TAIL_CHARS",
    "USER",
    "Text",
    # vocabulary
    "CLEAR_CODE_LANGS",
    "CODE_LANGS",
    "CODE_NOUNS",
    "CODE_THINGS",
    "CODE_VERBS",
    "CREATIVE_NOUNS",
    "ERROR_NAMES",
    "FENCE",
    "LANGUAGE_NAMES",
    "LANGUAGES",
    "PROBLEM_WORDS",
    "PROSE",
]
