"""What a question asks, read from its question words, for the function-word reader
(guard_function.py): method (how does it work), procedure (how do I, how to, what are the
steps), reason (why, what causes), definition (what is a X, what does X mean), time (when + a
verb, what year), place (where + a verb, which country), person (who), measure (how many /
much, how + an adjective, what is the price), duration (how long), frequency (how often), yes/no
(a question opening with a verb), or a generic what / which; and which two kinds cannot be the
same answer. Also the sentence reading both modules share (`sentences_of`) and its word lists."""

from __future__ import annotations

from .guard_tokens import Tok

CONTRACTIONS = {
    "what's": ("what", "is"), "whats": ("what", "is"), "how's": ("how", "is"), "where's": ("where", "is"),
    "when's": ("when", "is"), "who's": ("who", "is"), "why's": ("why", "is"),
    "can't": ("can", "not"), "cannot": ("can", "not"), "won't": ("will", "not"), "shouldn't": ("should", "not"),
    "mustn't": ("must", "not"), "couldn't": ("could", "not"), "wouldn't": ("would", "not"),
    "needn't": ("need", "not"), "i'll": ("i", "will"), "you'll": ("you", "will"), "it'll": ("it", "will"),
    "we'll": ("we", "will"), "they'll": ("they", "will"), "i'd": ("i", "would"),
}
AUX = frozenset("""
is are was were am be do does did can could should would will may might must shall has have had
isn't aren't wasn't weren't don't doesn't didn't hasn't haven't hadn't
""".split())
FILLERS = frozenset("""
hi hey hello hiya yo so ok okay well um uh hmm please quick question just also and but then sorry
guys folks everyone there dear team thanks thank
""".split())
SUBJECTS = frozenset({"i", "you", "we", "they", "he", "she", "it", "one", "someone", "people", "my", "your"})
_SKIP = frozenset({"is", "are", "was", "were", "the", "a", "an", "kind", "kinds", "sort", "sorts", "type", "types",
                   "of", "s", "be", "would", "will", "best", "good", "right", "main", "usual", "typical",
                   "exact", "actual", "proper", "correct", "recommended", "common", "most", "some", "few"})

_REASON = frozenset({"reason", "reasons", "cause", "causes", "caused", "causing", "makes", "make", "made", "why",
                     "purpose", "point", "explanation"})
_METHOD = frozenset({"way", "ways", "steps", "step", "process", "procedure", "method", "methods", "technique",
                     "techniques", "approach", "instructions", "recipe", "tips", "trick", "tricks", "remedy",
                     "remedies", "solution", "fix", "cure", "command"})
EVALUATIVE = frozenset("""
good great nice best better healthy recommended popular easy simple quick fast cheap affordable safe natural
decent reliable proper right common typical normal usual ideal perfect effective smart fun
""".split())
_TIME = frozenset({"time", "year", "date", "day", "month", "hour", "century", "decade", "season", "week",
                   "era", "period", "moment", "point"})
_PLACE = frozenset({"place", "places", "location", "locations", "country", "countries", "city", "cities", "town",
                    "state", "region", "address", "continent", "spot", "area", "where", "venue", "site"})
_PERSON = frozenset({"person", "people", "man", "woman", "author", "inventor", "founder", "president"})
_MEASURE = frozenset({"number", "amount", "percentage", "percent", "cost", "costs", "price", "prices", "many",
                      "much", "quantity", "size", "length", "weight", "height", "distance", "temperature",
                      "speed", "age", "rate", "dose", "dosage", "value", "total", "sum", "average", "volume",
                      "capacity", "duration", "depth", "width", "population", "score", "salary", "fee"})
_HOW_MEASURE = {"many": "measure", "much": "measure", "often": "frequency", "frequently": "frequency",
                "come": "reason", "long": "duration"}
# how + one of these asks for a degree ("how tall", "how safe is"); how + anything else, a method
DEGREE = frozenset("""
long far old big large small tall high low deep wide heavy light fast quickly slow slowly hot cold warm
expensive cheap early late soon strong loud bright thick thin accurate common rare likely safe dangerous
risky effective bad good hard difficult easy tough serious accurate reliable secure popular close near
""".split())
# Kinds of answer that cannot be the same answer. Not listed, so compatible: a generic what /
# which with anything; method ~ place ("how do I download" / "where can I get"); measure ~
# frequency ("how often" / "how many times a week") and ~ duration ("how long" / "how many hours").
# procedure ~ method (what to do, how it works), either ~ place; definition ~ method ("what is a
# mortgage" / "how does a mortgage work") but not ~ procedure ("what is a container" / "how do I
# create a container").
_KINDS = ("reason", "procedure", "method", "definition", "time", "place", "person", "measure", "duration",
          "frequency", "yesno")
_ASK_INCOMPATIBLE = {frozenset({x, y}) for x in _KINDS for y in _KINDS if x != y} - {
    frozenset({"procedure", "method"}), frozenset({"procedure", "place"}), frozenset({"method", "place"}),
    frozenset({"definition", "method"}), frozenset({"definition", "measure"}), frozenset({"measure", "frequency"}),
    frozenset({"measure", "duration"})}  # "how long" / "how many minutes"; "how often" is neither
# After the noun a what-question asks for: a verb or a preposition ("what year *did*", "what
# country *is*", "the price *of*"), not another noun ("what is the time *complexity*").
_AFTER_ASKED_NOUN = AUX | frozenset({"of", "to", "for", "in", "on", "at", "does", "did", "do", "would", "should",
                                     "will", "can", "could", "has", "have", "had", "per", "and", "or", ""})
REQUEST_VERBS = frozenset("""
explain tell give show describe list help recommend suggest summarize summarise write make provide share
define walk outline compare name find teach clarify elaborate break translate draft create generate
""".split())

def sentences_of(toks: list[Tok]) -> list[list[str]]:
    """Lower-case words per sentence, contractions opened ("what's" -> "what is")."""
    sentences: list[list[str]] = [[]]
    for t in toks:
        if t.kind == "stop":
            sentences.append([])
        elif t.kind == "word":
            low = t.low
            if low in CONTRACTIONS:
                sentences[-1].extend(CONTRACTIONS[low])
            elif "-" in low:
                head, _, tail = low.partition("-")
                if head in {"pre", "post"} and tail:
                    sentences[-1].append(head)  # "post-workout": after a workout
                sentences[-1].append(low)
            else:
                sentences[-1].append(low)
    return [s for s in sentences if s]


def _ask_of_what(words: list[str], k: int) -> str:
    """'what' / 'which' at k: the noun it asks for, past "is the best kind of"."""
    j = k + 1
    while j < len(words) and (words[j] in _SKIP or words[j] in AUX and j + 1 < len(words)
                              and words[j + 1] in _REASON):
        j += 1
    nxt = words[j] if j < len(words) else ""
    after = words[j + 1] if j + 1 < len(words) else ""
    if nxt in _REASON and not (nxt in {"make", "made", "makes"} and after == "of"):
        return "reason"
    if nxt in _METHOD or _METHOD & set(words[j:j + 3]):
        return "method"  # "what's the command to", "what's a natural way to"
    if after in _AFTER_ASKED_NOUN:
        for nouns, kind in ((_TIME, "time"), (_PLACE, "place"), (_PERSON, "person"), (_MEASURE, "measure")):
            if nxt in nouns:
                return kind
    # "what do I do to ...", "what should I do if ...", "what can I do about ...": a method
    window = words[k + 1:k + 5]
    if window[:1] and window[0] in AUX and "do" in window[1:]:
        return "method"
    # "what is a closure", "what are dividends", "what does 'idempotent' mean": a definition
    if window[:1] and window[0] in {"is", "are"} and window[1:2] in (["a"], ["an"]):
        rest = words[k + 3:]
        noun = []
        for w in rest:
            if w in {"in", "of", "for", "on", "and", "used", "called", "when"}:
                break
            noun.append(w)
        if len(noun) <= 3 and not set(noun) & (EVALUATIVE | DEGREE):
            return "definition"
    if window[:1] and window[0] in {"is", "are"} and 1 < len(window) <= 4 and len(words) - k <= 5 \
            and window[1] not in {"the", "my", "your", "our", "their", "this", "that", "these", "those", "it",
                                  "there", "a", "an"} \
            and not set(window[1:]) & (EVALUATIVE | DEGREE | AUX | {"of", "for", "in", "to", "on", "with"}):
        return "definition"  # "what is photosynthesis", "what is Python's GIL", "what are black holes"
    if window[:1] == ["does"] and "mean" in words[k + 2:k + 8] or words[-1:] == ["about"] \
            and window[:1] in (["is"], ["are"], ["was"]):
        return "definition"  # what X means, what X is about
    return "what"


def asks(sentences: list[list[str]]) -> set[str]:
    asks: set[str] = set()
    for words in sentences:
        for k, w in enumerate(words):
            nxt = words[k + 1] if k + 1 < len(words) else ""
            if w == "why":
                asks.add("reason")
            elif w == "how":
                if nxt in _HOW_MEASURE:
                    asks.add(_HOW_MEASURE[nxt])
                elif nxt in DEGREE:
                    asks.add("measure")  # how + adjective: "how tall", "how long", "how expensive"
                elif nxt == "to" or nxt in AUX and k + 2 < len(words) and words[k + 2] in {"i", "you", "we", "one"}:
                    asks.add("procedure")  # "how do I", "how to", "how can you": what to do
                else:
                    asks.add("method")  # "how does a mortgage work", "how is interest calculated"
            elif w in {"what", "which"}:
                asks.add(_ask_of_what(words, k))
            elif w in {"when", "where"} and (nxt in AUX or nxt in {"to", "would", "will"}):
                asks.add("time" if w == "when" else "place")  # a question, not "... when my dog vomits"
            elif w in {"who", "whom", "whose"} and k == 0 or w in {"who", "whom"} and nxt in AUX:
                asks.add("person")
        if not asks:
            start = 0
            while start < len(words) and words[start] in FILLERS:
                start += 1
            if start + 2 < len(words) and words[start] in {"can", "could", "would", "will"} \
                    and words[start + 1] == "you" and words[start + 2] in REQUEST_VERBS:
                continue  # "can you explain ...": a request, which asks nothing in particular
            if start < len(words) and words[start] in AUX:
                # "is there a way to ...", "is there any way ...": asks how
                rest = words[start + 1:start + 5]
                asks.add("method" if "there" in rest[:1] and ({"way", "method"} & set(rest)) else "yesno")
    return asks


def asks_compatible(a: set[str], b: set[str]) -> bool:
    if not a or not b or a & b:
        return True
    return any(frozenset({x, y}) not in _ASK_INCOMPATIBLE for x in a for y in b)
