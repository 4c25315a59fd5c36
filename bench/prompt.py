"""The benchmark's user message: today's one-line prompt, or English prose of about
N bytes (`--prompt-bytes N`) for measuring checks whose cost grows with the prompt
(guardrails). The prose has a few numbers (years, counts, percentages) but nothing
PII-like: no e-mail addresses, phone-like digit runs, card or account numbers, keys
or long tokens, so a PII guardrail checks it and finds nothing (run.py verifies that
through the gateway's guardrail metrics).
"""

from __future__ import annotations

SHORT = "Say hello in one short sentence."

# Plain prose, deterministic (every run sends the same bytes). Numbers stay short and
# are separated by words, so no detector can read two of them as one identifier.
PARAGRAPHS = [
    "The old harbour town grew slowly for most of its history. In 1890 it had about 40 fishing boats, "
    "three churches and a single school, and the road to the capital was little more than a track that "
    "turned to mud every autumn. The railway arrived in 1912 and changed the rhythm of the place within "
    "a decade: the market moved closer to the station, the fish were sent inland on ice, and the younger "
    "families began to build along the hill above the bay.",
    "Visitors today often ask why the streets bend the way they do. The answer is mostly water. The "
    "original lanes followed the streams that ran down to the shore, and when those streams were covered "
    "over in the 1930s the lanes kept their curves. A walk from the lighthouse to the covered market takes "
    "about 25 minutes, longer if you stop at the bakery on the corner, which has sold the same rye bread "
    "for more than 60 years.",
    "Please summarise the history above in a few short paragraphs for a travel guide. Keep the tone warm "
    "but factual, mention the railway and the covered streams, and suggest two things a visitor could do "
    "on a rainy afternoon. The guide is read by families, so avoid jargon, keep sentences short, and do "
    "not invent dates that are not in the text. A length of roughly 300 words would be ideal.",
    "Some background that may help: the town council publishes a short report every year. The most recent "
    "one says that the number of overnight visitors rose by 12 percent, that the harbour now handles more "
    "leisure boats than fishing boats, and that the museum near the station will reopen next spring after "
    "repairs to its roof. The council also plans 4 new benches along the sea wall and a wider path for "
    "bicycles between the beach and the old mill.",
]


def prose(n_bytes: int) -> str:
    """About `n_bytes` of UTF-8 prose (ASCII, so bytes = characters), cut after a word."""
    text, i = "", 0
    while len(text) < n_bytes:
        text += ("\n\n" if text else "") + PARAGRAPHS[i % len(PARAGRAPHS)]
        i += 1
    if len(text) > n_bytes:
        cut = text.rfind(" ", 0, n_bytes)
        text = text[:cut if cut > 0 else n_bytes].rstrip(",;: \n")
    return text


def messages(prompt_bytes: int = 0) -> list[dict]:
    """The request's messages: one user message (the short prompt when 0)."""
    return [{"role": "user", "content": prose(prompt_bytes) if prompt_bytes > 0 else SHORT}]
