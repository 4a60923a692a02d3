"""`mlpc compile`: a program to an ONNX model of a looped ReLU-MLP (and, or instead, one
step of its network as a model of its own)."""

from __future__ import annotations

import argparse
import json
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
    is_model,
    network_options,
    non_negative,
    positive,
)
from mlpc.compiler.limits import DEFAULT_UNROLL, INT64_MAX
from mlpc.compiler.machine_config import DEFAULT_MAX_STEPS
from mlpc.errors import MlpcError, UsageError

if TYPE_CHECKING:
    import onnx


def options(comp: argparse.ArgumentParser) -> None:
    comp.add_argument("program", nargs="+", metavar="PROG", help=PROGRAM_KINDS)
    comp.add_argument("-o", "--output", metavar="OUT.onnx",
                      help="where to write the model")
    comp.add_argument("--step-model", metavar="STEP.onnx",
                      help="also (or only) write one step of the network as its own model: "
                      "state [batch, n_state] in, next_state out, the layout in its metadata")
    comp.add_argument("--max-steps", type=non_negative, default=DEFAULT_MAX_STEPS, metavar="N",
                      help="the model's default step budget (default %(default)s)")
    comp.add_argument("--unroll", type=positive, default=DEFAULT_UNROLL, metavar="K",
                      help="SUBLEQ steps per Loop iteration (default %(default)s)")
    add_network_options(comp)
    add_machine_options(comp)
    add_stack_option(comp)


def run(args: argparse.Namespace) -> int:
    check_machine_limits(args)
    check_unroll(args.unroll)
    from mlpc.compiler.driver import load_program, machine_config
    from mlpc.compiler.encodings import ExportOptions
    from mlpc.compiler.model import compile_model, compile_step_model

    if not args.output and not args.step_model:
        raise UsageError("mlpc compile needs -o OUT.onnx (the model) or --step-model STEP.onnx "
                         "(one step)")
    if any(is_model(p) for p in args.program):
        raise UsageError("mlpc compile takes a program (.tl, .sq/.dec, .asm), not a compiled "
                         "model")
    program = load_program(args.program, compile_options(args))
    image = program.image
    config = machine_config(image, args.memory, args.word_bits, args.tape_in, args.tape_out)
    weights, dtype = network_options(args)
    options = ExportOptions(unroll=args.unroll, weights=weights, dtype=dtype,
                            default_max_steps=min(args.max_steps, INT64_MAX))
    check_memory_limit(weights, config)
    if args.output:
        model = compile_model(image, config, options, args.specialise,  # refusals: MlpcErrors
                              runs=not args.one_step)
        form = ", specialised" if args.specialise else ""
        _write_model(model, args.output, f"memory {config.memory} words, {weights} weights, "
                     f"{dtype}{form}")
    if args.step_model:
        step = compile_step_model(config, options)
        n_state = json.loads({p.key: p.value for p in step.metadata_props}["state_layout"]
                             )["n_state"]
        _write_model(step, args.step_model, f"one step, state of {n_state} values, "
                     f"{weights} weights, {dtype}")
    return 0


def _write_model(model: onnx.ModelProto, path: str, what: str) -> None:
    """Write a model and say so on stderr (size, layers, weights, `what`)."""
    data = model.SerializeToString()
    try:
        with open(path, "wb") as f:
            f.write(data)
    except OSError as exc:
        raise MlpcError(f"{path}: cannot write: {exc.strerror}") from None
    meta = {p.key: p.value for p in model.metadata_props}
    per = ("iteration (a step or a straight-line run)" if "runs" in meta else "step")
    print(f"wrote {path}: {len(data):,} bytes, {meta['relu_layers_per_step']} ReLU layers per "
          f"{per}, {int(meta['nonzero_weights']):,} non-zero weights, {what}", file=sys.stderr)


COMMAND = Command("compile", help="compile a program to an ONNX model",
                  description="Compile a program (.tl, .sq/.dec, .asm) to an ONNX model of a "
                  "looped ReLU-MLP.", options=options, run=run)
