"""Limits and defaults that the compiler, the runtime and the command line share.

A leaf module: it imports nothing of the project (and of the standard library only
`dataclasses`), so the command line can offer these choices (and `mlpc --help` can print
them) without importing numpy, onnx or the compiler.
"""

from __future__ import annotations

from dataclasses import dataclass

DTYPES = ("int64", "float64")  # --dtype: the network's number type
DEFAULT_UNROLL = 8  # SUBLEQ steps per Loop iteration
MAX_UNROLL = 1024  # the Loop body holds a copy of the network per step
MAX_NETWORK_MEMORY = 1 << 16  # words; the network's size grows with memory
MAX_BUDGET = (1 << 50) - 1  # steps; below 2^53, so the budget is a float64-exact value too
INT64_MAX = (1 << 63) - 1  # a model's default max_steps is an int64 (the budget saturates)
TAPE_LENGTH = "tape_length"  # the optional input of models whose program uses eof()
ENGINE_NAMES = ("onnx", "numpy", "reference", "source")  # mlpc run --engine


@dataclass(frozen=True)
class EncodingInfo:
    """What the command line and the exporter know of an encoding (`--weights`) before
    importing it: its name, the module that writes it (whose `ENCODING` follows
    `compiler/encodings.py`'s `Encoding`), the dtypes it is exact in, and its limits."""

    name: str
    module: str
    dtypes: tuple[str, ...]
    why_not_other_dtypes: str = ""  # the reason given when another dtype is asked for
    memory_limit: int = 0  # words: the command line refuses a larger memory (0: no limit)
    max_elements: int = 0  # weight entries: the exporter refuses more (0: no limit)


# a row sum of the lowered matrices adds every term of a row (a reduction's: every word)
_ROW_SUM = "a sparse or dense row sum adds terms whose partial sums pass 2^53"

# --weights: how the layers are written in ONNX, the first the default. A new encoding is
# its module and one line here.
ENCODINGS = {info.name: info for info in (
    EncodingInfo("families", "mlpc.compiler.export_families", DTYPES),
    EncodingInfo("sparse", "mlpc.compiler.export_sparse", ("int64",), _ROW_SUM),
    EncodingInfo("dense", "mlpc.compiler.export_dense", ("int64",), _ROW_SUM,
                 memory_limit=512, max_elements=1 << 25),  # 256 MB of int64 weights
)}
WEIGHTS = tuple(ENCODINGS)
DENSE_LIMIT = ENCODINGS["dense"].memory_limit  # --weights dense: memories up to this many words
