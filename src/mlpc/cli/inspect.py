"""`mlpc inspect`: the layers, widths, non-zeros, sizes and memory map of a compiled model,
or of a program compiled in memory."""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import TYPE_CHECKING

from mlpc.cli.common import (
    PROGRAM_KINDS,
    Command,
    add_machine_options,
    add_network_options,
    add_stack_option,
    check_machine_limits,
    check_memory_limit,
    check_unroll,
    compile_options,
    model_among,
    network_options,
    positive,
    refuse_compile_options,
)
from mlpc.compiler.limits import DEFAULT_UNROLL
from mlpc.errors import UsageError

if TYPE_CHECKING:
    import onnx


def options(insp: argparse.ArgumentParser) -> None:
    insp.add_argument("model", nargs="+", metavar="MODEL.onnx|PROG",
                      help="a compiled MODEL.onnx, or a program to compile in memory: "
                      + PROGRAM_KINDS)
    insp.add_argument("--json", action="store_true", help="print one JSON object")
    insp.add_argument("--unroll", type=positive, default=DEFAULT_UNROLL, metavar="K",
                      help="for a program: SUBLEQ steps per Loop iteration (default "
                      "%(default)s)")
    add_network_options(insp)
    add_machine_options(insp)
    add_stack_option(insp)
    insp.add_argument("--plot", metavar="OUT.png",
                      help="draw the sparsity pattern of each weight factor (needs matplotlib)")


def run(args: argparse.Namespace) -> int:
    check_machine_limits(args)
    check_unroll(args.unroll)
    paths = args.model
    model = model_among(paths, "inspect")
    if model is not None:
        given = {"weights": args.weights, "dtype": args.dtype, "memory": args.memory,
                 "stack": args.stack}
        for option, value in given.items():
            if value is not None:
                raise UsageError(f"--{option} is a compile option: a compiled model has its own")
        refuse_compile_options(args, "a compiled model")
        from mlpc.runtime.onnx_engine import load_model_file

        return _inspect(args, load_model_file(model), model, os.path.getsize(model))
    from mlpc.compiler.driver import load_program, machine_config
    from mlpc.compiler.encodings import ExportOptions
    from mlpc.compiler.model import compile_model

    program = load_program(paths, compile_options(args))
    config = machine_config(program.image, args.memory, args.word_bits, args.tape_in,
                            args.tape_out)
    weights, dtype = network_options(args)
    check_memory_limit(weights, config)
    compiled = compile_model(program.image, config,
                             ExportOptions(unroll=args.unroll, weights=weights, dtype=dtype),
                             args.specialise, runs=not args.one_step)
    shown = f"{'+'.join(paths)} (compiled in memory)"
    return _inspect(args, compiled, shown, compiled.ByteSize())


def _inspect(args: argparse.Namespace, model: onnx.ModelProto, shown: str,
             file_bytes: int) -> int:
    from mlpc.runtime.inspect_model import describe, render

    info = describe(model, shown, file_bytes)
    if args.plot:
        from mlpc.runtime.plots import plot_model

        count = plot_model(model, shown, args.plot)
        print(f"wrote {args.plot}: sparsity of {count} weight factors", file=sys.stderr)
    print(json.dumps(info, indent=2) if args.json else render(info))
    return 0


COMMAND = Command("inspect", help="describe a compiled model",
                  description="Layers, widths, non-zeros, sizes and memory map of a model "
                  "compiled by mlpc, or of a program compiled in memory (with the compile "
                  "options below).", options=options, run=run)
