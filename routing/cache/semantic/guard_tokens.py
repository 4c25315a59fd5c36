"""The look-alike guard's tokenizer (guard.py): a question as words, numbers, symbols, code,
quoted strings, flags, rates, degrees, clock times and sentence stops; and the crude stem
both texts go through."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

from . import vocabulary as V

_TOKEN = re.compile(
    r"""(?P<code>`[^`]+`)
    |(?P<quoted>"[^"]+"|“[^”]+”|(?<![\w'])'[^'\n]{2,}'(?![\w']))
    |(?P<flag>(?<![\w-])--?[A-Za-z][\w-]*)
    |(?P<rate>(?i:\b(?:km/h|m/s|kb/s|mb/s|gb/s|kbit/s|mbit/s|gbit/s)\b))
    |(?P<deg>[°º]\s?[CFcf]\b)
    |(?P<time>\b\d{1,2}:\d{2}(?::\d{2})?\b)
    |(?P<lang>(?<![\w+#])[A-Za-z](?:\+\+|\#)(?![\w+#]))
    |(?P<num>\d+(?:[.,]\d+)*)
    |(?P<word>[^\W\d_](?:[\w'.-]*\w)?)
    |(?P<sym>[$€£¥₹%°º^/+*=<>])
    |(?P<stop>[.!?;:]\s|[.!?;:]$|\n)
    """,
    re.X,
)


@dataclass(slots=True)
class Tok:
    kind: str  # word, num, sym, code, quoted, flag, rate, deg, time, lang ("C++", "C#"), stop
    text: str
    start: int
    end: int

    @property
    def low(self) -> str:
        return self.text.lower()


def normalize(text: str) -> str:
    """The text the tokens' offsets point into."""
    return unicodedata.normalize("NFKC", text).replace("’", "'").replace("‘", "'")


def tokens(text: str) -> list[Tok]:
    text = normalize(text)
    out = []
    for m in _TOKEN.finditer(text):
        kind = m.lastgroup or "sym"
        out.append(Tok(kind, m.group(kind).strip(), m.start(), m.end()))
    return out


def word_at(toks: list[Tok], i: int) -> str | None:
    """The lower-case word at index i, None past either end or on anything but a word."""
    return toks[i].low if 0 <= i < len(toks) and toks[i].kind == "word" else None


def glued(toks: list[Tok], i: int) -> bool:
    """Token i touches the one before it ("5km", "10th")."""
    return 0 < i < len(toks) and toks[i - 1].end == toks[i].start


def sentence_start(toks: list[Tok], i: int) -> bool:
    return i == 0 or toks[i - 1].kind == "stop" or toks[i - 1].text in {'"', "(", "-"}


def sentence_of(toks: list[Tok], i: int) -> range:
    """The indexes of the sentence (up to a stop token) that token i is in."""
    start, end = i, i
    while start > 0 and toks[start - 1].kind != "stop":
        start -= 1
    while end + 1 < len(toks) and toks[end + 1].kind != "stop":
        end += 1
    return range(start, end + 1)


def stem(word: str) -> str:
    """A crude, consistent stem: both texts go through the same one, so only agreement matters."""
    w = word.lower()
    if w.endswith("'s"):
        w = w[:-2]
    w = V.SYNONYMS.get(w, w)
    for suffix, keep in (("ies", "y"), ("sses", "ss"), ("ing", ""), ("ed", ""), ("es", "e"), ("s", "")):
        if w.endswith(suffix) and len(w) - len(suffix) >= 3 and not w.endswith("ss"):
            w = w[: -len(suffix)] + keep
            if suffix in {"ing", "ed"} and len(w) >= 4 and w[-1] == w[-2] and w[-1] not in "lsfz":
                w = w[:-1]  # "running" -> "run", "stopped" -> "stop" (not "adding" -> "ad")
            break
    return V.SYNONYMS.get(w, w)
