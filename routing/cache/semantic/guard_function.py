"""The function-word reader of the look-alike guard: what is asked of a subject, read from the
small words the other readers leave out as stop words.

Two questions about the same subject, in the same content words, can still ask different things:
"*can* I take ibuprofen with coffee" / "*should* I ...", "*how* does a vaccine work" / "*why*
does ...", "do *all* cats purr" / "do *some* ...", "what to eat *before* a run" / "... *after*
...", "the planets *as a table*" / "... *as a list*". The content-word readers (guard.py's word
rules, reader_align.py) see the same words in each pair; this reader reads the senses:

    ask       the kind of answer asked for (guard_asks.py): two questions that both say one
              disagree when no kind of one is compatible with a kind of the other
    modality  can (ability, permission, possibility), should (advice), must (obligation, need),
              will (prediction): both say one, and not the same
    scope     all, each, in total, some (any), many, most, only, one of, none, both, either: both
              say one and they are not compatible (all ~ each, all ~ in total), or an "only",
              "most", "few" or "a single" on one side only
    time      before, after, during, since, until, within (pre-/post-): when both say one
    format    list, table, short, detailed, simple, example, JSON/CSV/...: the same ones
    tense     past ("when did it ship") or not ("when does / will it ship"), when both say
    voice     a passive with "get" ("the driver who *gets rear-ended*") on both sides or neither
    contrast  an alternative ("instead of", "rather than", "a substitute for") on both or neither
    audience  who it is for ("for beginners", "to a child", "for experts"): the same, or none

Each sense is a "kind:value" string; only these strings are stored (no text).
"""

from __future__ import annotations

from .guard_asks import AUX, FILLERS, REQUEST_VERBS, SUBJECTS, asks, asks_compatible, sentences_of
from .guard_tokens import Tok

_MODAL = {
    "can": "can", "could": "can", "able": "can", "possible": "can", "may": "can", "might": "can",
    "allowed": "can", "permitted": "can", "ok": "can", "okay": "can",
    "should": "should", "ought": "should", "advisable": "should", "recommended": "should", "recommend": "should",
    "wise": "should", "must": "must", "required": "must", "mandatory": "must", "necessary": "must",
    "obligated": "must", "obliged": "must", "compulsory": "must", "will": "will",
}
_SCOPE = {
    "all": "all", "every": "all", "entire": "all", "whole": "all", "everything": "all",
    "everyone": "all", "everybody": "all", "always": "all",
    "each": "each", "apiece": "each", "individually": "each", "monthly": "each", "daily": "each",
    "weekly": "each", "yearly": "each", "annually": "each", "hourly": "each", "nightly": "each",
    "total": "total", "overall": "total", "altogether": "total", "combined": "total", "cumulative": "total",
    "lifetime": "total",
    "some": "some", "any": "some", "several": "some", "certain": "some", "sometimes": "some", "anything": "some",
    "anyone": "some", "anybody": "some", "partially": "some", "partly": "some",
    "most": "most", "majority": "most",
    "only": "only", "solely": "only", "exclusively": "only", "just": None,
    "none": "none", "nobody": "none", "nothing": "none", "never": "none",
    "both": "both", "either": "either", "neither": "neither", "few": "few",
    "many": "many", "lots": "many", "plenty": "many", "numerous": "many", "countless": "many",
}
# Two scopes that can be the same question: "all employees" / "each employee", "all the tickets"
# / "the tickets in total", "some" / "any".
_SCOPE_COMPATIBLE = {frozenset({"all", "each"}), frozenset({"all", "total"})}
# One side only narrows ("in a single season" / "in history"); not "some": "what are some X" asks for X.
_NARROWING_SCOPE = frozenset({"only", "most", "few", "one"})
_TIME_RELATIONS = {"before": "before", "prior": "before", "pre": "before", "after": "after", "post": "after",
                   "afterwards": "after", "following": "after", "during": "during", "while": "during",
                   "since": "since", "until": "until", "till": "until", "upto": "until", "within": "within"}
_FORMAT = {
    "list": "list", "bullet": "list", "bullets": "list", "bulleted": "list", "itemize": "list",
    "enumerate": "list", "table": "table", "tabular": "table", "spreadsheet": "table", "chart": "table",
    "short": "short", "brief": "short", "briefly": "short", "concise": "short", "concisely": "short",
    "summary": "short", "summarize": "short", "summarise": "short", "tldr": "short", "nutshell": "short",
    "sentence": "short", "sentences": "short", "paragraph": "long", "paragraphs": "long", "essay": "long",
    "detailed": "long", "detail": "long", "details": "long", "in-depth": "long", "thorough": "long",
    "thoroughly": "long", "comprehensive": "long", "elaborate": "long", "step-by-step": "steps",
    "simple": "simple", "simply": "simple", "layman": "simple", "layman's": "simple", "eli5": "simple",
    "example": "example", "examples": "example", "json": "json", "csv": "csv",
    "yaml": "yaml", "xml": "xml", "markdown": "markdown", "html": "html", "poem": "poem", "haiku": "poem",
    "email": "email", "letter": "letter", "tweet": "tweet", "bullet-point": "list", "bullet-points": "list",
}
_STRUCTURED = frozenset({"list", "table", "json", "csv", "yaml", "xml", "markdown", "html"})  # one side only: still
# another answer (a letter, an email, a poem are often the subject: only two that differ count)


def _modalities(sentences: list[list[str]]) -> set[str]:
    found: set[str] = set()
    for words in sentences:
        for k, w in enumerate(words):
            prev = words[k - 1] if k else ""
            nxt = words[k + 1] if k + 1 < len(words) else ""
            sense = _MODAL.get(w)
            if w in {"can", "could", "would", "will"} and nxt == "you" and k + 2 < len(words) \
                    and words[k + 2] in REQUEST_VERBS:
                sense = None  # "can you explain": a request
            elif w in {"have", "has", "had"} and nxt == "to":
                sense = "must"
            elif w in {"need", "needs", "needed"} and nxt == "to":
                sense = "should"  # "does an adult need to drink" asks what "should an adult drink" asks
            elif w in {"need", "needs"} and prev in SUBJECTS | {"do", "does"}:
                sense = "must"  # "do I need a visa": is one required
            elif w == "going" and nxt == "to" and prev in AUX | SUBJECTS:
                sense = "will"
            elif w in {"ok", "okay"}:
                sense = "can" if prev in {"it", "is", "be"} else None
            elif w in {"can", "could", "may", "might", "will"} and prev in {"how", "where", "what", "which", "who",
                                                                            "when", "why"}:
                sense = None  # "how can I" = "how do I"; "where can I download" = "where do I download"
            elif w == "will" and nxt not in SUBJECTS | {"the", "a", "an", "this", "that", "there", "my", "it"} \
                    and prev not in SUBJECTS | {"it", "there", "that", "this"}:
                sense = None
            elif w == "may" and prev not in FILLERS and k and prev not in SUBJECTS and prev not in AUX:
                sense = None  # "the month of may"
            if sense:
                found.add(sense)
    return found


def _scopes(sentences: list[list[str]]) -> set[str]:
    found: set[str] = set()
    for words in sentences:
        for k, w in enumerate(words):
            sense = _SCOPE.get(w)
            nxt = words[k + 1] if k + 1 < len(words) else ""
            if w == "all" and nxt in {"right", "the", "of"} and k + 2 < len(words) and words[k + 2] == "time":
                sense = "all"
            if w == "any" and nxt in {"way", "ways", "chance", "idea", "tips", "advice", "good", "recommendations"}:
                sense = None  # "is there any way", "any tips": no scope
            if w == "most" and not (nxt == "of" or k == 0 or words[k - 1] in AUX | {"in", "with"}):
                sense = None  # "the most popular", "my most recent": a superlative, not "most of"
            if w == "only" and nxt in {"way"}:
                sense = None
            if w == "many" and k and words[k - 1] in {"how", "so", "too", "as"}:
                sense = None  # "how many": the question, not the amount
            if w == "lot" and k and words[k - 1] == "a" and nxt == "of":
                sense = "many"
            if w == "per" and nxt not in {"cent", "se"}:
                sense = "each"  # "per season", "cost per person" is not "in total"
            if w == "one" and nxt == "of" or w == "single" and k and words[k - 1] in {"a", "one"}:
                sense = "one"  # "delete one of my addresses" is not "delete all my addresses"
            if w == "few" and k and words[k - 1] == "a":
                sense = "some"  # "a few" = some; "few" alone = not many
            if sense:
                found.add(sense)
    return found


def _time_relations(sentences: list[list[str]]) -> set[str]:
    found: set[str] = set()
    for words in sentences:
        for k, w in enumerate(words):
            sense = _TIME_RELATIONS.get(w)
            if w == "following" and k + 1 < len(words) and words[k + 1] not in {"a", "an", "my", "the"}:
                sense = None  # "the following steps"
            if w == "since" and k + 1 < len(words) and words[k + 1] in SUBJECTS:
                sense = None  # "since I ...": because
            if w == "prior" and (k + 1 >= len(words) or words[k + 1] != "to"):
                sense = None
            if sense:
                found.add(sense)
    return found


def _formats(sentences: list[list[str]]) -> set[str]:
    found: set[str] = set()
    for words in sentences:
        for k, w in enumerate(words):
            sense = _FORMAT.get(w)
            prev = words[k - 1] if k else ""
            if w == "steps" and prev in {"the", "show", "all"} or w == "work" and prev in {"your", "the"} \
                    and k > 1 and words[k - 2] == "show":
                sense = "steps"  # "show me the steps to solve", "show your work"
            if w == "answer" and {"just", "only"} & set(words[max(0, k - 4):k]):
                sense = "answer"  # "just give me the answer"
            if w in {"list", "enumerate", "itemize"} and (k == 0 or prev in FILLERS | {"you", "me", "to"}):
                sense = None  # "List the planets", "can you list ...": the request, not its format
            if sense in {"list", "table"} and not (
                    {"as", "in", "into", "bulleted", "numbered", "format"} & set(words[max(0, k - 3):k])
                    or k + 1 < len(words) and words[k + 1] in {"format", "form"}):
                sense = None  # "a list of numbers", "the periodic table": a thing, not the answer's format
            if w == "simple" and k + 1 < len(words) and words[k + 1] not in {"terms", "words", "language", "way"}:
                sense = None  # "a simple recipe": a content word
            if w in {"detail", "details"} and prev not in {"in", "more", "great", "full"}:
                sense = None
            if w in {"sentence", "sentences", "paragraph", "paragraphs"} and not (
                    prev in {"one", "a", "single", "two", "three", "few", "short", "in"}):
                sense = None  # "this sentence": the thing asked about
            if w in {"example", "examples"} and prev not in {"an", "with", "some", "give", "examples", "for"}:
                sense = None
            if w in {"email", "letter", "poem", "tweet", "essay", "chart"} and (
                    not ({"a", "an", "as", "write", "draft", "compose"} & set(words[max(0, k - 4):k]))
                    or k + 1 < len(words) and words[k + 1] == "of"):
                sense = None  # "a letter of resignation": the thing asked about; "write a formal letter": the form
            if sense:
                found.add(sense)
    return found


_GET = frozenset({"get", "gets", "got", "getting", "gotten"})
_GET_IDIOMS = frozenset("""
started rid married dressed lost used involved done ready tired bored interested excited engaged divorced
sick better worse back home organized organised acquainted accustomed stuck hooked
""".split())


_NOT_PARTICIPLES = frozenset("""
red bed shed seed need feed speed bleed hundred sacred naked wicked rugged kindred shred breed steed weed
embed indeed
""".split())
_IRREGULAR_PARTICIPLES = frozenset("""
hit hurt caught stung bitten sent told held kept struck beaten stolen taken given shot cut broken chosen
written eaten forgotten thrown sold bought
""".split())


def _voices(sentences: list[list[str]]) -> set[str]:
    """A passive with "get" ("the driver who *gets rear-ended*", "did I *get charged*"): the
    subject undergoes what the active asks it to do."""
    found: set[str] = set()
    for words in sentences:
        for k, w in enumerate(words[:-1]):
            nxt = words[k + 1]
            if w in _GET and nxt not in _GET_IDIOMS and (
                    nxt.endswith("ed") and len(nxt) >= 5 and nxt not in _NOT_PARTICIPLES
                    or nxt in _IRREGULAR_PARTICIPLES):
                found.add("passive")
    return found


_PAST = frozenset({"did", "was", "were", "had", "didn't", "wasn't", "weren't", "hadn't"})
_PRESENT = frozenset({"do", "does", "is", "are", "am", "don't", "doesn't", "isn't", "aren't"})


def _tenses(sentences: list[list[str]]) -> set[str]:
    """The tense of each sentence's first auxiliary: "when *did* my order ship" / "when *will*
    it ship"; present and future ask the same ("when does the store open" / "will it open")."""
    found: set[str] = set()
    for words in sentences:
        for k, w in enumerate(words):
            if w in _PAST:
                found.add("past")
            elif w in _PRESENT or w == "will" or w == "going" and k + 1 < len(words) and words[k + 1] == "to":
                found.add("now")
            else:
                continue
            break
    return found


_AUDIENCE = {
    "beginner": "novice", "beginners": "novice", "novice": "novice", "novices": "novice", "newbie": "novice",
    "newbies": "novice", "dummies": "novice", "starters": "novice",
    "kid": "young", "kids": "young", "child": "young", "children": "young", "toddler": "young",
    "toddlers": "young", "teen": "young", "teens": "young", "teenager": "young", "teenagers": "young",
    "adult": "adult", "adults": "adult", "senior": "senior", "seniors": "senior", "elderly": "senior",
    "expert": "expert", "experts": "expert", "professional": "expert", "professionals": "expert",
    "advanced": "expert", "experienced": "expert", "pros": "expert", "intermediate": "intermediate",
}


def _contrasts(sentences: list[list[str]]) -> set[str]:
    """An alternative asked for: "pause my subscription *instead of* cancelling it", "*other
    than* aspirin", "*rather than* renting" ask about something else than the words they share."""
    found: set[str] = set()
    for words in sentences:
        for k, w in enumerate(words):
            nxt = words[k + 1] if k + 1 < len(words) else ""
            if w == "instead" or w in {"rather", "other"} and nxt == "than" or w == "opposed" and k and \
                    words[k - 1] == "as" or w in {"alternative", "alternatives", "substitute", "substitutes",
                                                  "replacement"} and nxt in {"to", "for"} or w == "besides":
                found.add("instead")
    return found


def _audiences(sentences: list[list[str]]) -> set[str]:
    """Who an explanation or a recommendation is for: "for *beginners*", "to a *child*", "for
    *advanced* programmers", "like I'm five"."""
    found: set[str] = set()
    for words in sentences:
        for k, w in enumerate(words):
            if w in _AUDIENCE and {"for", "to", "as"} & set(words[max(0, k - 3):k]):
                found.add(_AUDIENCE[w])
            elif w == "five" and words[max(0, k - 3):k][-2:] == ["i'm"] or w == "eli5":
                found.add("young")
    return found


def senses(toks: list[Tok]) -> frozenset[str]:
    sentences = sentences_of(toks)
    out = {f"ask:{a}" for a in asks(sentences)}
    out |= {f"modal:{m}" for m in _modalities(sentences)}
    out |= {f"scope:{s}" for s in _scopes(sentences)}
    out |= {f"time:{t}" for t in _time_relations(sentences)}
    out |= {f"format:{f}" for f in _formats(sentences)}
    out |= {f"tense:{t}" for t in _tenses(sentences)}
    out |= {f"voice:{v}" for v in _voices(sentences)}
    out |= {f"audience:{u}" for u in _audiences(sentences)}
    out |= {f"contrast:{c}" for c in _contrasts(sentences)}
    return frozenset(out)


def _of(kind: str, items: frozenset[str]) -> set[str]:
    prefix = kind + ":"
    return {x[len(prefix):] for x in items if x.startswith(prefix)}


def _scopes_compatible(a: set[str], b: set[str]) -> bool:
    return all(any(x == y or frozenset({x, y}) in _SCOPE_COMPATIBLE for y in b) for x in a) and \
        all(any(x == y or frozenset({x, y}) in _SCOPE_COMPATIBLE for x in a) for y in b)


def differ(a: frozenset[str], b: frozenset[str]) -> str | None:
    """The first kind of function word that tells the two questions apart, else None."""
    if not asks_compatible(_of("ask", a), _of("ask", b)):
        return "question type"
    ma, mb = _of("modal", a), _of("modal", b)
    if ma and mb and ma != mb:
        return "modality"
    sa, sb = _of("scope", a), _of("scope", b)
    if (sa and sb and not _scopes_compatible(sa, sb)) or (bool(sa) != bool(sb) and (sa | sb) & _NARROWING_SCOPE):
        return "scope"
    if _of("contrast", a) != _of("contrast", b):
        return "contrast"  # "pause it instead of cancelling" / "cancel it"
    ua, ub = _of("audience", a), _of("audience", b)
    if ua != ub:
        return "audience"  # "for beginners" / "for advanced programmers" / said for no one
    ta, tb = _of("time", a), _of("time", b)
    if ta and tb and ta != tb:
        return "time relation"  # said on one side only, it is a condition: the narrower rule's
    if _of("voice", a) != _of("voice", b):
        return "voice"  # "rear-ends another car" / "gets rear-ended"
    ea, eb = _of("tense", a), _of("tense", b)
    if ea and eb and not ea & eb:
        return "tense"  # "when did it ship" / "when will it ship"
    fa, fb = _of("format", a), _of("format", b)
    if (fa and fb and fa != fb) or (bool(fa) != bool(fb) and (fa | fb) & _STRUCTURED):
        return "format"
    return None
