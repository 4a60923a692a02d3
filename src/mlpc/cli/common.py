"""What the commands of `mlpc` share: the command record each command module fills in, the
argument types and option groups, the one test of a model against a program, inputs and
tapes, and the programs the run-like commands (trace, verify) prepare.

The compiler, numpy, onnx and onnxruntime are imported by the functions that use them, so
that `mlpc --help` starts in a blink and `mlpc run MODEL.onnx` never imports onnx or the
compiler (benchmarks/bench_startup.py measures both; tests/test_startup.py checks them).
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from mlpc.compiler.assembler import disassemble
from mlpc.compiler.limits import (
    DENSE_LIMIT,
    DTYPES,
    ENCODINGS,
    MAX_NETWORK_MEMORY,
    MAX_UNROLL,
    WEIGHTS,
)
from mlpc.compiler.machine_config import (
    DEFAULT_MAX_STEPS,
    DEFAULT_TAPE_IN,
    DEFAULT_TAPE_OUT,
    MachineConfig,
)
from mlpc.errors import MlpcError, UsageError

if TYPE_CHECKING:
    from mlpc.compiler.driver import LoadedProgram
    from mlpc.compiler.options import CompileOptions

Subparsers = argparse._SubParsersAction  # type: ignore[type-arg]


@dataclass(frozen=True)
class Command:
    """One `mlpc` command, as its module declares it: the parser's texts, `options` to add
    its arguments, and `run`, which does the work and returns the exit status (errors are
    raised as MlpcErrors and printed by `mlpc.cli.main`)."""

    name: str
    help: str
    description: str
    options: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], int]
    epilog: str | None = None
    raw: bool = False  # the description and epilog are laid out by hand

    def add_to(self, sub: Subparsers) -> None:
        formatter = (argparse.RawDescriptionHelpFormatter if self.raw
                     else argparse.HelpFormatter)
        parser = sub.add_parser(self.name, help=self.help, description=self.description,
                                epilog=self.epilog, formatter_class=formatter)
        self.options(parser)


class Parser(argparse.ArgumentParser):
    """argparse that reports usage errors in one line with exit status 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(f"{self.prog}: {message}")


# ---- argument types ------------------------------------------------------------------------


def int_arg(text: str) -> int:
    try:
        return int(text, 0)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None


def positive(text: str) -> int:
    value = int_arg(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be positive: {text!r}")
    return value


def non_negative(text: str) -> int:
    value = int_arg(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must not be negative: {text!r}")
    return value


def port(text: str, lowest: int = 1) -> int:
    value = int_arg(text)
    if not lowest <= value <= 65535:
        raise argparse.ArgumentTypeError(f"not a port number ({lowest}-65535): {text!r}")
    return value


def port_or_0(text: str) -> int:
    """A port, or 0 for a free one that the server picks when it binds (mlpc web)."""
    return port(text, lowest=0)


def word_range(text: str) -> tuple[int, int]:
    """START-END (inclusive, 0 <= START <= END) as the half-open range [START, END + 1)."""
    start, sep, end = text.partition("-")
    try:
        first, last = int(start), int(end)
    except ValueError:
        first = last = -1
    if not sep or first < 0 or last < first:
        raise argparse.ArgumentTypeError(f"expected START-END with 0 <= START <= END, got "
                                         f"{text!r}")
    return first, last + 1


# ---- option groups and their checks --------------------------------------------------------


def add_machine_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--memory", type=positive, metavar="WORDS",
                   help="memory size in words (default: the program's need; image + 1024 "
                   "for .sq/.dec files)")
    p.add_argument("--word-bits", type=int, choices=(16, 32), default=32,
                   help="word size W (default 32)")
    p.add_argument("--tape-in", type=non_negative, default=DEFAULT_TAPE_IN, metavar="N",
                   help=f"input tape capacity in words (default {DEFAULT_TAPE_IN})")
    p.add_argument("--tape-out", type=non_negative, default=DEFAULT_TAPE_OUT, metavar="N",
                   help=f"output tape capacity in words (default {DEFAULT_TAPE_OUT})")


def check_machine_limits(args: argparse.Namespace) -> None:
    """Refuse machines mlpc cannot build (the options of `add_machine_options`) before
    building or allocating anything."""
    if args.memory is not None and args.memory > MAX_NETWORK_MEMORY:
        raise MlpcError(f"--memory {args.memory} is too large: at most {MAX_NETWORK_MEMORY} "
                        "words (the network's size grows with memory; this is mlpc's limit)")
    if args.tape_in > MAX_NETWORK_MEMORY:
        raise MlpcError(f"--tape-in {args.tape_in} is too large: at most {MAX_NETWORK_MEMORY} "
                        "words (the input tape is part of the network's state)")


def check_unroll(unroll: int) -> None:
    if unroll > MAX_UNROLL:
        raise MlpcError(f"--unroll {unroll} is too large: at most {MAX_UNROLL} steps per Loop "
                        "iteration (the Loop body holds a copy of the network per step)")


def add_network_options(p: argparse.ArgumentParser) -> None:
    """--weights and --dtype. Their defaults are applied by `network_options`, so that
    `mlpc run MODEL.onnx` can tell that they were given."""
    p.add_argument("--weights", choices=WEIGHTS, default=None,
                   help="how the layers are written in ONNX: families (elementwise ops on "
                   "memory-shaped tensors), sparse (gathers of constant indices) or dense "
                   f"(MatMul, memories up to {DENSE_LIMIT} words) (default {WEIGHTS[0]})")
    p.add_argument("--dtype", choices=DTYPES, default=None,
                   help="number type of the network: int64, or float64 (exact below 2^53, "
                   f"--weights families only) (default {DTYPES[0]})")
    p.add_argument("--specialise", action="store_true",
                   help="fold the words the program never writes into the weights (a smaller "
                   "network for this program only; writing such a word is a fault)")
    p.add_argument("--read-only", action="append", type=word_range, default=[],
                   metavar="START-END",
                   help="with --specialise, for SUBLEQ code: the words START..END (inclusive) "
                   "are never written (repeatable; a .tl program knows its own)")
    p.add_argument("--one-step", action="store_true",
                   help="with --specialise: one SUBLEQ step per network iteration, no "
                   "straight-line runs (fewer units per iteration: for large batches)")


def network_options(args: argparse.Namespace) -> tuple[str, str]:
    """(weights, dtype) as given, or their defaults."""
    return args.weights or WEIGHTS[0], args.dtype or DTYPES[0]


def refuse_compile_options(args: argparse.Namespace, what: str) -> None:
    """A compiled model has its own network: --specialise and --read-only are refused."""
    if args.specialise or args.read_only or args.one_step:
        raise UsageError(f"--specialise is a compile option: {what} has its own network")


def check_memory_limit(weights: str, config: MachineConfig) -> None:
    """Refuse a memory larger than the encoding's registry line allows (dense), naming the
    encodings without such a limit."""
    limit = ENCODINGS[weights].memory_limit
    if limit and config.memory > limit:
        unlimited = " or ".join(e.name for e in ENCODINGS.values() if not e.memory_limit)
        raise MlpcError(f"--weights {weights} is for memories up to {limit} words "
                        f"(this one has {config.memory}); use --weights {unlimited}")


def add_stack_option(p: argparse.ArgumentParser) -> None:
    p.add_argument("--stack", type=non_negative, metavar="N",
                   help="stack words for .tl programs with recursion (default: room for "
                   "256 nested calls of the largest recursive frame)")


def compile_options(args: argparse.Namespace) -> CompileOptions:
    """The front end's options: word size, stack, and the words declared read-only."""
    from mlpc.compiler.options import CompileOptions

    if args.read_only and not args.specialise:
        raise UsageError("--read-only declares constant words for --specialise: give both")
    if args.one_step and not args.specialise:
        raise UsageError("--one-step chooses the --specialise network's iteration: give both")
    return CompileOptions(word_bits=args.word_bits, stack=args.stack,
                          read_only=tuple(args.read_only))


def max_steps(args: argparse.Namespace) -> int:
    """--max-steps, or the default budget when it was not given."""
    return DEFAULT_MAX_STEPS if args.max_steps is None else args.max_steps


# ---- programs and models -------------------------------------------------------------------

PROGRAM_KINDS = ("a .tl program, or SUBLEQ images (.sq/.dec) and assembly (.asm), several of "
                 "which are concatenated")
PROGRAM_SUFFIXES = (".tl", ".sq", ".dec", ".asm", ".sasm", ".s")
MODEL_SUFFIX = ".onnx"


def is_model(path: str) -> bool:
    """Whether a file the user names is a compiled model (MODEL.onnx) rather than a program:
    the one test every command makes. A command that takes models only refuses what is
    plainly a program instead (`refuse_program`)."""
    return path.endswith(MODEL_SUFFIX)


def model_among(paths: Sequence[str], command: str) -> str | None:
    """The model when `paths` is one compiled model, None when they are programs; a one-line
    usage error for a model among several files."""
    if len(paths) == 1 and is_model(paths[0]):
        return paths[0]
    if any(is_model(p) for p in paths):
        raise UsageError(f"mlpc {command} takes program files (.tl, .sq/.dec, .asm) or one "
                         "compiled MODEL.onnx on its own")
    return None


def refuse_program(path: str, command: str, does: str) -> None:
    """A command that takes a compiled model only (`does`: what it does with one) refuses a
    program file with the way to compile it."""
    if path.endswith(PROGRAM_SUFFIXES):
        raise UsageError(f"mlpc {command} {does} (MODEL.onnx), not a program: "
                         f"mlpc compile {path} -o MODEL.onnx first")


def model_metadata(path: str) -> dict[str, str]:
    """The metadata of a full model file (one-line errors for a missing or unreadable one,
    or a step model)."""
    from mlpc.runtime.onnx_engine import load_model_file
    from mlpc.runtime.onnx_model import refuse_step_model

    meta = {p.key: p.value for p in load_model_file(path).metadata_props}
    refuse_step_model(meta, path)
    return meta


def program_from_model(path: str, command: str,
                       stack: int | None) -> tuple[LoadedProgram, MachineConfig]:
    """The program a model was compiled from, rebuilt from the source in its metadata, on
    the model's machine; an error when the rebuilt listing is not the model's."""
    from mlpc.compiler.driver import load_program_text, machine_config
    from mlpc.compiler.options import CompileOptions

    meta = model_metadata(path)
    if "listing" not in meta or "memory_words" not in meta:
        raise MlpcError(f"{path}: this ONNX model was not made by mlpc (no program metadata)")
    source, source_path = meta.get("source", ""), meta.get("source_path", "")
    if not source or not source_path.endswith(PROGRAM_SUFFIXES):
        raise MlpcError(f"{path}: the model does not hold its program's source (compiled from "
                        f"several files?): give mlpc {command} the program files")
    word_bits = int(meta["word_bits"])
    program = load_program_text(source, source_path,
                                CompileOptions(word_bits=word_bits, stack=stack))
    image = program.image
    if (image.listing or disassemble(image.words, image.symbol_table())) != meta["listing"]:
        raise MlpcError(f"{path}: its source does not rebuild the model's program (compiled "
                        f"with --stack?): give mlpc {command} the program file and options")
    config = machine_config(image, int(meta["memory_words"]), word_bits,
                            int(meta["tape_in"]), int(meta["tape_out"]))
    return program, config


# ---- inputs and tapes ----------------------------------------------------------------------


def _integers(text: str, what: str) -> list[int]:
    """Comma-separated integers (any base prefix); `what` names the option in the error."""
    words = []
    for part in text.split(","):
        try:
            words.append(int(part.strip(), 0))
        except ValueError:
            raise MlpcError(f"{what}: not an integer: {part.strip()!r}") from None
    return words


def parse_tape(text: str) -> tuple[int, ...]:
    if text.strip() == "":
        return ()
    return tuple(_integers(text, "--tape"))


def parse_input_lists(items: Sequence[str]) -> dict[str, list[int]]:
    """`--input NAME=V` or `NAME=V1,V2,...` options: each name's values, in order."""
    values: dict[str, list[int]] = {}
    for item in items:
        name, sep, text = item.partition("=")
        name = name.strip()
        if not sep or not name:
            raise UsageError(f"--input expects NAME=VALUE, got {item!r}")
        values[name] = _integers(text, f"--input {name}")
    return values


def parse_inputs(items: Sequence[str]) -> tuple[tuple[str, int], ...]:
    """`--input NAME=VALUE` options of a single run (a comma list is a batch: `mlpc run`)."""
    values = parse_input_lists(items)
    for name, words in values.items():
        if len(words) != 1:
            raise UsageError(f"--input {name}: one value expected, got {len(words)} (batches "
                             "of inputs are for mlpc run)")
    return tuple((name, words[0]) for name, words in values.items())


def check_inputs(declared: Sequence[str], given: tuple[tuple[str, int], ...],
                 config: MachineConfig) -> None:
    names = set(declared)
    unknown = [n for n, _ in given if n not in names]
    if unknown:
        listing = ", ".join(declared) if declared else "none"
        raise MlpcError(f"unknown input {unknown[0]!r} (the program's inputs: {listing})")
    missing = [n for n in declared if n not in dict(given)]
    if missing:
        raise MlpcError(f"missing input{'s' if len(missing) > 1 else ''}: "
                        + ", ".join(missing) + " (set with --input NAME=VALUE)")
    for name, value in given:
        if not config.fits(value):
            raise MlpcError(f"input {name} = {value} does not fit in {config.word_bits} bits")


# ---- a program on the machine, as trace and verify take it ---------------------------------


def add_program_run_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("program", nargs="+", metavar="PROG|MODEL.onnx",
                   help=PROGRAM_KINDS + "; or one compiled MODEL.onnx: the program rebuilt "
                   "from the source in its metadata, on the model's machine (memory, word "
                   "size and tapes)")
    p.add_argument("--input", action="append", default=[], metavar="NAME=VALUE",
                   help="set a named program input")
    p.add_argument("--tape", metavar="1,2,3", help="input tape words, comma-separated")
    add_machine_options(p)
    add_stack_option(p)


@dataclass(frozen=True)
class MachineRun:
    """A program ready to run on the machine: its tape, named inputs, and the memory image
    with the inputs stored."""

    program: LoadedProgram
    config: MachineConfig
    tape: tuple[int, ...]
    inputs: tuple[tuple[str, int], ...]
    words: list[int]


def machine_run(args: argparse.Namespace) -> MachineRun:
    """The program of `add_program_run_options`, as `run` would prepare it. A compiled model
    stands for the program rebuilt from its metadata, on the model's machine."""
    from mlpc.compiler.driver import load_program, machine_config
    from mlpc.compiler.options import CompileOptions
    from mlpc.runtime.request import RunRequest, prepared_image

    tape = parse_tape(args.tape or "")
    inputs = parse_inputs(args.input)
    model = model_among(args.program, args.command)
    if model is not None:
        program, config = program_from_model(model, args.command, args.stack)
    else:
        program = load_program(args.program, CompileOptions(word_bits=args.word_bits,
                                                            stack=args.stack))
        config = machine_config(program.image, args.memory, args.word_bits, args.tape_in,
                                args.tape_out)
    check_inputs(program.input_names, inputs, config)
    words = prepared_image(RunRequest(program, config, tape, inputs))
    return MachineRun(program, config, tape, inputs, words)

