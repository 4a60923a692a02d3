"""`mlpc asm`: the SUBLEQ listing of a program, or the one a compiled model holds."""

from __future__ import annotations

import argparse

from mlpc.cli.common import (
    PROGRAM_KINDS,
    Command,
    add_stack_option,
    model_among,
    model_metadata,
)
from mlpc.compiler.assembler import disassemble
from mlpc.errors import MlpcError


def options(asm: argparse.ArgumentParser) -> None:
    asm.add_argument("program", nargs="+", metavar="PROG|MODEL.onnx",
                     help=PROGRAM_KINDS + "; or a compiled MODEL.onnx (its listing)")
    asm.add_argument("--word-bits", type=int, choices=(16, 32), default=32,
                     help="word size W (default 32)")
    add_stack_option(asm)


def run(args: argparse.Namespace) -> int:
    from mlpc.compiler.driver import load_program
    from mlpc.compiler.options import CompileOptions

    model = model_among(args.program, "asm")
    if model is not None:
        meta = model_metadata(model)
        if "listing" not in meta:
            raise MlpcError(f"{model}: this ONNX model holds no SUBLEQ listing (not made by "
                            "mlpc)")
        print(meta["listing"])
        return 0
    options = CompileOptions(word_bits=args.word_bits, stack=args.stack)
    image = load_program(args.program, options).image
    print(image.listing or disassemble(image.words, image.symbol_table()))
    return 0


COMMAND = Command("asm", help="print the SUBLEQ listing of a program",
                  description="Print the SUBLEQ listing of a program, or the one a compiled "
                  "model holds in its metadata.", options=options, run=run)
