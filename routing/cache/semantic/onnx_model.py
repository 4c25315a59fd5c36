"""all-MiniLM-L6-v2 as an ONNX graph for onnxruntime: built from the packaged safetensors
weights with onnx.helper (no torch, no download), int8 by default, run on one thread.

The graph is the numpy forward pass of embedder.py, op for op (embeddings, 6 encoder layers,
mean pooling, L2 norm): its fp32 build gives the numpy vectors to 1e-6. The int8 build
quantises the 24 weight MatMuls of the encoder per output channel and their inputs per call
(onnxruntime's dynamic quantisation): a quarter of the weight bytes to read per call and integer
kernels, 2-3x less CPU than fp32 for 9 to 256 tokens; its vectors are within cosine 0.987 of
fp32 on the labelled pairs' texts (tests/test_cache_semantic_embedder.py). reduce_range (7-bit
weights), as onnxruntime advises for CPUs without VNNI, whose u8 x s8 kernels add pairs of
products in saturating 16-bit sums: the file is built where it runs, but var/ may be copied.

The built file is derived data, never committed: written on first use under the cache folder
with a name that carries a hash of what it is made of (the weights' bytes, RECIPE, the
precision, onnxruntime's version), so a changed package, recipe or runtime builds a new file and
an unchanged one is reused. It is written under a temporary name and renamed: workers that build
at once never read half a file.
"""

from __future__ import annotations

import hashlib
import importlib.util
import logging
import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

log = logging.getLogger("gateway.cache")

RECIPE = "minilm-onnx-2"  # bump when build_graph or the quantisation settings change (2: the token states out too)
PRECISIONS = ("int8", "fp32")
_DIM, _HEADS, _HEAD_DIM, _LAYERS, _OPSET = 384, 12, 32, 6, 17


def onnx_available() -> bool:
    """onnxruntime runs the graph; onnx (and onnxruntime.quantization) builds it."""
    return all(importlib.util.find_spec(name) is not None for name in ("onnxruntime", "onnx"))


def build_graph(w: dict[str, np.ndarray]) -> Any:
    """The BERT encoder + mean pooling + L2 norm; input `input_ids` int64 [n], outputs
    `embedding` float32 [384] and `tokens` float32 [n, 384], the last layer's token states
    that the mean pools (the alignment check, reader_align.py, reads them: no second pass)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    inits: list[Any] = []
    nodes: list[Any] = []

    def const(name: str, value: Any, dtype: Any = np.int64) -> str:
        inits.append(numpy_helper.from_array(np.ascontiguousarray(np.asarray(value, dtype=dtype)), name))
        return name

    def op(kind: str, inputs: list[str], output: str | None = None, **attrs: Any) -> str:
        output = output or f"{kind}_{len(nodes)}"
        nodes.append(helper.make_node(kind, inputs, [output], name=output, **attrs))
        return output

    def dense(x: str, name: str, weight: np.ndarray, bias: np.ndarray) -> str:  # x @ weight.T + bias
        product = op("MatMul", [x, const(name + "_w", weight.T, np.float32)])
        return op("Add", [product, const(name + "_b", bias, np.float32)])

    def layer_norm(x: str, prefix: str) -> str:
        return op("LayerNormalization", [x, const(prefix + "_g", w[prefix + ".weight"], np.float32),
                                         const(prefix + "_b", w[prefix + ".bias"], np.float32)], axis=-1, epsilon=1e-12)

    const("start", [0])
    const("axis0", [0])
    const("qkv_shape", [0, 3, _HEADS, _HEAD_DIM])
    const("rows_shape", [-1, _DIM])
    const("qkv_split", [1, 1, 1])
    const("scale", 1.0 / np.sqrt(_HEAD_DIM), np.float32)
    const("half", 0.5, np.float32)
    const("one", 1.0, np.float32)
    const("rsqrt2", 1.0 / np.sqrt(2.0), np.float32)
    words = op("Gather", [const("word_embeddings", w["embeddings.word_embeddings.weight"], np.float32), "input_ids"])
    positions = op("Slice", [const("position_embeddings", w["embeddings.position_embeddings.weight"], np.float32),
                             "start", op("Shape", ["input_ids"]), "axis0"])  # rows 0..n-1
    type0 = const("token_type0", w["embeddings.token_type_embeddings.weight"][0], np.float32)
    x = layer_norm(op("Add", [op("Add", [words, positions]), type0]), "embeddings.LayerNorm")
    for i in range(_LAYERS):
        p, a = f"encoder.layer.{i}.", f"encoder.layer.{i}.attention."
        qkv_w = np.concatenate([w[f"{a}self.{n}.weight"] for n in ("query", "key", "value")], 0)
        qkv_b = np.concatenate([w[f"{a}self.{n}.bias"] for n in ("query", "key", "value")])
        qkv = op("Transpose", [op("Reshape", [dense(x, f"{a}qkv", qkv_w, qkv_b), "qkv_shape"])], perm=[1, 2, 0, 3])
        q, k, v = (f"{p}q", f"{p}k", f"{p}v")  # each [1, heads, n, head_dim]
        nodes.append(helper.make_node("Split", [qkv, "qkv_split"], [q, k, v], name=f"{p}split", axis=0))
        scores = op("Mul", [op("MatMul", [q, op("Transpose", [k], perm=[0, 1, 3, 2])]), "scale"])
        attended = op("MatMul", [op("Softmax", [scores], axis=-1), v])
        attended = op("Reshape", [op("Transpose", [attended], perm=[0, 2, 1, 3]), "rows_shape"])
        x = layer_norm(op("Add", [dense(attended, f"{a}output.dense", w[a + "output.dense.weight"],
                                        w[a + "output.dense.bias"]), x]), a + "output.LayerNorm")
        h = dense(x, f"{p}intermediate.dense", w[p + "intermediate.dense.weight"], w[p + "intermediate.dense.bias"])
        h = op("Mul", [op("Mul", [h, "half"]), op("Add", [op("Erf", [op("Mul", [h, "rsqrt2"])]), "one"])])  # GELU
        x = layer_norm(op("Add", [dense(h, f"{p}output.dense", w[p + "output.dense.weight"],
                                        w[p + "output.dense.bias"]), x]), p + "output.LayerNorm")
    op("LpNormalization", [op("ReduceMean", [x], axes=[0], keepdims=0)], "embedding", axis=-1, p=2)
    op("Identity", [x], "tokens")
    graph = helper.make_graph(nodes, "all-MiniLM-L6-v2",
                              [helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["n"])],
                              [helper.make_tensor_value_info("embedding", TensorProto.FLOAT, [_DIM]),
                               helper.make_tensor_value_info("tokens", TensorProto.FLOAT, ["n", _DIM])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", _OPSET)], ir_version=8,
                              producer_name="gateway routing.cache.semantic")
    onnx.checker.check_model(model)
    return model


def model_file(folder: Path, precision: str, cache: Path) -> Path:
    """The built model of this precision under `cache`, built first if it is not there."""
    import onnxruntime

    if precision not in PRECISIONS:
        raise ValueError(f"precision {precision!r}: one of {', '.join(PRECISIONS)}")
    weights = folder / "model.safetensors"
    digest = hashlib.sha256(f"{RECIPE}|{precision}|onnxruntime {onnxruntime.__version__}|".encode())
    with open(weights, "rb") as fh:
        digest.update(hashlib.file_digest(fh, "sha256").digest())
    path = cache / f"all-MiniLM-L6-v2-{precision}-{digest.hexdigest()[:16]}.onnx"
    if not path.is_file():
        _build(weights, precision, path)
    return path


def _build(weights: Path, precision: str, path: Path) -> None:
    import onnx
    from safetensors.numpy import load_file

    log.info("building the embedding model %s (%s) from %s", path.name, precision, weights)
    path.parent.mkdir(parents=True, exist_ok=True)
    model = build_graph(load_file(str(weights)))
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".part", dir=path.parent)
    os.close(fd)
    try:
        if precision == "fp32":
            onnx.save(model, tmp)
        else:
            _quantize(model, tmp)
        os.chmod(tmp, 0o644)  # mkstemp's 0600 would shut out workers running as another user
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


class _NoPreprocessHint(logging.Filter):
    # quantize_dynamic advises shape-inference pre-processing on the root logger; it would
    # fuse nothing here (the graph is built with LayerNormalization and plain MatMuls).
    def filter(self, record: logging.LogRecord) -> bool:
        return "pre-processing before quantization" not in record.getMessage()


def _quantize(model: Any, out: str) -> None:
    from onnxruntime.quantization import QuantType, quantize_dynamic

    hint = _NoPreprocessHint()
    logging.getLogger().addFilter(hint)
    try:
        quantize_dynamic(model, out, op_types_to_quantize=["MatMul"], per_channel=True, reduce_range=True,
                         weight_type=QuantType.QInt8)
    finally:
        logging.getLogger().removeFilter(hint)


def open_session(path: Path) -> Any:
    """One intra-op thread and no spinning: the gateway runs a worker per core and embeds in
    asyncio.to_thread; a pool of its own would fight the event loop for the core."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    opts.log_severity_level = 3  # the quantised graph's shape-merge notes are warnings, not faults
    return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])


def load_session(folder: Path, precision: str, cache: Path) -> tuple[Any, Path]:
    """(session, its file): the cached build, or a new one; a cached file that does not load
    (cut short by a full disk, say) is built again once."""
    path = model_file(folder, precision, cache)
    try:
        return open_session(path), path
    except Exception as exc:  # onnxruntime raises its own Fail/InvalidProtobuf types
        log.warning("embedding model %s does not load (%s): building it again", path, exc)
        path.unlink(missing_ok=True)
        path = model_file(folder, precision, cache)
        return open_session(path), path
