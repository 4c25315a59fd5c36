"""Build the replayed Q&A workload from catalogue.py: intents.jsonl and requests.jsonl.

    .venv/bin/python bench/cache_workload/generate.py           # rewrite both files
    .venv/bin/python bench/cache_workload/generate.py --check   # fail if they are stale

intents.jsonl, one intent a line: {"id", "domain", "kind", "lookalike_of", "texts"}.
`kind` is `core` (a catalogue question), `lookalike` (made from a core one by changing a
number, name, negation or unit: a different question whose answer must not be shared)
or `oneoff` (a new question, asked once). Every text belongs to exactly one intent;
the replay maps a served answer back to the question it was produced for through it.

requests.jsonl, the stream in order: {"n", "intent", "text", "seen"}, `seen` being
what the stream had before it: `new` (intent not asked yet), `repeat` (this very text
was asked before: an exact cache can hit), `paraphrase` (the intent was asked, in
other words only: a semantic cache should hit).

The stream: catalogue intents drawn with Zipf-like popularity (rank r weighs
1 / (r + Q)^S over a fixed shuffle of the catalogue, the head a few FAQs asked over and
over, the tail asked once or never), the most common phrasing CANONICAL_SHARE of the
time and the others evenly, with a greeting or a thank-you added to DECORATE_SHARE of
them (such a text is in requests.jsonl only, labelled like every request); plus
ONE_OFF_SHARE of new one-off questions at random places. Fixed seed: the files are
reproducible and shipped, so every run replays the same requests.

Look-alike questions are part of the catalogue and asked like any other, so a stream
often asks one after the question it was made from: the case a semantic cache must
get right by missing.
"""

from __future__ import annotations

import argparse
import json
import random
import re
import sys
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import catalogue as cat  # noqa: E402

HERE = Path(__file__).resolve().parent
INTENTS = HERE / "intents.jsonl"
REQUESTS = HERE / "requests.jsonl"

SEED = 12
N_REQUESTS = 3000
ONE_OFF_SHARE = 0.2
ZIPF_S, ZIPF_Q = 0.9, 3.0
CANONICAL_SHARE = 0.45  # how often the most common phrasing is the one used
DECORATE_SHARE = 0.3  # how often a greeting or a thank-you is added to it
# What people put around a question; after "Hi," or "Quick question:" the first word is
# lowercased when it is an ordinary sentence start ("Hi, how do I ..."), not a name.
GREETINGS = ["Hi, ", "Hello! ", "Hey, ", "Quick question: ", "Sorry, one more: ", "Hi there. ", "Good morning. "]
THANKS = [" Thanks!", " Thank you.", " Thanks in advance.", " Cheers", " thx", " Thanks a lot!"]
SENTENCE_STARTS = {"What", "What's", "How", "Which", "When", "Where", "Who", "Why", "Is", "Can", "Do", "Does",
                   "Should", "Are", "Convert", "Calculate", "Multiply", "Show", "Write", "Give", "Suggest",
                   "Translate", "Split", "At", "In", "If", "Steps", "My", "The", "Am", "You"}


def slug(value) -> str:
    text = " ".join(value.values()) if isinstance(value, dict) else str(value)
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def _fill(template: str, value) -> str:
    return template.format(**value) if isinstance(value, dict) else template.format(x=value, n=value, e=value)


def _phrasings(rng: random.Random, templates: list[str], most: int) -> list[str]:
    """The most common phrasing first, then 0 to most-1 others (as observed in traffic:
    some questions come in many wordings, some in one)."""
    k = rng.choices(range(1, most + 1), weights=[2, 3, 3, 2, 2][:most])[0]
    return [templates[0], *rng.sample(templates[1:], min(k - 1, len(templates) - 1))]


def intents(rng: random.Random) -> list[dict]:
    out: list[dict] = []
    for ident, domain, texts in cat.HAND:
        ident, _, base = ident.partition("~")
        out.append({"id": ident, "domain": domain, "kind": "lookalike" if base else "core",
                    "lookalike_of": base or None, "texts": list(texts)})
    for fam in cat.FAMILIES:
        prefix, _, base_family = fam["id"].partition("~")
        templates = fam["templates"]
        for value in fam["values"]:
            base = f"{base_family}.{slug(value)}" if base_family else None
            out.append({"id": f"{prefix}.{slug(value)}", "domain": fam["domain"],
                        "kind": "lookalike" if base_family else "core", "lookalike_of": base,
                        "texts": [_fill(t, value) for t in _phrasings(rng, templates, 5)]})
        for value, source in fam.get("lookalikes", []):
            out.append({"id": f"{prefix}.{slug(value)}", "domain": fam["domain"], "kind": "lookalike",
                        "lookalike_of": f"{prefix}.{slug(source)}",
                        "texts": [_fill(t, value) for t in _phrasings(rng, templates, 2)]})
    known = {i["id"] for i in out}
    for i in out:  # a look-alike of a value the family does not have points at nothing
        if i["lookalike_of"] not in known:
            i["lookalike_of"] = None
    return out


def one_offs(rng: random.Random, taken: set[str], n: int) -> list[dict]:
    out: list[dict] = []
    while len(out) < n:
        domain, template = rng.choice(cat.ONE_OFF_TEMPLATES)
        c1, c2 = rng.sample(cat.COUNTRIES, 2)
        city, city2 = rng.sample(cat.CITIES, 2)
        text = template.format(
            a=rng.randint(11, 999), b=rng.randint(11, 999), p=rng.choice([3, 7, 12, 15, 18, 22, 35, 45, 65]),
            n=rng.randint(20, 2500), k=rng.randint(3, 48), d=rng.randint(1, 28), d2=rng.randint(1, 28),
            m=rng.choice(cat.MONTHS), m2=rng.choice(cat.MONTHS), y=rng.randint(1950, 2015),
            name=rng.choice(cat.NAMES), day=rng.choice(cat.DAYS), adj=rng.choice(cat.ADJECTIVES),
            animal=rng.choice(cat.ANIMALS), thing=rng.choice(cat.THINGS), phrase=rng.choice(cat.PHRASES),
            lang=rng.choice(cat.LANGS), order=rng.randint(100000, 999999), city=city, city2=city2, c1=c1, c2=c2)
        if text in taken:
            continue
        taken.add(text)
        out.append({"id": f"oneoff.{len(out) + 1:04d}", "domain": domain, "kind": "oneoff", "lookalike_of": None,
                    "texts": [text]})
    return out


def stream(rng: random.Random, catalogue: list[dict], oneoffs: list[dict]) -> list[dict]:
    order = list(catalogue)
    rng.shuffle(order)
    weights = [1 / (r + ZIPF_Q) ** ZIPF_S for r in range(len(order))]
    n_cat = N_REQUESTS - len(oneoffs)
    picks = [(i, _pick_text(rng, i)) for i in rng.choices(order, weights=weights, k=n_cat)]
    picks += [(i, i["texts"][0]) for i in oneoffs]
    rng.shuffle(picks)
    seen_intents: set[str] = set()
    seen_texts: set[str] = set()
    out = []
    for n, (intent, text) in enumerate(picks):
        seen = "repeat" if text in seen_texts else "paraphrase" if intent["id"] in seen_intents else "new"
        seen_intents.add(intent["id"])
        seen_texts.add(text)
        out.append({"n": n, "intent": intent["id"], "text": text, "seen": seen})
    return out


def _pick_text(rng: random.Random, intent: dict) -> str:
    texts = intent["texts"]
    text = texts[0] if len(texts) == 1 or rng.random() < CANONICAL_SHARE else rng.choice(texts[1:])
    return decorate(rng, text) if rng.random() < DECORATE_SHARE else text


def decorate(rng: random.Random, text: str) -> str:
    """The same question with a greeting in front, a thank-you after, or both."""
    how = rng.choice(("greet", "thank", "both"))
    if how in ("greet", "both"):
        greeting = rng.choice(GREETINGS)
        if greeting.rstrip().endswith((",", ":")) and text.split(" ", 1)[0].rstrip(":,") in SENTENCE_STARTS:
            text = text[0].lower() + text[1:]
        text = greeting + text
    if how in ("thank", "both"):
        # a question typed without punctuation gets an equally casual "thanks"
        text += rng.choice(THANKS) if text.endswith(("?", ".", "!")) else " thanks"
    return text


def build() -> tuple[list[dict], list[dict]]:
    rng = random.Random(SEED)
    found = intents(rng)
    owner: dict[str, str] = {}
    for i in found:
        for t in i["texts"]:
            if owner.setdefault(t, i["id"]) != i["id"]:
                raise SystemExit(f"{t!r} is a phrasing of both {owner[t]} and {i['id']}")
    ids = Counter(i["id"] for i in found)
    if dup := [k for k, v in ids.items() if v > 1]:
        raise SystemExit(f"duplicate intent ids: {dup}")
    oneoffs = one_offs(rng, set(owner), round(N_REQUESTS * ONE_OFF_SHARE))
    return found + oneoffs, stream(rng, found, oneoffs)


def _jsonl(rows: list[dict]) -> str:
    return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)


def summary(all_intents: list[dict], requests: list[dict]) -> str:
    kinds = Counter(i["kind"] for i in all_intents)
    seen = Counter(r["seen"] for r in requests)
    by_id = {i["id"]: i for i in all_intents}
    asked = Counter(r["intent"] for r in requests)
    lookalike_traps = sum(1 for r in requests if by_id[r["intent"]]["kind"] == "lookalike")
    domains = Counter(i["domain"] for i in all_intents if i["kind"] != "oneoff")
    n = len(requests)
    return (f"intents: {kinds['core']} core, {kinds['lookalike']} look-alikes, {kinds['oneoff']} one-off "
            f"(phrasings: {sum(len(i['texts']) for i in all_intents if i['kind'] != 'oneoff')} catalogue); "
            f"domains {dict(sorted(domains.items()))}\n"
            f"requests: {n}: new {seen['new']} ({seen['new'] / n:.1%}), exact repeats {seen['repeat']} "
            f"({seen['repeat'] / n:.1%}), paraphrases of an intent asked before {seen['paraphrase']} "
            f"({seen['paraphrase'] / n:.1%}); distinct intents asked {len(asked)}; the most asked "
            f"{asked.most_common(1)[0][1]} times; requests for look-alike intents {lookalike_traps}")


def main() -> None:
    p = argparse.ArgumentParser(description="Build bench/cache_workload/*.jsonl (see the module docstring).")
    p.add_argument("--check", action="store_true", help="fail if the shipped files differ from a fresh build")
    args = p.parse_args()
    all_intents, requests = build()
    files = {INTENTS: _jsonl(all_intents), REQUESTS: _jsonl(requests)}
    if args.check:
        stale = [p.name for p, text in files.items() if not p.is_file() or p.read_text() != text]
        if stale:
            sys.exit(f"stale: {', '.join(stale)} (run bench/cache_workload/generate.py)")
    else:
        for path, text in files.items():
            path.write_text(text)
    print(summary(all_intents, requests))


if __name__ == "__main__":
    main()
