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
4. the system prompt, read with the stricter SYSTEM_RULES;
5. otherwise general chat.

Rules are rows of a table (task, compiled regex, reason template), not branches, so
adding or reordering one is a one-line change that the tests and the docs can follow.
Only the last user message and the system prompt are scanned, each clipped to its
first and last few thousand characters: this runs on every task-routed request.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from django.db import models

from providers.tokens import estimate_prompt_tokens, message_text
from providers.types import ChatRequest

HINT_HEADER = "x-gateway-task"

# Long messages are scanned on their head and tail only: requests usually put the
# instruction before or after the pasted material, and the cost stays bounded.
HEAD_CHARS = 4000
TAIL_CHARS = 2000
QUOTE_CHARS = 40


class TaskType(models.TextChoices):
    CHAT = "chat", "General chat"
    CODE_GENERATION = "code_generation", "Code generation"
    CODE_REVIEW = "code_review", "Code review / debugging"
    SUMMARIZATION = "summarization", "Summarization"
    TRANSLATION = "translation", "Translation"
    EXTRACTION = "extraction", "Extraction / JSON output"
    CLASSIFICATION = "classification", "Classification"
    REASONING = "reasoning", "Reasoning / math"
    CREATIVE_WRITING = "creative_writing", "Creative writing"
    LONG_CONTEXT = "long_context", "Long context"
    TOOL_USE = "tool_use", "Tool use"
    VISION = "vision", "Vision (images)"


@dataclass(frozen=True, slots=True)
class TaskDecision:
    task: TaskType
    source: str  # "hint" | "rules" | "default"
    reason: str  # one plain-English sentence, shown to operators as is


@dataclass(frozen=True, slots=True)
class Rule:
    """One row: when `pattern` (and `requires`, if set) matches the lowercased text, it is `task`.

    `reason` is a sentence template; `{where}` becomes "last user message" or
    "system prompt" and `{match}` the words that triggered the rule.
    """

    task: TaskType
    pattern: re.Pattern[str]
    reason: str
    requires: re.Pattern[str] | None = None


def _rule(task: TaskType, pattern: str, reason: str, *, requires: str | None = None) -> Rule:
    # Texts are lowercased once before matching: cheaper than re.IGNORECASE on every rule.
    return Rule(task, re.compile(pattern), reason, re.compile(requires) if requires else None)


def _alt(*words: str) -> str:
    return "(?:" + "|".join(words) + ")"


# --- vocabulary ---------------------------------------------------------------------
LANGUAGES = _alt(
    "english", "french", "spanish", "german", "italian", "portuguese", "dutch", "russian", "ukrainian", "polish",
    "czech", "slovak", "swedish", "norwegian", "danish", "finnish", "icelandic", "greek", "turkish", "arabic",
    "hebrew", "persian", "farsi", "hindi", "urdu", "bengali", "punjabi", "tamil", "chinese", "mandarin", "cantonese",
    "japanese", "korean", "vietnamese", "thai", "indonesian", "malay", "tagalog", "filipino", "swahili", "romanian",
    "hungarian", "bulgarian", "serbian", "croatian", "catalan", "basque", "latin", "esperanto",
) + r"\b"  # fmt: skip
# Programming languages and stacks that make a request about code. "go", "c" and "r"
# are left out: as plain words they are too common.
CODE_LANGS = _alt(
    "python", "javascript", "typescript", "java", "rust", "golang", r"c\+\+", "c#", "kotlin", "swift", "ruby", "php",
    "scala", "haskell", "bash", "powershell", "sql", "postgresql", "mysql", "perl", "elixir", "lua", "dart",
    r"node\.?js", "react", "django", "flask", "pandas", "numpy", "terraform", "kubernetes yaml",
) + r"(?![\w+#])"  # fmt: skip
CODE_NOUNS = _alt(
    "functions?", "methods?", r"class(?:es)?(?!\s+(?:schedule|plan|notes|trip|reunion|syllabus|list))",
    # "a script for my youtube video" is a screenplay, "a script to rename files" is code.
    r"scripts?(?![^.?!\n]{0,40}\b(?:video|youtube|tiktok|ad|advert|commercial|play|movie|film|scene|skit|podcast"
    r"|episode|presentation|speech|wedding|sketch|comedy)\b)",
    "modules?", r"quer(?:y|ies)(?!\s+letters?)", "regex(?:es)?", "regular expressions?", "unit tests?",
    "test cases?", "test suites?", "endpoints?", "snippets?", r"code(?!\s+of\b)", "codebase", "algorithms?",
    "components?", "dockerfiles?", "makefiles?", "apis?", "cli", "decorators?", "structs?", "lambdas?", "html",
    "css", "stored procedures?", "migrations?", "(?:in|using) " + CODE_LANGS, CODE_LANGS,
) + r"(?:\b|(?<=[+#]))"  # fmt: skip
# Words that, between a verb and a code word, mean prose about code rather than code:
# "write a poem about functions", "give me a summary of this python article".
PROSE = _alt(
    "about", "poems?", "poetry", r"stor(?:y|ies)", "songs?", "lyrics", "haikus?", "limericks?", "sonnets?",
    "essays?", "letters?", "emails?", r"speech(?:es)?", "blog", "articles?", "novels?", "jokes?", "summary",
    "summaries", "overview", "explanation", "history", "translation", "tweets?", "posts?",
) + r"\b"  # fmt: skip
CREATIVE_NOUNS = _alt(
    "poems?", "poetry", "haikus?", "limericks?", "sonnets?", "lyrics", "songs?", "raps?", "verses?", "ballads?",
    "odes?", "screenplays?", r"scripts? for (?:a|an|my|the)", r"(?<!user )(?<!success )stor(?:y|ies)", "fables?",
    "fairy ?tales?", "monologues?", "jokes?", "riddles?", "novels?", "chapters?", "plot twists?", "plots?",
) + r"\b"  # fmt: skip


def _gap(words: int) -> str:
    """Up to `words` words between two parts of a phrase, none of them prose words."""
    return rf"(?:\W+(?!{PROSE})\w+){{0,{words}}}?\W+"


FENCE = r"```"  # a Markdown code block somewhere in the message

# --- rules for the last user message, in priority order -----------------------------
USER_RULES: tuple[Rule, ...] = (
    # Code review / debugging: an error trace, or a request to fix, review or explain code.
    _rule(
        TaskType.CODE_REVIEW,
        r"\b(?:traceback|stack ?traces?|stacktrace|segmentation fault|segfault|core dumped|nullpointerexception"
        r"|undefined is not a function|cannot read propert(?:y|ies) of|uncaught \w+|exception in thread"
        r"|[a-z_.]*[a-z](?:error|exception):)",
        "The {where} contains an error trace or exception ('{match}').",
    ),
    _rule(
        TaskType.CODE_REVIEW,
        r"\bdebug(?:ging)?\b|\bfind (?:the |a |any )?bugs?\b|\bis there a bug\b"
        r"|\bfix (?:this|the|my|a|that|these|our)\s+(?:\w+\s+){0,2}?(?:bugs?|code|errors?|functions?|methods?"
        r"|scripts?|tests?|quer(?:y|ies)|crash(?:es)?|exceptions?|regex|class|build|compil\w*|loop|memory leak"
        r"|race condition|deadlock)\b",
        "The {where} asks for help fixing or debugging code ('{match}').",
    ),
    _rule(
        TaskType.CODE_REVIEW,
        r"\bwhy\b[^.?!\n]{0,30}?\b(?:this|my|our)\s+(?:\w+\s+){0,2}?(?:code|functions?|methods?|scripts?|quer(?:y|ies)"
        r"|programs?|loops?|tests?|regex|class|build|components?|endpoints?|pipeline|container)\b",
        "The {where} asks why some code misbehaves ('{match}').",
    ),
    _rule(
        TaskType.CODE_REVIEW,
        r"\b(?:review|audit|critique|check)\s+(?:this|my|the|our|following|the following)\s+(?:\w+\s+){0,2}?"
        r"(?:code|pr|pull request|diff|patch|function|implementation|commit|class|module|script|query|sql|regex)\b"
        r"|\bcode review\b",
        "The {where} asks for a code review ('{match}').",
    ),
    _rule(
        TaskType.CODE_REVIEW,
        r"\b(?:explain|walk me through)\s+(?:this|the following|my|the|what this)\s+(?:\w+\s+)?(?:code|function"
        r"|snippet|script|regex|query|sql|stack trace|error)\b"
        r"|\bwhat does this (?:\w+\s+)?(?:code|function|snippet|script|regex|query|line|method) do\b"
        r"|\bwhat'?s wrong with (?:this|my|the) (?:\w+\s+)?(?:code|function|script|query|regex|sql|implementation)\b",
        "The {where} asks to explain or find problems in code ('{match}').",
    ),
    _rule(
        TaskType.CODE_REVIEW,
        r"\b(?:errors?|exceptions?|crash\w*|bugs?|fails?|failing|failed|broken|doesn'?t work|does not work"
        r"|not working|wrong output|unexpected|throws?|warnings?)\b",
        "The {where} contains a code block and mentions a problem ('{match}').",
        requires=FENCE,
    ),
    # Code generation: a request to write code, or how to do something in a programming language.
    _rule(
        TaskType.CODE_GENERATION,
        r"\b(?:write|implement|create|generate|build|code|refactor|rewrite|optimi[sz]e|port|convert|translate"
        r"|make|give me|show me)\b" + _gap(4) + CODE_NOUNS,
        "The {where} asks to write code ('{match}').",
    ),
    _rule(
        TaskType.CODE_GENERATION,
        r"\b(?:how (?:do|can|would|should) (?:i|you|we)|how to)\b[^.?!\n]{0,80}?\b(?:in|using|with) " + CODE_LANGS,
        "The {where} asks how to do something in a programming language ('{match}').",
    ),
    _rule(
        TaskType.CODE_GENERATION,
        r"\brefactor(?:ing)?\b",
        "The {where} asks to refactor code ('{match}').",
    ),
    _rule(
        TaskType.CODE_GENERATION,
        r"\b(?:write|implement|complete|finish|add|extend|rewrite|convert|port|optimi[sz]e|generate|create"
        r"|modify|update)\b",
        "The {where} contains a code block and asks to write or change code ('{match}').",
        requires=FENCE,
    ),
    # Translation.
    _rule(
        TaskType.TRANSLATION,
        r"\btranslate\b|\btranslation (?:of|into|to|for|from)\b",
        "The {where} asks for a translation ('{match}').",
    ),
    _rule(
        TaskType.TRANSLATION,
        # "into French" after an object ("put this into French") or at the start, but
        # not "I'm getting into French cooking".
        r"(?:^|[^\w\s]\s*|\b(?:this|it|text|sentence|paragraph|following|phrase|words?|that|them|these|message"
        r"|email|letter|document|page|below|above|language)\s+)into " + LANGUAGES
        + r"|\b" + LANGUAGES + r" (?:to|into|->|→) " + LANGUAGES,
        "The {where} asks for text in another language ('{match}').",
    ),
    _rule(
        TaskType.TRANSLATION,
        r"\bhow (?:do|would|can|to|does one) (?:you |i |we |one )?(?:say|write|spell)\b[^.?!\n]{0,60}?\bin "
        + LANGUAGES + r"|\bwhat(?:'s| is| does)\s+[\"'“‘][^\"'”’\n]{1,60}[\"'”’]\s+(?:mean\s+)?in " + LANGUAGES,
        "The {where} asks how to say something in another language ('{match}').",
    ),
    # Summarization.
    _rule(
        TaskType.SUMMARIZATION,
        r"\bsummari[sz]e[sd]?\b|\bsummary\b(?!\s+(?:judge?ment|statistics?|stats|table|execution|offen[cs]e"
        r"|dismissal|field|card))|\btl;? ?dr\b|\bcondense\b|\brecap\b|\bgist\b|\bboil (?:this|it) down\b",
        "The {where} asks for a summary ('{match}').",
    ),
    _rule(
        TaskType.SUMMARIZATION,
        r"\b(?:key|main) (?:points|takeaways|ideas|findings)\s+(?:of|from|in)\b",
        "The {where} asks for the key points of a text ('{match}').",
    ),
    # Classification.
    _rule(
        TaskType.CLASSIFICATION,
        r"\bclassify\b|\bclassification of\b|\bcategori[sz]e\b|\bcategori[sz]ation of\b"
        r"|\b(?:label|tag)\s+(?:each|every|this|these|the following|them|it|all)\b"
        r"|\bwhich (?:category|categories|label|bucket|intent|department)\b"
        r"|\b(?:one of|choose from|pick from) (?:these|the following) (?:categories|labels|classes|options)\b",
        "The {where} asks to classify or label something ('{match}').",
    ),
    _rule(
        TaskType.CLASSIFICATION,
        r"\bsentiment (?:of|analysis|score|label)\b|\b(?:the|its|overall) sentiment\b"
        r"|\bpositive,? (?:negative,? )?or (?:negative|neutral)\b|\bspam or (?:not|ham)\b",
        "The {where} asks for a sentiment or yes/no label ('{match}').",
    ),
    # Extraction.
    _rule(
        TaskType.EXTRACTION,
        r"\bextract(?:ing)?\s+(?:(?:all|the|every|each|any|only|just|key|relevant|important|these|those|this|them"
        r"|it|its|their|my|out|structured)\b|[^.?!\n]{0,60}?\bfrom\b)",
        "The {where} asks to extract information ('{match}').",
    ),
    _rule(
        TaskType.EXTRACTION,
        r"\b(?:parse|convert|turn|return|output|format|give)\b[^.?!\n]{0,60}?\b(?:into|as|in|to) (?:valid |a |an "
        r"|strict |structured )?(?:json|csv|yaml|xml|table)\b",
        "The {where} asks to turn text into structured data ('{match}').",
    ),
    _rule(
        TaskType.EXTRACTION,
        r"\b(?:list|find|get|pull out|identify|give me|highlight) (?:(?:all|every|each)\s+)?(?:of\s+)?(?:the\s+)?"
        r"(?:\w+\s+)?(?:names|dates|emails?|email addresses|phone numbers|urls|links|entities|addresses|people"
        r"|persons|companies|organi[sz]ations|amounts|prices|numbers|locations|places|skills|keywords|mentions"
        r"|references|citations)\b[^.?!\n]{0,60}?\b(?:mentioned|appearing|in (?:this|the|these)|from (?:this|the)"
        r"|below|above|following)\b",
        "The {where} asks to list specific items found in a text ('{match}').",
    ),
    # Reasoning / math.
    _rule(
        TaskType.REASONING,
        r"\b\d+(?:\.\d+)?\s*[a-z](?:\^\d+|²)?\s*[-+*/]\s*\w|\b[a-z](?:\^\d+|²)?\s*[-+*/]\s*\d+(?:\.\d+)?\s*=\s*-?\d"
        r"|\d+(?:\.\d+)?\s*(?:[+*×÷^]\s*|\s[-/]\s+)\d+(?:\.\d+)?|\b\d+(?:\.\d+)?\s*% of \d+",
        "The {where} contains a math expression or equation ('{match}').",
    ),
    _rule(
        TaskType.REASONING,
        r"\bcalculate\b|\bcompute (?:the|a|an|how)\b|\bsolve for\b|\bsolve (?:this|the|these|following|an?|my)\s+"
        r"(?:\w+\s+){0,2}?(?:equations?|inequalit(?:y|ies)|integrals?|riddles?|puzzles?|system|sudoku|math|maths"
        r"|word problem|limit)\b|\bprove (?:that|the|this)\b|\b(?:derivative|integral|limit) of\b"
        r"|\bprobability (?:of|that)\b|\bexpected value\b|\bsimplify (?:the |this )?(?:expression|fraction|equation)\b",
        "The {where} asks to solve, prove or calculate something ('{match}').",
    ),
    _rule(
        TaskType.REASONING,
        r"\bstep[- ]by[- ]step\b|\bshow (?:your|the) (?:work|reasoning)\b|\breason (?:carefully|through)\b",
        "The {where} asks for step-by-step reasoning ('{match}').",
    ),
    _rule(
        TaskType.REASONING,
        r"\bhow (?:many|much|long|far|fast|old)\b",
        "The {where} is a word problem with numbers ('{match}').",
        requires=r"\d(?:[^\d.,]|[.,](?!\d))+\d",  # at least two separate numbers
    ),
    # Creative writing.
    _rule(
        TaskType.CREATIVE_WRITING,
        r"\b(?:write|compose|create|generate|craft|pen|make up|tell|draft|come up with|give me)\b"
        r"(?:\W+(?!about\b)\w+){0,4}?\W+" + CREATIVE_NOUNS
        + r"|\b(?:an? )(?:haiku|limerick|sonnet|poem|ode|short story|bedtime story|ballad|song)\s+(?:about|on|for)\b"
        r"|\bonce upon a time\b",
        "The {where} asks for a poem, story or other creative writing ('{match}').",
    ),
)


def _system_rule(task: TaskType, verbs: str, roles: str, reason: str) -> Rule:
    """A system-prompt rule: an instruction ("Translate ...", "Your task is to translate",
    "You translate ...") or a role ("You are a professional translator").

    Only sentence-initial instructions count, so "If the user asks you to translate, ..."
    in a general-purpose system prompt does not make every request a translation.
    """
    instruction = (
        r"(?:^|[.!?:;\n]\s*|\byou(?: will| should| must| always| only)?\s+|\b(?:job|task|role|goal|purpose) is to\s+)"
        rf"(?:please\s+)?{verbs}\b"
    )
    role = rf"\byou are (?:an? |the )?(?:[\w-]+\s+){{0,3}}?{roles}\b"
    return _rule(task, f"{instruction}|{role}", reason)


# --- rules for the system prompt, read only when the last user message matched nothing --
SYSTEM_RULES: tuple[Rule, ...] = (
    _system_rule(
        TaskType.CODE_REVIEW,
        r"(?:review|audit|debug) (?:the |their |the user's |submitted )?(?:code|pull requests?|diffs?|patches)",
        _alt("code reviewer", "debugger", "debugging assistant"),
        "The {where} sets the assistant up to review or debug code ('{match}').",
    ),
    _system_rule(
        TaskType.CODE_GENERATION,
        r"(?:write|generate) (?:only )?(?:the )?code",
        _alt("programmer", "software engineer", "software developer", "developer", "coding assistant", "coder"),
        "The {where} sets the assistant up to write code ('{match}').",
    ),
    _system_rule(
        TaskType.TRANSLATION,
        "translate",
        _alt("translator", "interpreter", "translation (?:assistant|engine|tool|model)"),
        "The {where} sets the assistant up to translate ('{match}').",
    ),
    _system_rule(
        TaskType.SUMMARIZATION,
        _alt(r"summari[sz]e", "condense"),
        _alt(r"summari[sz]er", r"summari[sz]ation (?:assistant|engine|tool|model|bot)"),
        "The {where} sets the assistant up to summarize ('{match}').",
    ),
    _system_rule(
        TaskType.CLASSIFICATION,
        _alt("classify", r"categori[sz]e", r"label (?:each|every|the|it)", r"tag (?:each|every|the|it)"),
        _alt("classifier", "classification (?:assistant|engine|tool|model|bot)", "sentiment analy[sz]er"),
        "The {where} sets the assistant up to classify ('{match}').",
    ),
    _system_rule(
        TaskType.EXTRACTION,
        _alt("extract", "parse"),
        _alt("extractor", r"(?:data |information |entity )?extraction (?:assistant|engine|tool|model|bot)", "parser"),
        "The {where} sets the assistant up to extract data ('{match}').",
    ),
    _system_rule(
        TaskType.REASONING,
        r"solve (?:math|maths|the math)",
        _alt("mathematician", r"math(?:s|ematics)? (?:tutor|teacher|expert|assistant)", "logician"),
        "The {where} sets the assistant up for math or reasoning ('{match}').",
    ),
    _system_rule(
        TaskType.CREATIVE_WRITING,
        r"write (?:poems|stories|poetry|song lyrics|lyrics|fiction)",
        _alt("poet", "novelist", "storyteller", "songwriter", "lyricist", "screenwriter", "playwright",
             "creative writer", "fiction writer", "creative writing assistant"),  # fmt: skip
        "The {where} sets the assistant up for creative writing ('{match}').",
    ),
)

_CLASSIFY_USER = tuple(r for r in USER_RULES if r.task == TaskType.CLASSIFICATION)
_CLASSIFY_SYSTEM = tuple(r for r in SYSTEM_RULES if r.task == TaskType.CLASSIFICATION)
JSON_FORMATS = frozenset({"json_object", "json_schema"})

# --- hints ------------------------------------------------------------------------------
HINT_ALIASES: dict[str, TaskType] = {
    "general": TaskType.CHAT,
    "default": TaskType.CHAT,
    "code": TaskType.CODE_GENERATION,
    "coding": TaskType.CODE_GENERATION,
    "codegen": TaskType.CODE_GENERATION,
    "review": TaskType.CODE_REVIEW,
    "debug": TaskType.CODE_REVIEW,
    "debugging": TaskType.CODE_REVIEW,
    "summarize": TaskType.SUMMARIZATION,
    "summarise": TaskType.SUMMARIZATION,
    "summary": TaskType.SUMMARIZATION,
    "summarisation": TaskType.SUMMARIZATION,
    "translate": TaskType.TRANSLATION,
    "extract": TaskType.EXTRACTION,
    "json": TaskType.EXTRACTION,
    "classify": TaskType.CLASSIFICATION,
    "math": TaskType.REASONING,
    "maths": TaskType.REASONING,
    "creative": TaskType.CREATIVE_WRITING,
    "writing": TaskType.CREATIVE_WRITING,
    "long": TaskType.LONG_CONTEXT,
    "tools": TaskType.TOOL_USE,
    "tool": TaskType.TOOL_USE,
    "function_calling": TaskType.TOOL_USE,
    "image": TaskType.VISION,
    "images": TaskType.VISION,
}
_HINTS: dict[str, TaskType] = {**{t.value: t for t in TaskType}, **HINT_ALIASES}


def parse_hint(value: Any) -> TaskType | None:
    """The task a client hint names, or None: case-insensitive, '-' and ' ' read as '_'."""
    if not isinstance(value, str):
        return None
    return _HINTS.get(value.strip().lower().replace("-", "_").replace(" ", "_"))


# --- detection ----------------------------------------------------------------------------
def detect_task(req: ChatRequest, hint: str | None = None, *, long_context_tokens: int = 16000) -> TaskDecision:
    """Decide the task of `req`. `hint` is the x-gateway-task header, if the client sent one.

    The header is read first, then `metadata["task"]`; the first recognised one wins. An
    unrecognised hint is ignored (the rules decide) and the reason says so.
    """
    ignored: list[str] = []
    candidates = ((hint, f"{HINT_HEADER} header"), ((req.metadata or {}).get("task"), "metadata.task"))
    for value, via in candidates:
        if value is None or (isinstance(value, str) and not value.strip()):
            continue
        task = parse_hint(value)
        if task is None:
            ignored.append(f"{via} value '{_quote(str(value))}'")
            continue
        reason = f"The client asked for the {task.label} task via the {via} ('{_quote(value)}')"
        return TaskDecision(task, "hint", _with_ignored(reason, ignored))
    decision = _detect(req, long_context_tokens)
    if ignored:
        return TaskDecision(decision.task, decision.source, _with_ignored(decision.reason.removesuffix("."), ignored))
    return decision


def _detect(req: ChatRequest, long_context_tokens: int) -> TaskDecision:
    messages = req.messages
    if any(m.get("role") == "user" and _has_image(m.get("content")) for m in messages):
        return TaskDecision(TaskType.VISION, "rules", "A user message contains an image.")
    tokens = estimate_prompt_tokens(messages)
    if tokens >= long_context_tokens:
        return TaskDecision(
            TaskType.LONG_CONTEXT,
            "rules",
            f"The prompt is about {tokens:,} tokens long, at or above the {long_context_tokens:,}-token long-context threshold.",
        )
    params = req.params or {}
    tools = params.get("tools") or params.get("functions")
    if tools and params.get("tool_choice") != "none":
        n = len(tools) if isinstance(tools, list) else 1
        return TaskDecision(TaskType.TOOL_USE, "rules", f"The request offers the model {n} tool{'s' if n != 1 else ''} to call.")

    user = _clipped(_last_user_text(messages))
    system = _clipped("\n".join(message_text(m.get("content")) for m in messages if m.get("role") in ("system", "developer")))
    response_format = params.get("response_format")
    fmt = response_format.get("type") if isinstance(response_format, dict) else None
    if fmt in JSON_FORMATS:
        hit = _first_match(_CLASSIFY_USER, user, "last user message") or _first_match(_CLASSIFY_SYSTEM, system, "system prompt")
        if hit is not None:
            return TaskDecision(hit.task, "rules", f"The request asks for JSON output, but {hit.reason[0].lower()}{hit.reason[1:]}")
        return TaskDecision(TaskType.EXTRACTION, "rules", f"The request asks for the answer as JSON (response_format {fmt}).")

    hit = _first_match(USER_RULES, user, "last user message") or _first_match(SYSTEM_RULES, system, "system prompt")
    if hit is not None:
        return hit
    return TaskDecision(TaskType.CHAT, "default", "No rule matched, so the request is treated as general chat.")


def _first_match(rules: tuple[Rule, ...], text: tuple[str, str], where: str) -> TaskDecision | None:
    original, lowered = text
    if not lowered:
        return None
    for rule in rules:
        m = rule.pattern.search(lowered)
        if m is not None and (rule.requires is None or rule.requires.search(lowered) is not None):
            # Quote the client's own spelling when lowercasing kept the positions.
            source = original if len(original) == len(lowered) else lowered
            return TaskDecision(rule.task, "rules", rule.reason.format(where=where, match=_quote(source[m.start() : m.end()])))
    return None


def _has_image(content: Any) -> bool:
    return isinstance(content, list) and any(isinstance(p, dict) and p.get("type") == "image_url" for p in content)


def _last_user_text(messages: list[dict[str, Any]]) -> str:
    for m in reversed(messages):
        if m.get("role") == "user":
            return message_text(m.get("content"))
    return ""


def _clipped(text: str) -> tuple[str, str]:
    """(text, lowercased text), long texts cut to their head and tail."""
    if len(text) > HEAD_CHARS + TAIL_CHARS:
        text = f"{text[:HEAD_CHARS]}\n{text[-TAIL_CHARS:]}"
    return text, text.lower()


def _quote(text: str) -> str:
    """The trigger words as quoted in a reason: one line, trimmed, at most QUOTE_CHARS."""
    text = " ".join(text.split()).strip(" .,;:!?'\"")
    return text if len(text) <= QUOTE_CHARS else text[: QUOTE_CHARS - 1].rstrip() + "…"


def _with_ignored(reason: str, ignored: list[str]) -> str:
    if not ignored:
        return f"{reason}."
    return f"{reason}; the {' and the '.join(ignored)} {'was' if len(ignored) == 1 else 'were'} not recognised as a task, so ignored."
