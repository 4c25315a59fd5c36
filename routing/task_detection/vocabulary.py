"""Word lists and regex fragments shared by the rule tables: languages, code words,
prose words, error names. Plain data; the rows that use them are in user_message_rules.py."""

from __future__ import annotations

from .matching import _alt

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
