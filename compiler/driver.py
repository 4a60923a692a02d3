"""The thin driver: from the files a user names to a checked program and a SUBLEQ image.

    .tl source  --parser-->  AST  --checker-->  checked AST  --lowering-->  SubleqImage
    .sq/.dec/.asm  --assembler-->  SubleqImage

The network codegen and the ONNX exporter take it from the image (see `compiler/codegen.py`
and `compiler/export_onnx.py`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from mlpc.compiler.assembler import load_image, read_text
from mlpc.compiler.image import SubleqImage
from mlpc.errors import MlpcError

SOURCE_SUFFIX = ".tl"


@dataclass(frozen=True)
class CompileOptions:
    word_bits: int = 32
    stack: int | None = None  # words of stack for .tl programs (None: the default)


def is_source(paths: Sequence[str]) -> bool:
    return any(p.endswith(SOURCE_SUFFIX) for p in paths)


class LoadedProgram:
    """A program as the engines need it: the checked AST for `.tl` source (the `source`
    engine runs it) and the SUBLEQ image (compiled on first use)."""

    def __init__(self, paths: Sequence[str], options: CompileOptions) -> None:
        self.paths = tuple(paths)
        self.options = options
        self.checked: Any | None = None
        if is_source(paths):
            if len(paths) != 1:
                raise MlpcError("a .tl program is compiled on its own: give exactly one file")
            self.checked = check_source_file(paths[0], options)

    @cached_property
    def image(self) -> SubleqImage:
        if self.checked is not None:
            return lower_checked(self.checked, self.options)
        return load_image(self.paths)

    @property
    def input_names(self) -> tuple[str, ...]:
        if self.checked is not None:
            return tuple(self.checked.input_names)
        return tuple(name for name, _ in self.image.inputs)


def load_program(paths: Sequence[str], options: CompileOptions) -> LoadedProgram:
    return LoadedProgram(paths, options)


def check_source_file(path: str, options: CompileOptions) -> Any:
    """Parse and check a .tl file (the language front end)."""
    try:
        from mlpc.compiler.checker import check_program
        from mlpc.compiler.parser import parse_program
    except ImportError:
        raise MlpcError(f"{path}: .tl programs are not supported by this build yet") from None
    text = read_text(path)
    return check_program(parse_program(text, path), word_bits=options.word_bits)


def lower_checked(checked: Any, options: CompileOptions) -> SubleqImage:
    """Lower a checked program to a SUBLEQ image."""
    try:
        from mlpc.compiler.lowering import lower_program
    except ImportError:
        raise MlpcError("compiling .tl to SUBLEQ is not supported by this build yet") from None
    return lower_program(checked, options)
