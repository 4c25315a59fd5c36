"""The embedders: the ONNX graph's vectors against the numpy reference (fp32 to 1e-5, int8 by
cosine), the built model file reused and rebuilt when it must be, the numpy fallback, and the
index embedding a missed question once (lookup, then add)."""

from __future__ import annotations

import asyncio
import logging
import threading

import numpy as np
import pytest

from routing.cache.semantic import EmbeddingIndex, semantic_available
from routing.cache.semantic import embedder as E
from routing.cache.semantic import onnx_model
from routing.cache.semantic.embedder import DIM, MAX_TOKENS, NumpyEmbedder, get_embedder, make_embedder, model_dir
from routing.cache.semantic.memory import MemoryVectorIndex

pytestmark = pytest.mark.skipif(not semantic_available()[0], reason=semantic_available()[1])
needs_onnx = pytest.mark.skipif(not onnx_model.onnx_available(), reason="onnxruntime and onnx are not installed")


def corpus_texts(n: int = 80) -> list[str]:
    """Every k-th text of the labelled pairs (all splits), plus the shortest and a truncated one."""
    from routing.cache.corpus.scoring import SPLITS, load

    texts = sorted({t for split in SPLITS for p in load(split) for t in (p.a, p.b)})
    return [*texts[:: max(1, len(texts) // n)], "Hi", "word " * (MAX_TOKENS + 40)]


@pytest.fixture(scope="module")
def reference() -> dict[str, np.ndarray]:
    numpy_embedder = get_embedder("numpy")
    return {t: numpy_embedder.embed(t) for t in corpus_texts()}


@needs_onnx
def test_the_fp32_graph_gives_the_numpy_vectors(reference: dict[str, np.ndarray]) -> None:
    fp32 = get_embedder("fp32")
    assert isinstance(fp32, E.OnnxEmbedder)
    for text, want in reference.items():
        got = fp32.embed(text)
        assert got.shape == (DIM,) and got.dtype == np.float32
        np.testing.assert_allclose(got, want, atol=1e-5, err_msg=text[:60])


@needs_onnx
def test_int8_vectors_stay_within_cosine_of_the_fp32_ones(reference: dict[str, np.ndarray]) -> None:
    # Measured on all 1190 texts of the labelled pairs: min 0.987, mean 0.994.
    int8 = get_embedder("int8")
    cosines = np.array([float(int8.embed(t) @ want) for t, want in reference.items()])
    assert cosines.min() >= 0.98, cosines.argmin()
    assert cosines.mean() >= 0.99
    assert np.allclose([np.linalg.norm(int8.embed(t)) for t in list(reference)[:5]], 1.0, atol=1e-5)


@pytest.fixture(scope="module")
def built_fp32(tmp_path_factory) -> E.OnnxEmbedder:
    """An fp32 build of its own (seconds), in a folder of its own."""
    built = make_embedder(model_dir(), "fp32", tmp_path_factory.mktemp("models"))
    assert isinstance(built, E.OnnxEmbedder)
    return built


@needs_onnx
def test_the_built_model_file_is_reused_and_named_by_what_it_is_made_of(built_fp32, monkeypatch) -> None:
    folder, first, tmp_path = model_dir(), built_fp32, built_fp32.model_path.parent
    built = first.model_path.stat().st_mtime_ns

    def no_build(*args: object) -> None:
        raise AssertionError("built again")

    monkeypatch.setattr(onnx_model, "_build", no_build)
    again = make_embedder(folder, "fp32", tmp_path)
    assert again.model_path == first.model_path and again.model_path.stat().st_mtime_ns == built
    assert [p.name for p in tmp_path.iterdir()] == [first.model_path.name]  # no temporary left behind
    text = "How much sleep do adults need?"
    np.testing.assert_array_equal(again.embed(text), first.embed(text))

    built_names: list[str] = []
    monkeypatch.setattr(onnx_model, "_build", lambda weights, precision, path: built_names.append(path.name))
    monkeypatch.setattr(onnx_model, "RECIPE", onnx_model.RECIPE + "-next")
    assert onnx_model.model_file(folder, "fp32", tmp_path) != first.model_path  # a new recipe, a new file
    onnx_model.model_file(folder, "int8", tmp_path)
    assert len(set(built_names)) == 2 and all(name.startswith("all-MiniLM-L6-v2-") for name in built_names)


@needs_onnx
def test_a_cached_file_that_does_not_load_is_built_again(built_fp32, tmp_path, caplog) -> None:
    folder = model_dir()
    path = tmp_path / built_fp32.model_path.name  # where model_file() looks for it in tmp_path
    path.write_bytes(b"cut short")
    with caplog.at_level(logging.WARNING, logger="gateway.cache"):
        rebuilt = make_embedder(folder, "fp32", tmp_path)
    assert isinstance(rebuilt, E.OnnxEmbedder) and rebuilt.model_path == path
    assert path.stat().st_size > 80_000_000 and "building it again" in caplog.text


def test_numpy_embeds_when_onnx_is_missing(monkeypatch, caplog, reference: dict[str, np.ndarray]) -> None:
    monkeypatch.setattr(onnx_model, "onnx_available", lambda: False)
    with caplog.at_level(logging.WARNING, logger="gateway.cache"):
        fallback = make_embedder(model_dir(), "int8")
    assert isinstance(fallback, NumpyEmbedder) and "not both installed" in caplog.text
    text = next(iter(reference))
    np.testing.assert_allclose(fallback.embed(text), reference[text], atol=1e-6)


@needs_onnx
def test_numpy_embeds_when_the_model_cannot_be_built(tmp_path, caplog) -> None:
    blocked = tmp_path / "not-a-folder"
    blocked.write_text("a file where the cache folder should be")
    with caplog.at_level(logging.WARNING, logger="gateway.cache"):
        fallback = make_embedder(model_dir(), "int8", blocked)
    assert isinstance(fallback, NumpyEmbedder) and "cannot be built or loaded" in caplog.text


def test_the_embedder_is_chosen_by_setting(settings, monkeypatch) -> None:
    monkeypatch.delenv("GATEWAY_CACHE_EMBEDDER", raising=False)
    assert E.configured_kind() == "int8"
    settings.GATEWAY_CACHE_EMBEDDER = "numpy"
    assert E.configured_kind() == "numpy" and isinstance(get_embedder(), NumpyEmbedder)
    settings.GATEWAY_CACHE_EMBEDDER = "int4"
    with pytest.raises(ValueError, match="int4"):
        E.configured_kind()


def test_built_models_go_under_the_var_folder(settings, tmp_path) -> None:
    settings.VAR_DIR = tmp_path
    assert E.cache_dir() == tmp_path / "models"


class CountingEmbed:
    def __init__(self) -> None:
        self.texts: list[str] = []
        self.threads: set[str] = set()
        self._embed = get_embedder().embed

    def __call__(self, text: str) -> np.ndarray:
        self.texts.append(text)
        self.threads.add(threading.current_thread().name)
        return self._embed(text)


async def test_a_semantic_miss_embeds_its_question_once() -> None:
    embed = CountingEmbed()
    idx = EmbeddingIndex(MemoryVectorIndex(DIM, 100), embed)
    question = "How do I reset my password?"
    assert await idx.lookup("ns", question, 0.8) is None
    await idx.add("ns", question, "e1", 60)
    assert embed.texts == [question]
    await idx.add("ns", "What is the capital of France?", "e2", 60)  # no lookup before it: embedded here
    paraphrase = "I forgot my password, how can I reset it?"
    match = await idx.lookup("ns", paraphrase, 0.8)
    assert match is not None and match.entry_id == "e1"
    assert len(embed.texts) == 3 and threading.main_thread().name not in embed.threads
    await idx.add("ns", paraphrase, "e3", 60)  # a hit keeps nothing (no add follows a hit)
    assert embed.texts.count(paraphrase) == 2


async def test_a_kept_read_is_dropped_once_used_and_the_oldest_go_first(monkeypatch) -> None:
    import routing.cache.semantic as semantic

    monkeypatch.setattr(semantic, "RECENT_READS", 2)
    embed = CountingEmbed()
    idx = EmbeddingIndex(MemoryVectorIndex(DIM, 100), embed)
    for text in ("first question", "second question", "third question"):
        await idx.lookup("ns", text, 0.8)
    await idx.add("ns", "first question", "e1", 60)  # pushed out by the third: embedded again
    await idx.add("ns", "third question", "e3", 60)
    await idx.add("ns", "third question", "e3", 60)  # its kept read went to the first add
    assert embed.texts.count("first question") == 2 and embed.texts.count("third question") == 2


async def test_the_model_is_loaded_off_the_event_loop(monkeypatch) -> None:
    loaded_on: list[str] = []
    real = get_embedder()

    def get_embedder_spy(kind: str | None = None) -> E.Embedder:
        loaded_on.append(threading.current_thread().name)
        return real

    monkeypatch.setattr(E, "get_embedder", get_embedder_spy)
    idx = EmbeddingIndex(MemoryVectorIndex(DIM, 100))
    assert loaded_on == []  # building the index loads nothing
    await asyncio.gather(idx.lookup("ns", "How do I reset my password?", 0.8))
    assert loaded_on and threading.main_thread().name not in loaded_on
