"""The rules read on the last user message, one row per rule, in priority order."""

from __future__ import annotations

from .matching import Rule, _alt, _preceded_by, pattern_rule, rule
from .types import TaskType
from .vocabulary import (
    _CODE_QUALIFIER,
    _STORY,
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
