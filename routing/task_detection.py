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
"""

from __future__ import annotations

import re
import string
from dataclasses import dataclass
from typing import Any

from django.db import models

from providers.tokens import estimate_prompt_tokens, message_text
from providers.types import ChatRequest

HINT_HEADER = "x-gateway-task"

# Long messages are read on their head and tail only: requests usually put the
# instruction before or after the pasted material, and the cost stays bounded.
HEAD_CHARS = 4000
TAIL_CHARS = 2000
QUOTE_CHARS = 40
USER, SYSTEM = "last user message", "system prompt"  # the {where} of a rule's reason


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


# --- text preparation -------------------------------------------------------------------
# Curly quotes read as straight ones, so "what’s" matches a rule written "what's".
# One character for one, so positions in the lowered text are positions in the original.
_STRAIGHTEN = str.maketrans("‘’“”", "''\"\"")
# Characters that separate words when collecting trigger words (besides whitespace).
_SEPARATORS = str.maketrans({c: " " for c in string.punctuation + "‘’“”«»–—…•·→"})


@dataclass(frozen=True, slots=True)
class Text:
    """A message as the rules read it: clipped, lowercased, and its set of words."""

    original: str
    lowered: str
    words: frozenset[str]

    @classmethod
    def of(cls, text: str) -> Text:
        if len(text) > HEAD_CHARS + TAIL_CHARS:
            text = f"{text[:HEAD_CHARS]}\n{text[-TAIL_CHARS:]}"
        lowered = text.lower().translate(_STRAIGHTEN)
        return cls(text, lowered, frozenset(lowered.translate(_SEPARATORS).split()))


# --- rules ----------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Rule:
    """One row: the text is `task` when a trigger occurs as whole words and `then`
    matches right after it (and `requires` matches somewhere in the text).

    Rows without triggers are a bare `pattern` instead, run only when the text holds
    one of `gate_chars`. `reason` is a sentence template: `{where}` becomes "last user
    message" or "system prompt", `{match}` the words that triggered the rule.
    """

    task: TaskType
    reason: str
    triggers: tuple[str, ...]
    # (gate word, regex) per trigger; a gate word of "" means "run the regex regardless"
    searches: tuple[tuple[str, re.Pattern[str]], ...]
    gate_words: frozenset[str]
    gate_chars: str = ""
    requires: re.Pattern[str] | None = None

    def search(self, text: Text) -> re.Match[str] | None:
        if self.gate_words:
            if self.gate_words.isdisjoint(text.words):
                return None
        elif not any(c in text.lowered for c in self.gate_chars):
            return None
        for word, regex in self.searches:
            if word and word not in text.words:
                continue
            m = regex.search(text.lowered)
            if m is not None and (self.requires is None or self.requires.search(text.lowered) is not None):
                return m
        return None


def _gate_word(trigger: str) -> str:
    """The word of `trigger` looked up in a text's word set before any regex runs: the
    longest one, usually the rarest ("many" in "how many")."""
    return max(trigger.translate(_SEPARATORS).split(), key=len)


def _phrase(trigger: str) -> str:
    return r"\s+".join(re.escape(word) for word in trigger.split(" "))


def _trigger_regex(trigger: str, then: str) -> str:
    """`trigger` as whole words, then `then`. The regex starts with the trigger's literal
    first word (the fast path); the word boundary before it is a look-behind placed after it."""
    first, _, rest = trigger.partition(" ")
    regex = re.escape(first)
    if re.match(r"\w", first):
        regex += rf"(?<!\w.{{{len(first)}}})"
    if rest:
        regex += r"\s+" + _phrase(rest)
    if re.search(r"\w$", trigger):
        regex += r"(?!\w)"
    return regex + then


def rule(
    task: TaskType,
    triggers: tuple[str, ...] | str,
    reason: str,
    *,
    before: str = "",
    then: str = "",
    requires: str | None = None,
) -> Rule:
    """A row fired by trigger words (plain lowercase words or phrases).

    Without `before`, each trigger gets its own regex, run only when the trigger's gate
    word is in the text. With `before` (context that must precede the trigger), the row
    is one regex, run when any gate word is in the text.
    """
    triggers = (triggers,) if isinstance(triggers, str) else triggers
    if before:
        regex = before + _alt(*(_phrase(t) for t in triggers)) + r"(?!\w)" + then
        searches: tuple[tuple[str, re.Pattern[str]], ...] = (("", re.compile(regex)),)
    else:
        searches = tuple((_gate_word(t), re.compile(_trigger_regex(t, then))) for t in triggers)
    gate_words = frozenset(_gate_word(t) for t in triggers)
    return Rule(task, reason, triggers, searches, gate_words, requires=_compile(requires))


def pattern_rule(task: TaskType, pattern: str, reason: str, *, gate_chars: str) -> Rule:
    """A row with no trigger word. `pattern` should start with a literal or a small
    character set, and `gate_chars` list characters without which it cannot match."""
    return Rule(task, reason, (), (("", re.compile(pattern)),), frozenset(), gate_chars=gate_chars)


def _compile(pattern: str | None) -> re.Pattern[str] | None:
    return re.compile(pattern) if pattern else None


def _alt(*words: str) -> str:
    return "(?:" + "|".join(words) + ")"


def _preceded_by(words: tuple[str, ...], trigger: str) -> str:
    """Look-behinds (placed after `trigger`): the word before the trigger is one of `words`."""
    return _alt(*(rf"(?<=\b{w} {trigger})" for w in words))


# --- vocabulary -------------------------------------------------------------------------------
LANGUAGE_NAMES = (
    "english", "french", "spanish", "german", "italian", "portuguese", "dutch", "russian", "ukrainian", "polish",
    "czech", "slovak", "swedish", "norwegian", "danish", "finnish", "icelandic", "greek", "turkish", "arabic",
    "hebrew", "persian", "farsi", "hindi", "urdu", "bengali", "punjabi", "tamil", "chinese", "mandarin", "cantonese",
    "japanese", "korean", "vietnamese", "thai", "indonesian", "malay", "tagalog", "filipino", "swahili", "romanian",
    "hungarian", "bulgarian", "serbian", "croatian", "catalan", "basque", "latin", "esperanto",
)  # fmt: skip
LANGUAGES = _alt(*LANGUAGE_NAMES) + r"\b"
# Programming languages and stacks. Those that are also everyday words ("swift",
# "rust", "ruby", "java", "bash", "react", ...) count only after "in"/"using"/"with";
# "go", "c" and "r" not at all.
CLEAR_CODE_LANGS = (
    "python", "javascript", "typescript", "golang", r"c\+\+", "c#", "kotlin", "php", "haskell", "powershell", "sql",
    "postgresql", "mysql", r"node\.?js", "django", "numpy", "terraform", "html", "css",
)  # fmt: skip
CODE_LANGS = _alt(
    *CLEAR_CODE_LANGS, "java", "rust", "swift", "ruby", "scala", "bash", "perl", "elixir", "lua", "dart", "react",
    "flask", "pandas",
) + r"(?![\w+#])"  # fmt: skip
# Not a discount code, a QR code or a code of conduct.
_CODE = "".join(f"(?<!{w} )" for w in ("discount", "promo", "coupon", "qr", "zip", "postal", "area", "dress", "morse"))
_CODE += r"code(?!\s+of\b)"
CODE_NOUNS = _alt(
    "functions?", "methods?", r"class(?:es)?(?!\s+(?:schedule|plan|notes|trip|reunion|syllabus|list|presentation))",
    # "a script for my youtube video" is a screenplay, "a script to rename files" is code.
    r"scripts?(?![^.?!\n]{0,40}\b(?:video|youtube|tiktok|ad|advert|commercial|play|movie|film|scene|skit|podcast"
    r"|episode|presentation|speech|wedding|sketch|comedy)\b)",
    "modules?", r"quer(?:y|ies)(?!\s+letters?)", "regex(?:es)?", "regular expressions?", "unit tests?",
    "test cases?", "test suites?", "endpoints?", "snippets?", _CODE, "codebase", "algorithms?", "components?",
    "dockerfiles?", "makefiles?", "apis?", "cli", "decorators?", "structs?", "lambdas?", "stored procedures?",
    r"(?:in|using)\s+" + CODE_LANGS, *CLEAR_CODE_LANGS,
) + r"(?:\b|(?<=[+#]))"  # fmt: skip
# Words that, between a verb and a code word, mean prose about code rather than code:
# "write a poem about functions", "give me a summary of this python article".
PROSE = _alt(
    "about", "poems?", "poetry", r"stor(?:y|ies)", "songs?", "lyrics", "haikus?", "limericks?", "sonnets?",
    "essays?", "letters?", "emails?", r"speech(?:es)?", "blog", "articles?", "novels?", "jokes?", "summary",
    "summaries", "overview", "explanation", "history", "translation", "tweets?", "posts?",
) + r"\b"  # fmt: skip
# A story, but not "the story of ...", a user story or a success story.
_STORY = r"(?<!the )(?<!user )(?<!success )stor(?:y|ies)"
CREATIVE_NOUNS = _alt(
    "poems?", "poetry", "haikus?", "limericks?", "sonnets?", "lyrics", "songs?", "raps?", "verses?", "ballads?",
    "odes?", "screenplays?", r"scripts? for (?:a|an|my|the)", _STORY, "fables?", "fairy ?tales?", "monologues?",
    "jokes?", "riddles?", "chapters?", "plot twists?",
) + r"\b(?!\s+(?:recommendations?|suggestions?|playlists?|lists?|titles?|names?|analysis|meaning|summary))"  # fmt: skip
# What "my ..." or "this ..." must be for a question to be about code: "why does my
# script fail", not "why did my blood test fail".
CODE_THINGS = _alt(
    "code", "functions?", "methods?", "scripts?", r"quer(?:y|ies)", "programs?", "loops?", "unit tests?",
    "test suite", "regex", "build", "components?", "endpoints?", "pipeline", "container", "app", "snippet", "sql",
    "compiler", "ci",
)  # fmt: skip
# At most one word between "my"/"this" and the code thing, and only a language or a
# small adjective: "my python script", "this new endpoint".
_CODE_QUALIFIER = r"(?:(?:" + CODE_LANGS + r"|own|new|simple|little|current|old)\s+)?"
ERROR_NAMES = (
    "traceback", "stack trace", "stacktrace", "segmentation fault", "segfault", "core dumped", "uncaught",
    "exception in thread", "undefined is not a function", "cannot read properties of", "cannot read property",
    "typeerror", "valueerror", "keyerror", "indexerror", "attributeerror", "nameerror", "importerror",
    "modulenotfounderror", "syntaxerror", "indentationerror", "zerodivisionerror", "runtimeerror", "recursionerror",
    "filenotfounderror", "referenceerror", "rangeerror", "nullpointerexception", "illegalargumentexception",
    "illegalstateexception", "classnotfoundexception", "indexoutofboundsexception",
    "arrayindexoutofboundsexception", "numberformatexception", "concurrentmodificationexception",
    "stackoverflowerror", "outofmemoryerror",
)  # fmt: skip
PROBLEM_WORDS = (
    "error", "errors", "exception", "exceptions", "crash", "crashes", "crashed", "crashing", "bug", "bugs", "fail",
    "fails", "failing", "failed", "broken", "doesn't work", "doesnt work", "does not work", "not working",
    "wrong output", "unexpected", "throws", "throw", "warning", "warnings",
)  # fmt: skip
CODE_VERBS = (
    "write", "implement", "create", "generate", "build", "code", "refactor", "rewrite", "optimize", "optimise",
    "port", "convert", "translate", "make", "give me", "show me",
)  # fmt: skip
FENCE = "```"  # a Markdown code block

# --- rules for the last user message, in priority order --------------------------------------
USER_RULES: tuple[Rule, ...] = (
    # Code review / debugging: an error trace, or a request to fix, review or explain code.
    rule(TaskType.CODE_REVIEW, ERROR_NAMES, "The {where} contains an error trace or exception ('{match}')."),
    pattern_rule(
        TaskType.CODE_REVIEW,
        r"error(?<=[a-z_]error):|exception(?<=[a-z_.]exception):",  # SomethingError: / SomeException:
        "The {where} contains an error message ('{match}').",
        gate_chars=":",
    ),
    rule(
        TaskType.CODE_REVIEW,
        ("debug", "debugging", "is there a bug"),
        "The {where} asks for help debugging code ('{match}').",
    ),
    rule(
        TaskType.CODE_REVIEW,
        ("fix", "find"),
        "The {where} asks for help fixing code ('{match}').",
        then=r"\s+(?:this|the|my|a|any|that|these|our)\s+(?:\w+\s+){0,2}?(?:bugs?|code|error|functions?|methods?"
        r"|scripts?|unit\s+tests?|failing\s+tests?|test\s+suite|quer(?:y|ies)|crash(?:es)?|exceptions?|regex|build"
        r"|compil\w*|loop|memory\s+leak|race\s+condition|deadlock)\b",
    ),
    rule(
        TaskType.CODE_REVIEW,
        "why",
        "The {where} asks why some code misbehaves ('{match}').",
        then=r"[^.?!\n]{0,30}?\b(?:this|my|our)\s+" + _CODE_QUALIFIER + CODE_THINGS + r"\b",
    ),
    rule(
        TaskType.CODE_REVIEW,
        ("review", "audit", "critique", "check"),
        "The {where} asks for a code review ('{match}').",
        then=r"\s+(?:this|my|the|our|following|the\s+following)\s+" + _CODE_QUALIFIER
        + r"(?:code|pr|pull\s+request|diff|patch|function|commit|query|sql|regex|snippet)\b",
    ),
    rule(
        TaskType.CODE_REVIEW,
        "code review",
        "The {where} asks for a code review ('{match}').",
        then=r"(?!\s+(?:meeting|process|culture|guidelines|checklist|training))",
    ),
    rule(
        TaskType.CODE_REVIEW,
        ("explain", "walk me through"),
        "The {where} asks to explain some code ('{match}').",
        then=r"\s+(?:this|the\s+following|my|what\s+this)\s+" + _CODE_QUALIFIER
        + r"(?:code|function|snippet|script|regex|query|sql|stack\s+trace|error)\b",
    ),
    rule(
        TaskType.CODE_REVIEW,
        ("what's wrong with", "whats wrong with", "what is wrong with", "what does this"),
        "The {where} asks what a piece of code does or gets wrong ('{match}').",
        then=r"\s+(?:(?:this|my|the)\s+)?" + _CODE_QUALIFIER + CODE_THINGS + r"\b",
    ),
    rule(
        TaskType.CODE_REVIEW,
        PROBLEM_WORDS,
        "The {where} contains a code block and mentions a problem ('{match}').",
        requires=FENCE,
    ),
    # Code generation: a request to write code, or how to do something in a programming language.
    rule(
        TaskType.CODE_GENERATION,
        CODE_VERBS,
        "The {where} asks to write code ('{match}').",
        then=rf"(?:\W+(?!{PROSE})\w+){{0,4}}?\W+(?:(?:in|using)\s+)?{CODE_NOUNS}",
    ),
    rule(
        TaskType.CODE_GENERATION,
        "how",
        "The {where} asks how to do something in a programming language ('{match}').",
        then=r"\s+(?:(?:do|can|would|should)\s+(?:i|you|we)|to)\b[^.?!\n]{0,80}?\b(?:in|using|with)\s+" + CODE_LANGS,
    ),
    rule(TaskType.CODE_GENERATION, ("refactor", "refactoring"), "The {where} asks to refactor code ('{match}')."),
    rule(
        TaskType.CODE_GENERATION,
        ("write", "implement", "complete", "finish", "add", "extend", "rewrite", "convert", "port", "optimize",
         "optimise", "generate", "create", "modify", "update"),  # fmt: skip
        "The {where} contains a code block and asks to write or change code ('{match}').",
        requires=FENCE,
    ),
    # Translation.
    rule(
        TaskType.TRANSLATION,
        ("translate", "translation of", "translation into", "translation to", "translation from"),
        "The {where} asks for a translation ('{match}').",
    ),
    rule(
        TaskType.TRANSLATION,
        "into",
        "The {where} asks for text in another language ('{match}').",
        # "put this into French", not "I'm getting into French cooking".
        then=_alt(
            _preceded_by(
                ("this", "it", "text", "sentence", "sentences", "paragraph", "following", "phrase", "word", "words",
                 "that", "them", "these", "message", "email", "letter", "document", "page", "below", "above",
                 "everything", "back"),  # fmt: skip
                "into",
            ),
            r"(?<=[^\w\s] into)",
            r"(?<=[^\w\s]into)",
        )
        + r"\s+"
        + LANGUAGES,
    ),
    rule(
        TaskType.TRANSLATION,
        LANGUAGE_NAMES,
        "The {where} asks for text in another language ('{match}').",
        then=r"\s+(?:to|into|->|→)\s+" + LANGUAGES,
    ),
    rule(
        TaskType.TRANSLATION,
        "how",
        "The {where} asks how to say something in another language ('{match}').",
        then=r"\s+(?:do|would|can|to|does\s+one)\s+(?:you\s+|i\s+|we\s+|one\s+)?(?:say|write|spell)\b[^.?!\n]{0,60}?"
        r"\bin\s+" + LANGUAGES,
    ),
    rule(
        TaskType.TRANSLATION,
        "what",
        "The {where} asks what something means in another language ('{match}').",
        then=r"(?:'s|\s+is|\s+does)\s+[\"'][^\"'\n]{1,60}[\"']\s+(?:mean\s+)?in\s+" + LANGUAGES,
    ),
    # Summarization.
    rule(
        TaskType.SUMMARIZATION,
        ("summarize", "summarise", "sum up", "tl;dr", "tldr", "condense", "recap", "gist", "boil this down",
         "boil it down"),  # fmt: skip
        "The {where} asks for a summary ('{match}').",
    ),
    rule(
        TaskType.SUMMARIZATION,
        "summary",
        "The {where} asks for a summary ('{match}').",
        then=r"(?!\s+(?:judge?ment|statistics?|stats|table|execution|offen[cs]e|dismissal|field|card))",
    ),
    rule(
        TaskType.SUMMARIZATION,
        ("key points", "key takeaways", "key findings", "main points", "main ideas", "main takeaways"),
        "The {where} asks for the key points of a text ('{match}').",
        then=r"\s+(?:of|from|in)\b",
    ),
    # Classification.
    rule(
        TaskType.CLASSIFICATION,
        ("classify", "categorize", "categorise", "classification of", "categorization of", "categorisation of"),
        "The {where} asks to classify something ('{match}').",
    ),
    rule(
        TaskType.CLASSIFICATION,
        ("label", "tag"),
        "The {where} asks to label something ('{match}').",
        then=r"\s+(?:each|every|this|these|the\s+following|them|it|all)\b",
    ),
    rule(
        TaskType.CLASSIFICATION,
        "which",
        "The {where} asks which category something belongs to ('{match}').",
        then=r"\s+(?:category|categories|label|bucket|intent|department)\b",
    ),
    rule(
        TaskType.CLASSIFICATION,
        ("choose from", "pick from", "one of"),
        "The {where} asks to pick one of a set of categories ('{match}').",
        then=r"\s+(?:these|the\s+following)\s+(?:categories|labels|classes)\b",
    ),
    rule(
        TaskType.CLASSIFICATION,
        ("sentiment of", "sentiment analysis", "sentiment score", "sentiment label", "the sentiment",
         "its sentiment", "overall sentiment"),  # fmt: skip
        "The {where} asks for the sentiment of a text ('{match}').",
    ),
    rule(
        TaskType.CLASSIFICATION,
        ("positive", "spam"),
        "The {where} asks for a yes/no or positive/negative label ('{match}').",
        then=r",?\s+(?:(?:negative,?\s+)?or\s+(?:negative|neutral)|or\s+(?:not|ham))\b",
    ),
    # Extraction.
    rule(
        TaskType.EXTRACTION,
        ("extract", "extracting", "pull out"),
        "The {where} asks to extract information ('{match}').",
        then=r"\s+(?:(?:all|the|every|each|any|only|just|key|relevant|important|these|those|this|them|it|its|their"
        r"|my|out|structured)\b|[^.?!\n]{0,60}?\bfrom\b)",
    ),
    rule(
        TaskType.EXTRACTION,
        ("parse", "convert", "turn", "return", "output", "format", "give"),
        "The {where} asks to turn text into structured data ('{match}').",
        then=r"[^.?!\n]{0,60}?\b(?:into|as|in|to)\s+(?:valid\s+|a\s+|an\s+|strict\s+|structured\s+)?"
        r"(?:json|csv|yaml|xml|table)\b",
    ),
    rule(
        TaskType.EXTRACTION,
        ("list", "find", "get", "pull out", "identify", "give me", "highlight"),
        "The {where} asks to list specific items found in a text ('{match}').",
        then=r"\s+(?:(?:all|every|each)\s+)?(?:of\s+)?(?:the\s+)?(?:\w+\s+)?(?:names|dates|emails?|email\s+addresses"
        r"|phone\s+numbers|urls|links|entities|addresses|people|persons|companies|organi[sz]ations|amounts|prices"
        r"|numbers|locations|places|skills|keywords|mentions|references|citations)\b[^.?!\n]{0,60}?"
        r"\b(?:mentioned|appearing|in\s+(?:this|the|these)|from\s+(?:this|the)|below|above|following)\b",
    ),
    # Reasoning / math.
    pattern_rule(
        TaskType.REASONING,
        # 3x + 5 | x^2 - 4 = 0 | 17 * 23 | 2^10 | 15% of 80. A bare "-" or "/" between numbers does
        # not count: "2024-05-01", "3/4 cup", "cook 5 - 10 minutes".
        r"[0-9](?:[0-9]*(?:\.[0-9]+)?\s*[a-z](?:\^[0-9]+|²)?\s*[-+*/=]\s*\w|\s*=\s*-?[0-9]"
        r"|[0-9]*(?:\.[0-9]+)?\s*[+*×÷^]\s*[0-9]+|[0-9]*(?:\.[0-9]+)?\s*% of [0-9]+)",
        "The {where} contains a math expression or equation ('{match}').",
        gate_chars="0123456789",
    ),
    rule(
        TaskType.REASONING,
        ("what is", "what's", "whats"),
        "The {where} asks for the result of a calculation ('{match}').",
        then=r"\s+-?[0-9][0-9.,]*\s*(?:[-+*/x×÷^]|plus|minus|times|divided\s+by|multiplied\s+by)\s*-?[0-9]",
    ),
    rule(
        TaskType.REASONING,
        ("calculate", "solve for", "prove that", "prove the", "prove this", "derivative of", "integral of",
         "probability of", "probability that", "expected value"),  # fmt: skip
        "The {where} asks to solve, prove or calculate something ('{match}').",
    ),
    rule(
        TaskType.REASONING,
        ("solve", "compute", "simplify"),
        "The {where} asks to solve, prove or calculate something ('{match}').",
        then=r"\s+(?:(?:this|the|these|following|an?|my|how)\s+)?(?:\w+\s+){0,2}?(?:equations?|inequalit(?:y|ies)"
        r"|integrals?|riddles?|puzzles?|system|sudoku|math|maths|word\s+problem|expression|fraction|sum|product"
        r"|average|mean|many|much|total)\b",
    ),
    rule(
        TaskType.REASONING,
        ("step by step", "step-by-step", "show your work", "show the work", "show your reasoning", "reason through",
         "reason carefully"),  # fmt: skip
        "The {where} asks for step-by-step reasoning ('{match}').",
    ),
    rule(
        TaskType.REASONING,
        ("how many", "how much", "how long", "how far", "how fast", "how old"),
        "The {where} is a word problem with numbers ('{match}').",
        requires=r"[0-9](?:[^0-9.,]|[.,](?![0-9]))+[0-9]",  # at least two separate numbers
    ),
    # Creative writing.
    rule(
        TaskType.CREATIVE_WRITING,
        ("write", "compose", "create", "generate", "craft", "pen", "make up", "draft", "come up with", "give me"),
        "The {where} asks for a poem, story or other creative writing ('{match}').",
        then=r"(?:\W+(?!about\b)\w+){0,4}?\W+" + CREATIVE_NOUNS,
    ),
    rule(
        TaskType.CREATIVE_WRITING,
        "tell",
        "The {where} asks for a story or a joke ('{match}').",
        then=r"(?:\W+(?!about\b)\w+){0,3}?\W+(?:" + _STORY + r"|jokes?|fables?|fairy ?tales?|riddles?)\b",
    ),
    rule(
        TaskType.CREATIVE_WRITING,
        ("haiku", "limerick", "sonnet", "poem", "ode", "short story", "bedtime story", "ballad", "song"),
        "The {where} asks for a poem, story or other creative writing ('{match}').",
        then=r"\s+(?:about|on|for)\s+(?!the\b|this\b|that\b)",
    ),
    rule(TaskType.CREATIVE_WRITING, "once upon a time", "The {where} starts a story ('{match}')."),
)


# A system prompt sentence that starts with an instruction: "Translate ...", "You will
# translate ...", "Your task is to translate ...", "Please translate ...".
INSTRUCTION = (
    r"[\n.!?:;]\s*(?:(?:you(?:\s+(?:will|should|must|always|only))?|your\s+(?:job|task|role|goal|purpose)\s+is\s+to"
    r"|please)\s+)?"
)
# ... or sets a role: "You are a professional translator", "You are an assistant that translates".
ROLE = r"[\n.!?:;]\s*you\s+are\s+(?:[^.!?\n]{0,60}?\s)?"


def system_rules(
    task: TaskType, instructions: tuple[str, ...], roles: tuple[str, ...], reason: str
) -> tuple[Rule, Rule]:
    """The two system-prompt rows of a task: an instruction, or a role.

    Only sentence starts count, so "If the user asks you to translate, ..." in a general
    assistant's system prompt does not make every request a translation.
    """
    return rule(task, instructions, reason, before=INSTRUCTION), rule(task, roles, reason, before=ROLE)


# --- rules for the system prompt, read only when the last user message matched none ---------
SYSTEM_RULES: tuple[Rule, ...] = (
    *system_rules(
        TaskType.CODE_REVIEW,
        ("review code", "review the code", "review the user's code", "review pull requests", "review diffs",
         "audit code", "debug code", "debug the code"),
        ("code reviewer", "debugger", "debugging assistant", "that reviews code", "who reviews code"),
        "The {where} sets the assistant up to review or debug code ('{match}').",
    ),
    *system_rules(
        TaskType.CODE_GENERATION,
        ("write code", "write only code", "write the code", "generate code"),
        ("programmer", "software engineer", "software developer", "developer", "coding assistant", "coder",
         "that writes code", "who writes code"),
        "The {where} sets the assistant up to write code ('{match}').",
    ),
    *system_rules(
        TaskType.TRANSLATION,
        ("translate",),
        ("translator", "interpreter", "translation assistant", "translation engine", "translation tool",
         "translation model", "translation bot", "that translates", "who translates"),
        "The {where} sets the assistant up to translate ('{match}').",
    ),
    *system_rules(
        TaskType.SUMMARIZATION,
        ("summarize", "summarise", "condense"),
        ("summarizer", "summariser", "summarization assistant", "summarisation assistant", "summarization tool",
         "summarization model", "that summarizes", "that summarises", "who summarizes", "who summarises",
         "that condenses"),
        "The {where} sets the assistant up to summarize ('{match}').",
    ),
    *system_rules(
        TaskType.CLASSIFICATION,
        ("classify", "categorize", "categorise", "label each", "label every", "label the", "tag each", "tag every",
         "tag the"),
        ("classifier", "classification assistant", "classification model", "sentiment analyzer",
         "sentiment analyser", "that classifies", "who classifies", "that categorizes", "that categorises"),
        "The {where} sets the assistant up to classify ('{match}').",
    ),
    *system_rules(
        TaskType.EXTRACTION,
        ("extract", "parse"),
        ("extractor", "extraction assistant", "extraction tool", "extraction model", "extraction engine", "parser",
         "that extracts", "who extracts", "that parses"),
        "The {where} sets the assistant up to extract data ('{match}').",
    ),
    *system_rules(
        TaskType.REASONING,
        ("solve math", "solve maths", "solve the math"),
        ("mathematician", "math tutor", "maths tutor", "math teacher", "maths teacher", "mathematics tutor",
         "mathematics teacher", "math expert", "math assistant", "logician"),
        "The {where} sets the assistant up for math or reasoning ('{match}').",
    ),
    *system_rules(
        TaskType.CREATIVE_WRITING,
        ("write poems", "write stories", "write poetry", "write song lyrics", "write lyrics", "write fiction"),
        ("poet", "novelist", "storyteller", "songwriter", "lyricist", "screenwriter", "playwright",
         "creative writer", "fiction writer", "creative writing assistant"),
        "The {where} sets the assistant up for creative writing ('{match}').",
    ),
)

_CLASSIFY_USER = tuple(r for r in USER_RULES if r.task == TaskType.CLASSIFICATION)
_CLASSIFY_SYSTEM = tuple(r for r in SYSTEM_RULES if r.task == TaskType.CLASSIFICATION)
JSON_FORMATS = frozenset({"json_object", "json_schema"})

# --- hints ------------------------------------------------------------------------------------
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


# --- detection ----------------------------------------------------------------------------------
def detect_task(req: ChatRequest, hint: str | None = None, *, long_context_tokens: int = 16000) -> TaskDecision:
    """Decide the task of `req`. `hint` is the x-gateway-task header, if the client sent one.

    The header is read first, then `metadata["task"]`; the first recognised one wins. An
    unrecognised hint is ignored (the rules decide) and the reason says so.
    """
    ignored: list[str] = []
    for value, via in ((hint, f"{HINT_HEADER} header"), ((req.metadata or {}).get("task"), "metadata.task")):
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
        reason = _with_ignored(decision.reason.removesuffix("."), ignored)
        return TaskDecision(decision.task, decision.source, reason)
    return decision


def _detect(req: ChatRequest, long_context_tokens: int) -> TaskDecision:
    messages = req.messages
    if any(m.get("role") == "user" and _has_image(m.get("content")) for m in messages):
        return TaskDecision(TaskType.VISION, "rules", "A user message contains an image.")
    tokens = estimate_prompt_tokens(messages)
    if tokens >= long_context_tokens:
        limit = f"{long_context_tokens:,}"
        reason = f"The prompt is about {tokens:,} tokens long, at or above the long-context threshold of {limit}."
        return TaskDecision(TaskType.LONG_CONTEXT, "rules", reason)
    params = req.params or {}
    tools = params.get("tools") or params.get("functions")
    if tools and params.get("tool_choice") != "none":
        n = len(tools) if isinstance(tools, list) else 1
        reason = f"The request offers the model {n} tool{'' if n == 1 else 's'} to call."
        return TaskDecision(TaskType.TOOL_USE, "rules", reason)

    user = Text.of(_last_user_text(messages))
    response_format = params.get("response_format")
    fmt = response_format.get("type") if isinstance(response_format, dict) else None
    if fmt in JSON_FORMATS:
        hit = _first_match(_CLASSIFY_USER, user, USER) or _first_match(_CLASSIFY_SYSTEM, _system_text(messages), SYSTEM)
        if hit is not None:
            reason = f"The request asks for JSON output, but {hit.reason[0].lower()}{hit.reason[1:]}"
            return TaskDecision(hit.task, "rules", reason)
        reason = f"The request asks for the answer as JSON (response_format {fmt})."
        return TaskDecision(TaskType.EXTRACTION, "rules", reason)

    hit = _first_match(USER_RULES, user, USER) or _first_match(SYSTEM_RULES, _system_text(messages), SYSTEM)
    if hit is not None:
        return hit
    return TaskDecision(TaskType.CHAT, "default", "No rule matched, so the request is treated as general chat.")


def _first_match(rules: tuple[Rule, ...], text: Text, where: str) -> TaskDecision | None:
    if not text.lowered:
        return None
    for r in rules:
        m = r.search(text)
        if m is not None:
            # Quote whole words ("MyAppError:", not "Error:") in the client's own spelling
            # (lowercasing rarely changes a text's length).
            start = m.start()
            while start > 0 and _in_word(text.lowered, start) and _in_word(text.lowered, start - 1):
                start -= 1
            source = text.original if len(text.original) == len(text.lowered) else text.lowered
            reason = r.reason.format(where=where, match=_quote(source[start : m.end()]))
            return TaskDecision(r.task, "rules", reason)
    return None


def _in_word(text: str, i: int) -> bool:
    return text[i].isalnum() or text[i] == "_"


def _has_image(content: Any) -> bool:
    return isinstance(content, list) and any(isinstance(p, dict) and p.get("type") == "image_url" for p in content)


def _system_text(messages: list[dict[str, Any]]) -> Text:
    prompt = "\n".join(message_text(m.get("content")) for m in messages if m.get("role") in ("system", "developer"))
    # The leading newline makes the prompt's first sentence a sentence start like the others.
    return Text.of("\n" + prompt if prompt else "")


def _last_user_text(messages: list[dict[str, Any]]) -> str:
    for m in reversed(messages):
        if m.get("role") == "user":
            return message_text(m.get("content"))
    return ""


def _quote(text: str) -> str:
    """The trigger words as quoted in a reason: one line, trimmed, at most QUOTE_CHARS."""
    text = " ".join(text.split()).strip(" .,;:!?'\"")
    return text if len(text) <= QUOTE_CHARS else text[: QUOTE_CHARS - 1].rstrip() + "…"


def _with_ignored(reason: str, ignored: list[str]) -> str:
    if not ignored:
        return f"{reason}."
    verb = "was" if len(ignored) == 1 else "were"
    return f"{reason}; the {' and the '.join(ignored)} {verb} not recognised as a task, so ignored."
