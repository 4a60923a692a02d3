"""Limits and defaults that the compiler, the runtime and the command line share.

A leaf module: it imports nothing, so the command line can offer these choices (and
`mlpc --help` can print them) without importing numpy, onnx or the compiler.
"""

from __future__ import annotations

WEIGHTS = ("families", "sparse", "dense")  # --weights: how the layers are written in ONNX
DTYPES = ("int64", "float64")  # --dtype: the network's number type
DEFAULT_UNROLL = 8  # SUBLEQ steps per Loop iteration
MAX_UNROLL = 1024  # the Loop body holds a copy of the network per step
DENSE_LIMIT = 512  # --weights dense: memories up to this many words
MAX_NETWORK_MEMORY = 1 << 16  # words; the network's size grows with memory
MAX_BUDGET = (1 << 50) - 1  # steps; below 2^53, so the budget is a float64-exact value too
INT64_MAX = (1 << 63) - 1  # a model's default max_steps is an int64 (the budget saturates)
TAPE_LENGTH = "tape_length"  # the optional input of models whose program uses eof()
ENGINE_NAMES = ("onnx", "numpy", "reference", "source")  # mlpc run --engine
