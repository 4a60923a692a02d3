"""The thin driver: from the files a user names to a SUBLEQ image, whatever their kind."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from mlpc.compiler.assembler import load_image
from mlpc.compiler.image import SubleqImage
from mlpc.errors import MlpcError

SOURCE_SUFFIX = ".tl"


@dataclass(frozen=True)
class CompileOptions:
    word_bits: int = 32
    stack: int | None = None  # words of stack for .tl programs (None: the default)


def is_source(paths: Sequence[str]) -> bool:
    return any(p.endswith(SOURCE_SUFFIX) for p in paths)


def load_program(paths: Sequence[str], options: CompileOptions) -> SubleqImage:
    """`.tl` source is compiled; `.sq`/`.dec`/assembly files are loaded and concatenated."""
    if is_source(paths):
        if len(paths) != 1:
            raise MlpcError("a .tl program is compiled on its own: give exactly one file")
        return compile_source_file(paths[0], options)
    return load_image(paths)


def compile_source_file(path: str, options: CompileOptions) -> SubleqImage:
    raise MlpcError(f"{path}: compiling .tl programs is not available in this build yet")
