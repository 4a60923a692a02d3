"""The thin driver: from the files a user names to a checked program and a SUBLEQ image.

    .tl source  --parser-->  AST  --checker-->  checked AST  --lowering-->  SubleqImage
    .sq/.dec/.asm  --assembler-->  SubleqImage

`compiler/model.py` takes it from the image: the network codegen, then the ONNX exporter.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from functools import cached_property

from mlpc.compiler.assembler import load_image, read_text
from mlpc.compiler.checker import CheckedProgram, check_program
from mlpc.compiler.image import SubleqImage, merge_ranges
from mlpc.compiler.lowering import lower_program
from mlpc.compiler.machine_config import DEFAULT_TAPE_IN, DEFAULT_TAPE_OUT, MachineConfig
from mlpc.compiler.options import CompileOptions
from mlpc.compiler.parser import parse_program
from mlpc.errors import MlpcError

SOURCE_SUFFIX = ".tl"


def is_source(paths: Sequence[str]) -> bool:
    return any(p.endswith(SOURCE_SUFFIX) for p in paths)


class LoadedProgram:
    """A program as the engines need it: the checked AST for `.tl` source (the `source`
    engine runs it) and the SUBLEQ image (compiled on first use). `texts`, when given, are
    the contents of the files `paths` name (a program held in memory: `load_program_text`)."""

    def __init__(self, paths: Sequence[str], options: CompileOptions,
                 texts: Sequence[str] | None = None) -> None:
        self.paths = tuple(paths)
        self.options = options
        self.texts = None if texts is None else tuple(texts)
        if self.texts is not None and len(self.texts) != len(self.paths):
            raise ValueError("LoadedProgram: one text for each path")
        self.checked: CheckedProgram | None = None
        if is_source(paths):
            if len(paths) != 1:
                raise MlpcError("a .tl program is compiled on its own: give exactly one file")
            self.checked = check_source_file(paths[0], options,
                                             None if self.texts is None else self.texts[0])
            if options.read_only:
                raise MlpcError("--read-only is for SUBLEQ code: a .tl program knows which "
                                "words it writes")

    @cached_property
    def image(self) -> SubleqImage:
        if self.checked is not None:
            return lower_checked(self.checked, self.options)
        image = load_image(self.paths, self.texts)
        if self.options.read_only:
            image = replace(image, writable=writable_outside(self.options.read_only))
        return image

    @property
    def input_names(self) -> tuple[str, ...]:
        if self.checked is not None:
            return tuple(self.checked.input_names)
        return tuple(name for name, _ in self.image.inputs)


def load_program(paths: Sequence[str], options: CompileOptions) -> LoadedProgram:
    return LoadedProgram(paths, options)


def load_program_text(text: str, name: str, options: CompileOptions) -> LoadedProgram:
    """A program held in memory (the source a model carries, say) as if read from the file
    `name`: its suffix says the kind of program, and messages and the image name it."""
    return LoadedProgram((name,), options, (text,))


def check_source_file(path: str, options: CompileOptions, text: str | None = None
                      ) -> CheckedProgram:
    """Parse and check a .tl file, or its `text` when given (the language front end)."""
    if text is None:
        text = read_text(path)
    return check_program(parse_program(text, path), word_bits=options.word_bits)


def lower_checked(checked: CheckedProgram, options: CompileOptions) -> SubleqImage:
    """Lower a checked program to a SUBLEQ image."""
    return lower_program(checked, options)


def machine_config(
    image: SubleqImage,
    memory: int | None = None,
    word_bits: int = 32,
    tape_in: int | None = None,
    tape_out: int | None = None,
) -> MachineConfig:
    """The machine a program runs on: its default memory size unless `memory` is given."""
    size = memory if memory is not None else image.default_memory()
    if size < len(image.words):
        raise MlpcError(f"the program needs {len(image.words)} words of memory; --memory is {size}")
    if image.min_memory and size < image.min_memory:
        raise MlpcError(
            f"the program needs {image.min_memory} words of memory (code, data and stack); "
            f"--memory is {size}"
        )
    return MachineConfig(
        memory=size,
        word_bits=word_bits,
        tape_in=DEFAULT_TAPE_IN if tape_in is None else tape_in,
        tape_out=DEFAULT_TAPE_OUT if tape_out is None else tape_out,
    )


def writable_outside(constant: Sequence[tuple[int, int]]) -> tuple[tuple[int, int], ...]:
    """The words not in the `constant` [start, end) ranges, as ranges up to 2^62."""
    spans, at = [], 0
    for start, end in merge_ranges(list(constant)):
        spans.append((at, start))
        at = end
    spans.append((at, 1 << 62))
    return merge_ranges(spans)
