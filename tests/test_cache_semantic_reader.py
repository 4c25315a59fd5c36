"""The alignment check (routing/cache/semantic/reader_align.py): the model's token states out of
the same forward pass, what a question keeps of them, the two vetoes, their shipped parameters,
and the index using them (in-process here; through PostgreSQL in test_cache_semantic_pgvector.py).
The example questions are not in the labelled splits."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest

from routing.cache.semantic import DEFAULT_THRESHOLD, EmbeddingIndex, read_question, semantic_available
from routing.cache.semantic import onnx_model
from routing.cache.semantic.embedder import DIM, get_embedder
from routing.cache.semantic.guard import Features, agree, features
from routing.cache.semantic.guard_features import READER_VERSION
from routing.cache.semantic.memory import MemoryVectorIndex
from routing.cache.semantic.reader_align import (PARAMS_FILE, AlignParams, Alignment, aligned_veto, alignment_of,
                                                 rarity, shipped_params)

pytestmark = pytest.mark.skipif(not semantic_available()[0], reason=semantic_available()[1])

LOOK_ALIKES = [  # (stored, asked, the alignment check's reason); the word rules let all of them through
    ("How do I become a nurse?", "How do I become a nurse anesthetist?", "specific word"),
    ("How long should I boil an egg?", "How long should I boil a quail egg?", "specific word"),
    ("How much should a newborn sleep?", "How much should a premature newborn sleep?", "specific word"),
    ("What shots does a puppy need?", "What shots does an adult dog need?", "added modifier"),
]
PARAPHRASES = [
    ("How do I become a nurse?", "How can I become a nurse?"),
    ("How do I make bread?", "What's the method for making bread?"),
    ("What is the capital of Canada?", "Which city is the capital of Canada?"),
    ("How do I convert Celsius to Fahrenheit?", "What's the way to convert Celsius into Fahrenheit?"),
]


def pair(a: str, b: str) -> tuple[float, Features, Features]:
    (va, fa), (vb, fb) = read_question(get_embedder(), a), read_question(get_embedder(), b)
    return float(va @ vb), fa, fb


@pytest.mark.parametrize(("stored", "asked", "reason"), LOOK_ALIKES)
def test_look_alikes_the_word_rules_miss_are_vetoed_by_the_alignment(stored: str, asked: str, reason: str) -> None:
    sim, fa, fb = pair(stored, asked)
    assert sim >= 0.78  # close enough to be a candidate (around the default threshold)
    assert agree(replace(fb, alignment=None), replace(fa, alignment=None), sim) is None  # words alone: no veto
    assert agree(fb, fa, sim) == reason
    assert agree(fa, fb, sim) == reason  # either way round


@pytest.mark.parametrize(("stored", "asked"), PARAPHRASES)
def test_paraphrases_pass_the_alignment(stored: str, asked: str) -> None:
    sim, fa, fb = pair(stored, asked)
    assert sim >= DEFAULT_THRESHOLD
    assert agree(fb, fa, sim) is None


def test_bare_units_have_sides_of_to() -> None:
    # READER_VERSION 4: "pounds to kilograms" is not "kilograms to pounds" (both texts name both units)
    assert agree(features("How do I convert pounds to kilograms?"), features("How do I convert kilograms to pounds?"),
                 0.99) == "word order"
    assert agree(features("How do I convert pounds to kilograms?"),
                 features("What's the way to convert pounds into kilograms?"), 0.99) is None
    assert READER_VERSION >= 4


def test_a_question_keeps_hashes_rarity_and_int8_vectors_of_its_content_words() -> None:
    vector, pieces, ids, states = get_embedder().read("How do I renew my passport urgently?")
    assert states.shape == (len(ids), DIM) and pieces[0] == "[CLS]"
    al = alignment_of(pieces, ids, states)
    assert len(al.stems) == 3  # renew, passport, urgently (stop words, "?" and [CLS]/[SEP] are not kept)
    assert al.vectors.dtype == np.int8 and al.vectors.shape == (3, DIM)
    norms = np.linalg.norm(al.vectors.astype(np.float32) / 127.0, axis=1)
    assert np.allclose(norms, 1.0, atol=0.02)
    assert al.before_content == (False, True, False)  # "my" stands between renew and passport
    assert al.rarity[2] > al.rarity[0]  # "urgently" is rarer than "renew"
    assert rarity(25000) > rarity(13000) > rarity(2000)
    assert "urgently" not in json.dumps(al.to_json())  # hashes, buckets and vectors: no text


def test_the_alignment_survives_the_stored_json_form() -> None:
    _, f = read_question(get_embedder(), "What shots does an adult dog need?")
    back = Features.from_json(json.loads(json.dumps(f.to_json())))
    assert back.alignment is not None
    assert back.alignment.stems == f.alignment.stems and back.alignment.rarity == f.alignment.rarity
    assert back.alignment.before_content == f.alignment.before_content
    assert np.array_equal(back.alignment.vectors, f.alignment.vectors)
    assert replace(back, alignment=None) == replace(f, alignment=None)
    # a question without content words (all stop words) keeps an empty alignment
    _, empty = read_question(get_embedder(), "Why?")
    assert Features.from_json(empty.to_json()).alignment.stems == ()


def test_the_token_states_come_from_the_same_pass_as_the_vector() -> None:
    e = get_embedder()
    text = "What shots does an adult dog need?"
    vector, _, ids, states = e.read(text)
    assert np.allclose(vector, e.embed(text), atol=1e-6)
    pooled = states.mean(0)
    assert np.allclose(pooled / np.linalg.norm(pooled), vector, atol=1e-5)  # the vector pools these states
    if e.kind != "numpy":
        _, _, _, reference = get_embedder("numpy").read(text)
        cos = (states * reference).sum(1) / np.linalg.norm(states, axis=1) / np.linalg.norm(reference, axis=1)
        assert cos.min() > 0.9  # int8 token states stay close to the numpy reference's


@pytest.mark.skipif(not onnx_model.onnx_available(), reason="onnxruntime and onnx are not installed")
def test_the_fp32_graph_gives_the_numpy_token_states() -> None:
    text = "How much should a premature newborn sleep?"
    _, _, _, fp32 = get_embedder("fp32").read(text)
    _, _, _, reference = get_embedder("numpy").read(text)
    assert np.abs(fp32 - reference).max() < 1e-3


def test_the_shipped_parameters_and_their_fit() -> None:
    record = json.loads(PARAMS_FILE.read_text())
    params = shipped_params()
    assert params == AlignParams(**record["params"])
    assert record["splits"] == ["tuning", "holdout", "holdout2", "holdout3"]  # never the blind split
    assert set(record["cross_validation"]) == set(record["splits"])
    assert 0.0 < params.tau < 1.0 and params.rare_rank > 1000


def test_similarity_at_max_similarity_skips_the_check() -> None:
    sim, fa, fb = pair(*LOOK_ALIKES[0][:2])
    assert aligned_veto(fb.alignment, fa.alignment, sim) == "specific word"
    assert aligned_veto(fb.alignment, fa.alignment, sim, replace(shipped_params(), max_similarity=sim)) is None
    off = AlignParams(tau=1.0, rare_rank=10**9, added_modifier=False)
    assert aligned_veto(fb.alignment, fa.alignment, sim, off) is None


def test_an_empty_alignment_abstains() -> None:
    _, fa, _ = pair("How do I become a nurse?", "How can I become a nurse?")
    assert aligned_veto(Alignment(), fa.alignment, 0.9) is None
    assert aligned_veto(fa.alignment, Alignment(), 0.9) is None


async def test_the_index_misses_a_look_alike_only_the_alignment_sees() -> None:
    idx = EmbeddingIndex(MemoryVectorIndex(DIM, 100), get_embedder().embed)
    await idx.add("ns", "How do I become a nurse?", "nurse", 60)
    assert await idx.lookup("ns", "How do I become a nurse anesthetist?", 0.75) is None
    match = await idx.lookup("ns", "How can I become a nurse?", DEFAULT_THRESHOLD)
    assert match is not None and match.entry_id == "nurse"


async def test_an_embed_function_without_token_states_reads_without_the_alignment() -> None:
    embedder = get_embedder()
    idx = EmbeddingIndex(MemoryVectorIndex(DIM, 100), lambda text: embedder.embed(text))
    await idx.add("ns", "How do I become a nurse?", "nurse", 60)
    # the word rules alone: this look-alike gets through (the alignment check abstains)
    assert await idx.lookup("ns", "How do I become a nurse anesthetist?", 0.75) is not None
