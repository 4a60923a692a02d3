"""The `mlpc` command line (SPEC section 6).

Exit statuses: 0 halted, 1 errors in the program or its inputs, 2 usage errors, 3 trap or
fault, 4 step limit. Messages go to stderr; no traceback reaches the user.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from mlpc import __version__, cache
from mlpc.compiler.assembler import disassemble, read_text
from mlpc.compiler.limits import (
    DEFAULT_UNROLL,
    DENSE_LIMIT,
    DTYPES,
    ENGINE_NAMES,
    INT64_MAX,
    MAX_NETWORK_MEMORY,
    MAX_UNROLL,
    WEIGHTS,
)
from mlpc.compiler.machine_config import (
    DEFAULT_MAX_STEPS,
    DEFAULT_TAPE_IN,
    DEFAULT_TAPE_OUT,
    MachineConfig,
    Status,
)
from mlpc.errors import EXIT_PROGRAM_ERROR, MlpcError, UsageError

# The compiler, numpy, onnx and onnxruntime are imported by the commands that use them, so
# that `mlpc --help` starts in a blink and `mlpc run MODEL.onnx` never imports onnx or the
# compiler (benchmarks/bench_startup.py measures both; tests/test_startup.py checks them).
if TYPE_CHECKING:
    import onnx

    from mlpc.compiler.driver import LoadedProgram
    from mlpc.compiler.options import CompileOptions
    from mlpc.runtime.report import RunReport


class _Parser(argparse.ArgumentParser):
    """argparse that reports usage errors in one line with exit status 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(f"{self.prog}: {message}")


def _int_arg(text: str) -> int:
    try:
        return int(text, 0)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None


def _positive(text: str) -> int:
    value = _int_arg(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be positive: {text!r}")
    return value


def _port(text: str, lowest: int = 1) -> int:
    value = _int_arg(text)
    if not lowest <= value <= 65535:
        raise argparse.ArgumentTypeError(f"not a port number ({lowest}-65535): {text!r}")
    return value


def _port_or_0(text: str) -> int:
    """A port, or 0 for a free one that the server picks when it binds (mlpc web)."""
    return _port(text, lowest=0)


def _non_negative(text: str) -> int:
    value = _int_arg(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must not be negative: {text!r}")
    return value


def _add_machine_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--memory", type=_positive, metavar="WORDS",
                   help="memory size in words (default: the program's need; image + 1024 "
                   "for .sq/.dec files)")
    p.add_argument("--word-bits", type=int, choices=(16, 32), default=32,
                   help="word size W (default 32)")
    p.add_argument("--tape-in", type=_non_negative, default=DEFAULT_TAPE_IN, metavar="N",
                   help=f"input tape capacity in words (default {DEFAULT_TAPE_IN})")
    p.add_argument("--tape-out", type=_non_negative, default=DEFAULT_TAPE_OUT, metavar="N",
                   help=f"output tape capacity in words (default {DEFAULT_TAPE_OUT})")


def _add_network_options(p: argparse.ArgumentParser) -> None:
    """--weights and --dtype. Their defaults are applied by `_network_options`, so that
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
    p.add_argument("--read-only", action="append", type=_word_range, default=[],
                   metavar="START-END",
                   help="with --specialise, for SUBLEQ code: the words START..END (inclusive) "
                   "are never written (repeatable; a .tl program knows its own)")


def _word_range(text: str) -> tuple[int, int]:
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


def _compile_options(args: argparse.Namespace) -> CompileOptions:
    """The front end's options: word size, stack, and the words declared read-only."""
    from mlpc.compiler.options import CompileOptions

    if args.read_only and not args.specialise:
        raise UsageError("--read-only declares constant words for --specialise: give both")
    return CompileOptions(word_bits=args.word_bits, stack=args.stack,
                          read_only=tuple(args.read_only))


def _refuse_compile_options(args: argparse.Namespace, what: str) -> None:
    """A compiled model has its own network: --specialise and --read-only are refused."""
    if args.specialise or args.read_only:
        raise UsageError(f"--specialise is a compile option: {what} has its own network")


def _network_options(args: argparse.Namespace) -> tuple[str, str]:
    """(weights, dtype) as given, or their defaults."""
    return args.weights or WEIGHTS[0], args.dtype or DTYPES[0]


def _add_stack_option(p: argparse.ArgumentParser) -> None:
    p.add_argument("--stack", type=_non_negative, metavar="N",
                   help="stack words for .tl programs with recursion (default: room for "
                   "256 nested calls of the largest recursive frame)")


_RUN_EPILOG = """\
A batch (--input lists or --batch) runs as one onnxruntime batch on the onnx engine and item
by item on the others. Text output heads each item with `[i] NAME=VALUE ...`; with --json
each item prints one object (as a single run does) on its own line.

exit status: 0 halted, 1 errors in the program, its inputs or files, 2 usage errors, 3 trap
or fault, 4 the step budget ran out. A batch exits with the largest status of its items
(so 4 if any item ran out of steps, else 3 if any trapped or faulted, else 0)."""


PROGRAM_KINDS = ("a .tl program, or SUBLEQ images (.sq/.dec) and assembly (.asm), several of "
                 "which are concatenated")
PROGRAM_SUFFIXES = (".tl", ".sq", ".dec", ".asm", ".sasm", ".s")


def is_model_file(path: str) -> bool:
    return path.endswith(".onnx")


def _no_model(paths: Sequence[str], command: str) -> None:
    """A one-line usage error when a command that takes programs is handed a model among
    several files."""
    if any(is_model_file(p) for p in paths):
        raise UsageError(f"mlpc {command} takes program files (.tl, .sq/.dec, .asm) or one "
                         "compiled MODEL.onnx on its own")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="mlpc", description="Compile programs into looped ReLU-MLPs.")
    parser.add_argument("--version", action="version", version=f"mlpc {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True

    run = sub.add_parser("run", help="run a program or a compiled model",
                         formatter_class=argparse.RawDescriptionHelpFormatter,
                         description="Run a program (compiled first) or a compiled model, "
                         "once or as a batch.", epilog=_RUN_EPILOG)
    run.add_argument("program", nargs="+", metavar="PROG",
                     help="a .tl program, SUBLEQ images (.sq/.dec) or assembly (.asm; several "
                     ".sq/.dec/.asm are concatenated), or one compiled MODEL.onnx")
    run.add_argument("--engine", choices=ENGINE_NAMES, default="onnx",
                     help="executor (default: %(default)s)")
    run.add_argument("--input", action="append", default=[], metavar="NAME=VALUE",
                     help="set a named program input; NAME=V1,V2,... runs a batch (lists of "
                     "equal length; a single value is used for every item)")
    run.add_argument("--batch", metavar="FILE.jsonl",
                     help="run a batch: one JSON object per line, the named inputs and an "
                     "optional \"tape\" (a list of words or a string); - reads stdin")
    tape = run.add_mutually_exclusive_group()
    tape.add_argument("--tape", metavar="1,2,3",
                      help="input tape words, comma-separated (every item's, in a batch)")
    tape.add_argument("--stdin", action="store_true",
                      help="read the input tape from standard input (one word per character)")
    run.add_argument("--max-steps", type=_non_negative, default=None, metavar="N",
                     help=f"step budget (default {DEFAULT_MAX_STEPS:,})")
    run.add_argument("--words", action="store_true", help="print output words as integers")
    run.add_argument("--json", action="store_true",
                     help="print one JSON object (in a batch, one per line)")
    run.add_argument("--quiet", action="store_true", help="no progress display")
    run.add_argument("--no-cache", action="store_true",
                     help="compile afresh: neither read nor write mlpc's cache of compiled "
                     "models ($XDG_CACHE_HOME/mlpc, else ~/.cache/mlpc)")
    _add_machine_options(run)
    _add_stack_option(run)
    _add_network_options(run)

    comp = sub.add_parser("compile", help="compile a program to an ONNX model",
                          description="Compile a program (.tl, .sq/.dec, .asm) to an ONNX "
                          "model of a looped ReLU-MLP.")
    comp.add_argument("program", nargs="+", metavar="PROG", help=PROGRAM_KINDS)
    comp.add_argument("-o", "--output", metavar="OUT.onnx",
                      help="where to write the model")
    comp.add_argument("--step-model", metavar="STEP.onnx",
                      help="also (or only) write one step of the network as its own model: "
                      "state [batch, n_state] in, next_state out, the layout in its metadata")
    comp.add_argument("--max-steps", type=_non_negative, default=DEFAULT_MAX_STEPS, metavar="N",
                      help="the model's default step budget (default %(default)s)")
    comp.add_argument("--unroll", type=_positive, default=DEFAULT_UNROLL, metavar="K",
                      help="SUBLEQ steps per Loop iteration (default %(default)s)")
    _add_network_options(comp)
    _add_machine_options(comp)
    _add_stack_option(comp)

    insp = sub.add_parser("inspect", help="describe a compiled model",
                          description="Layers, widths, non-zeros, sizes and memory map of a "
                          "model compiled by mlpc, or of a program compiled in memory (with "
                          "the compile options below).")
    insp.add_argument("model", nargs="+", metavar="MODEL.onnx|PROG",
                      help="a compiled MODEL.onnx, or a program to compile in memory: "
                      + PROGRAM_KINDS)
    insp.add_argument("--json", action="store_true", help="print one JSON object")
    insp.add_argument("--unroll", type=_positive, default=DEFAULT_UNROLL, metavar="K",
                      help="for a program: SUBLEQ steps per Loop iteration (default "
                      "%(default)s)")
    _add_network_options(insp)
    _add_machine_options(insp)
    _add_stack_option(insp)

    asm = sub.add_parser("asm", help="print the SUBLEQ listing of a program",
                         description="Print the SUBLEQ listing of a program, or the one a "
                         "compiled model holds in its metadata.")
    asm.add_argument("program", nargs="+", metavar="PROG|MODEL.onnx",
                     help=PROGRAM_KINDS + "; or a compiled MODEL.onnx (its listing)")
    asm.add_argument("--word-bits", type=int, choices=(16, 32), default=32,
                     help="word size W (default 32)")
    _add_stack_option(asm)
    _add_inspection_commands(sub)
    _add_web_command(sub)
    _add_audit_command(sub)
    return parser


def parse_tape(text: str) -> tuple[int, ...]:
    if text.strip() == "":
        return ()
    words = []
    for part in text.split(","):
        try:
            words.append(int(part.strip(), 0))
        except ValueError:
            raise MlpcError(f"--tape: not an integer: {part.strip()!r}") from None
    return tuple(words)


def parse_input_lists(items: Sequence[str]) -> dict[str, list[int]]:
    """`--input NAME=V` or `NAME=V1,V2,...` options: each name's values, in order."""
    values: dict[str, list[int]] = {}
    for item in items:
        name, sep, text = item.partition("=")
        name = name.strip()
        if not sep or not name:
            raise UsageError(f"--input expects NAME=VALUE, got {item!r}")
        words = []
        for part in text.split(","):
            try:
                words.append(int(part.strip(), 0))
            except ValueError:
                raise MlpcError(f"--input {name}: not an integer: {part.strip()!r}") from None
        values[name] = words
    return values


def parse_inputs(items: Sequence[str]) -> tuple[tuple[str, int], ...]:
    """`--input NAME=VALUE` options of a single run (a comma list is a batch: `mlpc run`)."""
    values = parse_input_lists(items)
    for name, words in values.items():
        if len(words) != 1:
            raise UsageError(f"--input {name}: one value expected, got {len(words)} (batches "
                             "of inputs are for mlpc run)")
    return tuple((name, words[0]) for name, words in values.items())


@dataclass(frozen=True)
class BatchItem:
    """One run of a batch: where it came from (for messages), its named inputs and tape."""

    label: str
    inputs: tuple[tuple[str, int], ...]
    tape: tuple[int, ...]


def batch_items(args: argparse.Namespace, tape: tuple[int, ...]) -> list[BatchItem] | None:
    """The items of a batch given by `--input` lists or `--batch FILE`, or None for a single
    run. A single `--input` value (and the `--tape`) is every item's."""
    lists = parse_input_lists(args.input)
    if args.batch is None:
        sizes = {name: len(words) for name, words in lists.items() if len(words) != 1}
        if not sizes:
            return None
        (first, size), *rest = sizes.items()
        for name, other in rest:
            if other != size:
                raise UsageError(f"--input lists of different lengths: {first} has {size} "
                                 f"values, {name} has {other} (give equal lengths, or one "
                                 "value for every item)")
        return [BatchItem(f"item {i + 1}",
                          tuple((n, w[i] if len(w) > 1 else w[0]) for n, w in lists.items()),
                          tape)
                for i in range(size)]
    if any(len(words) != 1 for words in lists.values()):
        raise UsageError("--batch and --input lists cannot be combined (with --batch, "
                         "--input NAME=VALUE sets NAME for the items that leave it out)")
    return read_batch_file(args.batch, {n: w[0] for n, w in lists.items()}, tape)


def read_batch_file(path: str, defaults: dict[str, int],
                    tape: tuple[int, ...]) -> list[BatchItem]:
    """A JSON Lines batch: one object per line, its keys the named inputs (integers) and an
    optional "tape" (a list of integers, or a string: one word per character); blank lines
    are skipped. `defaults` and `tape` fill in what a line leaves out."""
    if path == "-":
        try:
            text = sys.stdin.buffer.read().decode("utf-8")
        except UnicodeDecodeError:
            raise MlpcError(f"{path}: not valid UTF-8 text") from None
    else:
        text = read_text(path)  # one-line errors for missing, unreadable or non-UTF-8 files
    items = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        where = f"{path}:{number}"
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            raise MlpcError(f"{where}: not valid JSON ({exc.msg})") from None
        if not isinstance(obj, dict):
            raise MlpcError(f"{where}: expected a JSON object of inputs and tape, such as "
                            '{"a": 1071, "b": 462, "tape": [1, 2]}')
        item_tape = tape
        if "tape" in obj:
            item_tape = _json_tape(obj.pop("tape"), where)
        values = dict(defaults)
        for name, value in obj.items():
            if isinstance(value, bool) or not isinstance(value, int):
                raise MlpcError(f"{where}: input {name}: not an integer: {json.dumps(value)}")
            values[name] = value
        items.append(BatchItem(where, tuple(values.items()), item_tape))
    if not items:
        raise MlpcError(f"{path}: no batch items (one JSON object per line)")
    return items


def _json_tape(value: object, where: str) -> tuple[int, ...]:
    if isinstance(value, str):
        return tuple(ord(ch) for ch in value)
    if isinstance(value, list) and all(isinstance(w, int) and not isinstance(w, bool)
                                       for w in value):
        return tuple(value)
    raise MlpcError(f"{where}: \"tape\" must be a list of integers or a string, got "
                    f"{json.dumps(value)}")


def _read_stdin_tape() -> tuple[int, ...]:
    data = sys.stdin.buffer.read()
    try:
        return tuple(ord(ch) for ch in data.decode("utf-8"))
    except UnicodeDecodeError:
        raise MlpcError("standard input is not valid UTF-8 text") from None


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


def cmd_run(args: argparse.Namespace) -> int:
    if args.batch == "-" and args.stdin:
        raise UsageError("--batch - and --stdin both read standard input: give one of them")
    tape = _read_stdin_tape() if args.stdin else parse_tape(args.tape or "")
    items = batch_items(args, tape)
    single = items is None
    if items is None:
        items = [BatchItem("", parse_inputs(args.input), tape)]
    if len(args.program) == 1 and args.program[0].endswith(".onnx"):
        return _run_model_file(args, items, single)
    if args.engine == "onnx":
        return _run_program_on_onnx(args, items, single)
    from mlpc.compiler.driver import load_program, machine_config
    from mlpc.runtime.engines import get_engine
    from mlpc.runtime.request import RunRequest

    program = load_program(args.program, _compile_options(args))
    if args.engine == "source":
        config = MachineConfig(memory=3, word_bits=args.word_bits, tape_in=args.tape_in,
                               tape_out=args.tape_out)
    else:
        config = machine_config(program.image, args.memory, args.word_bits, args.tape_in,
                                args.tape_out)
    for item in items:
        _check_item(item, program.input_names, config)
    _, dtype = _network_options(args)
    engine = get_engine(args.engine)
    reports = [engine(RunRequest(program, config, item.tape, item.inputs, _max_steps(args),
                                 show_progress=not args.quiet,
                                 budget_given=args.max_steps is not None, dtype=dtype,
                                 specialise=args.specialise))
               for item in items]
    return _print_reports(reports, items, single, args)


def _run_program_on_onnx(args: argparse.Namespace, items: list[BatchItem],
                         single: bool) -> int:
    """Compile the program (or take its model from the cache) and run the items as one
    onnxruntime batch. A cached model runs exactly as a freshly compiled one: both are
    loaded from their bytes and checked against their own metadata."""
    from mlpc.runtime.onnx_model import OnnxModel, run_model_batch

    store = cache.ModelCache.default()
    key = store.key(args.program, _model_key_options(args)) if store else None
    data = store.load(key) if store and key else None
    if data is None:
        data = _compile_for_run(args, items)
        if store and key:
            store.store(key, data)
    model = OnnxModel(data)
    for item in items:
        _check_item(item, model.inputs, MachineConfig(memory=3, word_bits=model.word_bits))
    reports = run_model_batch(model, [(item.inputs, item.tape) for item in items],
                              _max_steps(args), show_progress=not args.quiet,
                              show_total=args.max_steps is not None)
    return _print_reports(reports, items, single, args)


def _model_key_options(args: argparse.Namespace) -> dict[str, object]:
    """Every option that shapes the model `mlpc run` compiles (the cache key's part)."""
    weights, dtype = _network_options(args)
    return {"memory": args.memory, "word_bits": args.word_bits, "tape_in": args.tape_in,
            "tape_out": args.tape_out, "stack": args.stack, "weights": weights,
            "dtype": dtype, "specialise": args.specialise,
            "read_only": sorted(args.read_only)}


def _compile_for_run(args: argparse.Namespace, items: list[BatchItem]) -> bytes:
    """The model `mlpc run PROG` runs, as bytes (its inputs checked first, as without a
    cache: an input the program lacks is reported before compiling)."""
    from mlpc.compiler.driver import load_program, machine_config
    from mlpc.compiler.export_onnx import ExportOptions
    from mlpc.compiler.model import compile_model

    program = load_program(args.program, _compile_options(args))
    config = machine_config(program.image, args.memory, args.word_bits, args.tape_in,
                            args.tape_out)
    for item in items:
        _check_item(item, program.input_names, config)
    weights, dtype = _network_options(args)
    check_dense(weights, config)
    model = compile_model(program.image, config, ExportOptions(weights=weights, dtype=dtype),
                          args.specialise)
    return model.SerializeToString()


def _check_item(item: BatchItem, declared: Sequence[str], config: MachineConfig) -> None:
    try:
        check_inputs(declared, item.inputs, config)
    except MlpcError as err:
        if not item.label:
            raise
        raise type(err)(f"{item.label}: {err}") from None


def _print_reports(reports: Sequence[RunReport], items: Sequence[BatchItem], single: bool,
                   args: argparse.Namespace) -> int:
    """Print a run's report, or each item's of a batch; the exit status (a batch's is the
    largest of its items')."""
    if single:
        print_report(reports[0], args.json, args.words)
        return reports[0].exit_status
    for number, (report, item) in enumerate(zip(reports, items, strict=True), 1):
        if not args.json:
            print(f"[{number}] {_describe_item(item)}".rstrip())
        print_report(report, args.json, args.words, batch=True, item=f"[{number}] ")
    return max(report.exit_status for report in reports)


def _describe_item(item: BatchItem) -> str:
    parts = [f"{name}={value}" for name, value in item.inputs]
    if item.tape:
        shown = ",".join(str(w) for w in item.tape[:8])
        parts.append(f"tape={shown}{',...' if len(item.tape) > 8 else ''}")
    return " ".join(parts)


def _run_model_file(args: argparse.Namespace, items: list[BatchItem], single: bool) -> int:
    if args.engine != "onnx":
        raise UsageError(f"a compiled model runs on the onnx engine, not {args.engine!r}")
    if args.weights is not None or args.dtype is not None:
        raise UsageError("--weights and --dtype are compile options: a compiled model has its "
                         "own")
    _refuse_compile_options(args, "a compiled model")
    from mlpc.runtime.onnx_model import OnnxModel, run_model_batch

    model = OnnxModel(args.program[0])
    for item in items:
        _check_item(item, model.inputs, MachineConfig(memory=3, word_bits=model.word_bits))
    reports = run_model_batch(model, [(item.inputs, item.tape) for item in items],
                              _max_steps(args), show_progress=not args.quiet,
                              show_total=args.max_steps is not None)
    return _print_reports(reports, items, single, args)


def cmd_compile(args: argparse.Namespace) -> int:
    from mlpc.compiler.driver import load_program, machine_config
    from mlpc.compiler.export_onnx import ExportOptions
    from mlpc.compiler.model import compile_model, compile_step_model

    if not args.output and not args.step_model:
        raise UsageError("mlpc compile needs -o OUT.onnx (the model) or --step-model STEP.onnx "
                         "(one step)")
    if any(is_model_file(p) for p in args.program):
        raise UsageError("mlpc compile takes a program (.tl, .sq/.dec, .asm), not a compiled "
                         "model")
    program = load_program(args.program, _compile_options(args))
    image = program.image
    config = machine_config(image, args.memory, args.word_bits, args.tape_in, args.tape_out)
    weights, dtype = _network_options(args)
    options = ExportOptions(unroll=args.unroll, weights=weights, dtype=dtype,
                            default_max_steps=min(args.max_steps, INT64_MAX))
    check_dense(weights, config)
    if args.output:
        model = compile_model(image, config, options, args.specialise)  # refusals: MlpcErrors
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
    print(f"wrote {path}: {len(data):,} bytes, {meta['relu_layers_per_step']} ReLU layers per "
          f"step, {int(meta['nonzero_weights']):,} non-zero weights, {what}", file=sys.stderr)


def check_dense(weights: str, config: MachineConfig) -> None:
    if weights == "dense" and config.memory > DENSE_LIMIT:
        raise MlpcError(f"--weights dense is for memories up to {DENSE_LIMIT} words "
                        f"(this one has {config.memory}); use --weights families or sparse")


def _max_steps(args: argparse.Namespace) -> int:
    """--max-steps, or the default budget when it was not given."""
    return DEFAULT_MAX_STEPS if args.max_steps is None else args.max_steps


def cmd_inspect(args: argparse.Namespace) -> int:
    paths = args.model
    if len(paths) == 1 and not paths[0].endswith(PROGRAM_SUFFIXES):
        for option in ("weights", "dtype", "memory", "stack"):
            if getattr(args, option) is not None:
                raise UsageError(f"--{option} is a compile option: a compiled model has its own")
        _refuse_compile_options(args, "a compiled model")
        return _inspect(args, paths[0], paths[0])
    _no_model(paths, "inspect")
    from mlpc.compiler.driver import load_program, machine_config
    from mlpc.compiler.export_onnx import ExportOptions
    from mlpc.compiler.model import compile_model

    program = load_program(paths, _compile_options(args))
    config = machine_config(program.image, args.memory, args.word_bits, args.tape_in,
                            args.tape_out)
    weights, dtype = _network_options(args)
    check_dense(weights, config)
    model = compile_model(program.image, config,
                          ExportOptions(unroll=args.unroll, weights=weights, dtype=dtype),
                          args.specialise)
    with tempfile.TemporaryDirectory(prefix="mlpc-inspect-") as tmp:
        path = f"{tmp}/model.onnx"
        with open(path, "wb") as f:
            f.write(model.SerializeToString())
        return _inspect(args, path, f"{'+'.join(paths)} (compiled in memory)")


def _inspect(args: argparse.Namespace, path: str, shown: str) -> int:
    from mlpc.runtime.inspect_model import describe, render

    info = describe(path)
    info["file"] = shown
    if getattr(args, "plot", None):
        from mlpc.runtime.plots import plot_model

        count = plot_model(path, args.plot)
        print(f"wrote {args.plot}: sparsity of {count} weight factors", file=sys.stderr)
    print(json.dumps(info, indent=2) if args.json else render(info))
    return 0


def print_report(report: RunReport, as_json: bool, words: bool, batch: bool = False,
                 item: str = "") -> None:
    """The report as `mlpc run` prints it: the output text (or words), then the named
    outputs on lines of their own, then (on stderr) how the run ended unless it halted. In a
    batch (`batch`), every item's text ends with a newline and `item` heads the message."""
    if as_json:
        print(report.to_json())
        return
    text = report.text()
    if words:
        if report.tape:
            print(" ".join(str(w) for w in report.tape))
    else:
        sys.stdout.write(text)
        # the named outputs (and the next item) start on a line of their own
        if text and not text.endswith("\n") and (report.outputs or batch):
            sys.stdout.write("\n")
    for name, value in report.outputs:
        print(f"{name} = {value}")
    sys.stdout.flush()
    if report.status != "halted":
        detail = f": {report.detail}" if report.detail else ""
        steps = "" if report.status == "step-limit" else f" (after {report.steps} steps)"
        # on a terminal, do not let the message run on from unfinished output text
        unfinished = (not words and text and not text.endswith("\n") and not report.outputs
                      and not batch)
        newline = "\n" if unfinished and sys.stdout.isatty() else ""
        print(f"{newline}mlpc: {item}{report.status}{detail}{steps}", file=sys.stderr)


def _model_metadata(path: str) -> dict[str, str]:
    """The metadata of a full model file (one-line errors for a missing or unreadable one,
    or a step model)."""
    from mlpc.runtime.onnx_engine import load_model_file
    from mlpc.runtime.onnx_model import refuse_step_model

    meta = {p.key: p.value for p in load_model_file(path).metadata_props}
    refuse_step_model(meta, path)
    return meta


def _program_from_model(path: str, command: str, stack: int | None,
                        workdir: str) -> tuple[LoadedProgram, MachineConfig]:
    """The program a model was compiled from, rebuilt from the source in its metadata (in
    `workdir`), on the model's machine; an error when the rebuilt listing is not the
    model's."""
    import os

    from mlpc.compiler.driver import load_program, machine_config
    from mlpc.compiler.options import CompileOptions

    meta = _model_metadata(path)
    if "listing" not in meta or "memory_words" not in meta:
        raise MlpcError(f"{path}: this ONNX model was not made by mlpc (no program metadata)")
    source, source_path = meta.get("source", ""), meta.get("source_path", "")
    if not source or not source_path.endswith(PROGRAM_SUFFIXES):
        raise MlpcError(f"{path}: the model does not hold its program's source (compiled from "
                        f"several files?): give mlpc {command} the program files")
    copy = os.path.join(workdir, os.path.basename(source_path))
    with open(copy, "w", encoding="utf-8") as f:
        f.write(source)
    word_bits = int(meta["word_bits"])
    program = load_program([copy], CompileOptions(word_bits=word_bits, stack=stack))
    # the image is the model's: named after the model's source file, not the copy
    image = dataclasses.replace(program.image, source_path=source_path)
    program.__dict__["image"] = image  # (LoadedProgram.image is a cached_property)
    if (image.listing or disassemble(image.words, image.symbol_table())) != meta["listing"]:
        raise MlpcError(f"{path}: its source does not rebuild the model's program (compiled "
                        f"with --stack?): give mlpc {command} the program file and options")
    config = machine_config(image, int(meta["memory_words"]), word_bits,
                            int(meta["tape_in"]), int(meta["tape_out"]))
    return program, config


def cmd_asm(args: argparse.Namespace) -> int:
    from mlpc.compiler.driver import load_program
    from mlpc.compiler.options import CompileOptions

    if len(args.program) == 1 and is_model_file(args.program[0]):
        meta = _model_metadata(args.program[0])
        if "listing" not in meta:
            raise MlpcError(f"{args.program[0]}: this ONNX model holds no SUBLEQ listing (not "
                            "made by mlpc)")
        print(meta["listing"])
        return 0
    _no_model(args.program, "asm")
    options = CompileOptions(word_bits=args.word_bits, stack=args.stack)
    image = load_program(args.program, options).image
    print(image.listing or disassemble(image.words, image.symbol_table()))
    return 0


# ---- inspection: trace, verify, view (and the --plot options) ------------------------------

TRACE_WINDOW = 1000
VERIFY_DEFAULT_STEPS = 2000
_TRACE_EPILOG = """\
Each line: step number, pc, the instruction a b c, the source line and macro instruction the
words came from (compiled .tl programs), and what the step did: changed cells by name
(`a: 48 -> 30`, unnamed cells as M[addr]), `in V -> cell`, `out W`, `jump C`, `halt`. A line
`; N: text` shows the source line whenever it changes; a last `;` line sums up the run.

Steps before --from run at full speed without printing. --steps defaults to --to, or to
1,000 steps after --from.

exit status: 0 the trace was printed (whatever the program did), 1 errors in the program,
its inputs or files (or --plot without matplotlib), 2 usage errors."""
_VERIFY_EPILOG = """\
The engines: reference (the SUBLEQ interpreter), numpy (the compiled layers), onnx
(onnxruntime, one step per call), and for .tl programs source (the AST interpreter, compared
on the final outputs, tape, status and detail against a full-speed reference run, since a
source step is not a SUBLEQ step). After every step each machine-level engine's memory, pc,
fault, step count and output tape are compared with the first engine's; the first
divergence is reported with the step, the instruction executed and each differing cell by
name. The network engines take about 1-3 ms per step: --steps bounds the lock-step part.

exit status: 0 all engines agree, 1 a divergence (or errors in the program, its inputs or
files), 2 usage errors."""


def _add_program_run_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("program", nargs="+", metavar="PROG|MODEL.onnx",
                   help=PROGRAM_KINDS + "; or one compiled MODEL.onnx: the program rebuilt "
                   "from the source in its metadata, on the model's machine (memory, word "
                   "size and tapes)")
    p.add_argument("--input", action="append", default=[], metavar="NAME=VALUE",
                   help="set a named program input")
    p.add_argument("--tape", metavar="1,2,3", help="input tape words, comma-separated")
    _add_machine_options(p)
    _add_stack_option(p)


def _add_inspection_commands(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    raw = argparse.RawDescriptionHelpFormatter
    tr = sub.add_parser("trace", help="show a run step by step", formatter_class=raw,
                        description="Run a program on the SUBLEQ reference interpreter and "
                        "print every step.", epilog=_TRACE_EPILOG)
    _add_program_run_options(tr)
    tr.add_argument("--steps", type=_non_negative, metavar="N",
                    help="stop after N steps in total")
    tr.add_argument("--from", dest="first", type=_positive, default=1, metavar="A",
                    help="first step to show (default 1)")
    tr.add_argument("--to", dest="last", type=_positive, metavar="B",
                    help="last step to show")
    tr.add_argument("--json", action="store_true", help="print one JSON object")
    tr.add_argument("--plot", metavar="OUT.png",
                    help="plot memory cells over the shown steps (needs matplotlib)")
    tr.add_argument("--cells", metavar="NAME,...",
                    help="cells to plot, by name or address (default: the program's named "
                    "variables that change, else the most-changed cells)")

    ver = sub.add_parser("verify", help="run the engines in lock-step", formatter_class=raw,
                         description="Run the executors side by side, step by step, and "
                         "report the first divergence or that they agree.",
                         epilog=_VERIFY_EPILOG)
    _add_program_run_options(ver)
    ver.add_argument("--steps", type=_positive, default=VERIFY_DEFAULT_STEPS, metavar="N",
                     help="steps to compare in lock-step (default %(default)s)")
    ver.add_argument("--engines", default=None, metavar="E1,E2,...",
                     help="engines to compare, the first is the baseline (default "
                     "reference,numpy,onnx, plus source for .tl programs)")
    ver.add_argument("--max-steps", type=_non_negative, default=None, metavar="N",
                     help="step budget of the full runs compared with the source engine "
                     f"(default {DEFAULT_MAX_STEPS:,})")
    ver.add_argument("--quiet", action="store_true", help="no progress display")

    view = sub.add_parser("view", help="open a model in Netron",
                          description="Serve a model to Netron (pip install 'mlpc[view]') and "
                          "open it in a web browser; Ctrl-C stops the server.",
                          epilog="exit status: 0 after Ctrl-C, 1 when the model cannot be "
                          "read, Netron is not installed or the port is taken, 2 usage errors.")
    view.add_argument("model", metavar="MODEL.onnx",
                      help="a compiled model (compile a program first: mlpc compile)")
    view.add_argument("--port", type=_port, metavar="P",
                      help="port to serve on (default: 8080 or a free one)")
    view.add_argument("--no-browser", action="store_true",
                      help="only serve; do not open a browser")

    insp = sub.choices["inspect"]
    insp.add_argument("--plot", metavar="OUT.png",
                      help="draw the sparsity pattern of each weight factor (needs matplotlib)")


def _machine_run(args: argparse.Namespace, workdir: str
                 ) -> tuple[LoadedProgram, MachineConfig, tuple[int, ...],
                            tuple[tuple[str, int], ...], list[int]]:
    """The program, its machine, tape, named inputs and the memory image with the inputs
    stored, as `run` would prepare them. A compiled model stands for the program rebuilt
    from its metadata, on the model's machine (`workdir` holds the source)."""
    from mlpc.compiler.driver import load_program, machine_config
    from mlpc.compiler.options import CompileOptions
    from mlpc.runtime.request import RunRequest, prepared_image

    tape = parse_tape(args.tape or "")
    inputs = parse_inputs(args.input)
    if len(args.program) == 1 and is_model_file(args.program[0]):
        program, config = _program_from_model(args.program[0], args.command, args.stack,
                                              workdir)
    else:
        _no_model(args.program, args.command)
        program = load_program(args.program, CompileOptions(word_bits=args.word_bits,
                                                            stack=args.stack))
        config = machine_config(program.image, args.memory, args.word_bits, args.tape_in,
                                args.tape_out)
    check_inputs(program.input_names, inputs, config)
    words = prepared_image(RunRequest(program, config, tape, inputs))
    return program, config, tape, inputs, words


def cmd_trace(args: argparse.Namespace) -> int:
    from mlpc.runtime.trace import trace_run

    if args.last is not None and args.last < args.first:
        raise UsageError(f"--to {args.last} is before --from {args.first}")
    if args.cells and not args.plot:
        raise UsageError("--cells chooses what --plot draws: give --plot OUT.png too")
    if args.plot:
        from mlpc.runtime.plots import require_matplotlib

        require_matplotlib()  # before a long trace, not after it
    with tempfile.TemporaryDirectory(prefix="mlpc-trace-") as workdir:
        program, config, tape, _, words = _machine_run(args, workdir)
        steps = args.steps
        if steps is None:
            steps = args.last if args.last is not None else args.first - 1 + TRACE_WINDOW
        trace = trace_run(program.image, config, words, tape, steps, args.first, args.last)
    print(trace.to_json() if args.json else trace.render())
    if (args.steps is None and args.last is None and trace.state is not None
            and trace.state.status == Status.RUNNING):
        sys.stdout.flush()
        print(f"mlpc trace: stopped at the default window of {steps:,} steps (the program "
              "is still running); --steps N or --from A --to B shows more", file=sys.stderr)
    if args.plot:
        from mlpc.runtime.plots import plot_trace

        wanted = [c.strip() for c in args.cells.split(",") if c.strip()] if args.cells else []
        cells = plot_trace(trace, args.plot, wanted)
        print(f"wrote {args.plot}: {len(cells)} memory cells over {len(trace.steps)} steps",
              file=sys.stderr)
    return 0


def cmd_verify(args: argparse.Namespace) -> int:
    from mlpc.errors import EXIT_OK
    from mlpc.runtime.engines import get_engine
    from mlpc.runtime.request import RunRequest
    from mlpc.runtime.verify import MACHINE_ENGINES, compare_with_source, lockstep

    with tempfile.TemporaryDirectory(prefix="mlpc-verify-") as workdir:
        program, config, tape, inputs, words = _machine_run(args, workdir)
        _ = program.checked, program.image  # read the source while its copy exists
    is_tl = program.checked is not None
    if args.engines is None:
        engines = [*MACHINE_ENGINES, *(["source"] if is_tl else [])]
    else:
        engines = [e.strip() for e in args.engines.split(",") if e.strip()]
        known = (*MACHINE_ENGINES, "source")
        for e in engines:
            if e not in known:
                raise UsageError(f"--engines: unknown engine {e!r} (choose from "
                                 f"{', '.join(known)})")
        if len(set(engines)) != len(engines):
            raise UsageError("--engines: an engine is named twice")
    if "source" in engines and not is_tl:
        raise UsageError("--engines: the source engine runs .tl programs only")
    machine = [e for e in engines if e != "source"]
    if len(machine) + ("source" in engines) < 2 or not machine:
        raise UsageError("--engines: name at least two engines, one of them machine-level")
    result = lockstep(program.image, config, words, dict(inputs), tape, machine, args.steps,
                      show_progress=not args.quiet)
    if "source" in engines and result.divergence is None:
        request = RunRequest(program, config, tape, inputs, _max_steps(args),
                             show_progress=not args.quiet,
                             budget_given=args.max_steps is not None)
        compare_with_source(result, get_engine("reference")(request),
                            get_engine("source")(request))
    print(result.render(args.steps))
    return EXIT_OK if result.agree else EXIT_PROGRAM_ERROR


def cmd_view(args: argparse.Namespace) -> int:
    from mlpc.runtime.view import view

    if args.model.endswith(PROGRAM_SUFFIXES):
        raise UsageError(f"mlpc view opens a compiled model (MODEL.onnx), not a program: "
                         f"mlpc compile {args.model} -o MODEL.onnx first")

    return view(args.model, args.port, browse=not args.no_browser)


def _add_web_command(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    web = sub.add_parser(
        "web", help="a web page that runs a model in the browser",
        description="Write a self-contained static site that runs a compiled model in the "
        "browser (onnxruntime-web) and shows the network's state step by step: source, "
        "listing, memory, outputs. onnxruntime-web is fetched once with npm pack into "
        "~/.cache/mlpc (or $XDG_CACHE_HOME/mlpc), or taken from --onnxruntime-web DIR.",
        epilog="exit status: 0 the site was written (with --serve: after Ctrl-C or SIGTERM, "
        "which remove a temporary site), 1 when a "
        "model cannot be read or was not made by mlpc, onnxruntime-web cannot be had, the "
        "folder cannot be written or the port is taken, 2 usage errors.")
    web.add_argument("model", nargs="?", metavar="MODEL.onnx",
                     help="a compiled model (mlpc compile PROG -o MODEL.onnx)")
    web.add_argument("--examples", nargs="?", const="examples", metavar="DIR",
                     help="instead of a model: a gallery of the example programs in DIR "
                     "(default examples/), each compiled with the default options")
    web.add_argument("-o", "--output", metavar="DIR",
                     help="the folder to write the site into (created if needed)")
    web.add_argument("--serve", action="store_true",
                     help="serve the site on localhost until Ctrl-C or SIGTERM (without -o: "
                     "from a temporary folder)")
    web.add_argument("--port", type=_port_or_0, metavar="P",
                     help="port for --serve (default or 0: a free one, in the URL printed)")
    web.add_argument("--onnxruntime-web", dest="ort_web", metavar="DIR",
                     help="a copy of the npm package onnxruntime-web (or of its dist files) "
                     "to use instead of the cache")


def cmd_web(args: argparse.Namespace) -> int:
    from mlpc.runtime import web

    if (args.model is None) == (args.examples is None):
        raise UsageError("mlpc web takes a MODEL.onnx or --examples (one of them)")
    if args.model is not None and args.model.endswith(PROGRAM_SUFFIXES):
        raise UsageError(f"mlpc web runs a compiled model (MODEL.onnx), not a program: "
                         f"mlpc compile {args.model} -o MODEL.onnx first")
    if not args.output and not args.serve:
        raise UsageError("mlpc web needs -o DIR (where to write the site) or --serve")
    if args.port is not None and not args.serve:
        raise UsageError("--port is the port of --serve")
    with web.sigterm_as_ctrl_c(), tempfile.TemporaryDirectory(prefix="mlpc-web-") as tmp:
        site = Path(args.output or tmp)
        server = web.site_server(site, args.port or 0) if args.serve else None  # taken: now
        models = ([web.model_from_file(args.model)] if args.model is not None
                  else web.gallery(args.examples))
        web.build_site(models, site, web.onnxruntime_web(args.ort_web))
        print(web.summary(site, models), file=sys.stderr)
        return web.serve(server, site) if server else 0


_AUDIT_EPILOG = """\
It reads the model file alone (its local functions and If branches expanded, its metadata's
state layout and declared ranges), never the compiler: on the Loop's state path only affine
maps with constant integer weights, Max(x, 0) and shape ops with constant arguments; decode
only reads values out; and on every state drawn, every value and every partial sum (a sum of
absolute values) of every MatMul, Gemm, Mul, Add and Sub stays below 2^63 (int64) or at most
2^53 (float64). A step model (compile --step-model) is audited as its one step.

exit status: 0 honest and exact, 1 not (or the model cannot be read or audited), 2 usage
errors."""


def _add_audit_command(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    audit = sub.add_parser("audit", help="check a model is an honest, exact looped ReLU-MLP",
                           formatter_class=argparse.RawDescriptionHelpFormatter,
                           description="The honesty and exactness audit of a model file: "
                           "what the network computes, the largest magnitude each kind of "
                           "op reaches and its margin to the dtype's exact range, and a "
                           "verdict.", epilog=_AUDIT_EPILOG)
    audit.add_argument("model", metavar="MODEL.onnx", help="a compiled model, or a step model")
    audit.add_argument("--json", action="store_true", help="print one JSON object")
    audit.add_argument("--states", type=_non_negative, default=32, metavar="N",
                       help="random states to evaluate beside the structured ones (default "
                       "%(default)s)")
    audit.add_argument("--seed", type=_non_negative, default=0, metavar="S",
                       help="seed of the random states (default %(default)s)")


def cmd_audit(args: argparse.Namespace) -> int:
    from mlpc.runtime.audit import AuditError, audit_file

    if args.model.endswith(PROGRAM_SUFFIXES):
        raise UsageError(f"mlpc audit checks a compiled model (MODEL.onnx), not a program: "
                         f"mlpc compile {args.model} -o MODEL.onnx first")
    if not Path(args.model).is_file():
        raise MlpcError(f"{args.model}: no such file")
    try:
        report = audit_file(args.model, args.states, args.seed)
    except AuditError as exc:
        raise MlpcError(str(exc)) from None
    print(json.dumps(report.to_json()) if args.json else report.text())
    return 0 if report.ok else EXIT_PROGRAM_ERROR


COMMANDS = {"run": cmd_run, "asm": cmd_asm, "compile": cmd_compile, "inspect": cmd_inspect,
            "trace": cmd_trace, "verify": cmd_verify, "view": cmd_view, "web": cmd_web,
            "audit": cmd_audit}


def check_limits(args: argparse.Namespace) -> None:
    """Refuse sizes mlpc cannot build before building (or allocating) anything."""
    memory = getattr(args, "memory", None)
    if memory is not None and memory > MAX_NETWORK_MEMORY:
        raise MlpcError(f"--memory {memory} is too large: at most {MAX_NETWORK_MEMORY} words "
                        "(the network's size grows with memory; this is mlpc's limit)")
    tape_in = getattr(args, "tape_in", None)
    if tape_in is not None and tape_in > MAX_NETWORK_MEMORY:
        raise MlpcError(f"--tape-in {tape_in} is too large: at most {MAX_NETWORK_MEMORY} words "
                        "(the input tape is part of the network's state)")
    unroll = getattr(args, "unroll", None)
    if unroll is not None and unroll > MAX_UNROLL:
        raise MlpcError(f"--unroll {unroll} is too large: at most {MAX_UNROLL} steps per Loop "
                        "iteration (the Loop body holds a copy of the network per step)")


# Options whose value may be a list of words that starts with a negative one.
VALUE_OPTIONS = ("--tape", "--input")


def attach_negative_values(argv: Sequence[str]) -> list[str]:
    """`--tape -1,-1,5` as `--tape=-1,-1,5` (and `--input` likewise). argparse reads a word
    that starts with `-` as an option unless it is one negative number, and would refuse
    `--tape` its value; joined by `=`, the value is the option's whatever it looks like.
    Only a `-` followed by a digit is joined, so `--tape --stdin` stays a usage error, and
    nothing after `--` is touched."""
    out: list[str] = []
    words = iter(argv)
    for word in words:
        if word == "--":
            out.append(word)
            out.extend(words)
            break
        if word in VALUE_OPTIONS:
            following = next(words, None)
            if following is None:
                out.append(word)
            elif following[:1] == "-" and following[1:2].isdigit():
                out.append(f"{word}={following}")
            else:
                out.extend((word, following))
            continue
        out.append(word)
    return out


def main(argv: Sequence[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(
            attach_negative_values(sys.argv[1:] if argv is None else argv))
        cache.set_enabled(not getattr(args, "no_cache", False))
        check_limits(args)
        return COMMANDS[args.command](args)
    except MlpcError as err:
        print(err.render(), file=sys.stderr)
        return err.exit_status
    except KeyboardInterrupt:
        print("mlpc: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0
    except RecursionError:
        print("error: program too deeply nested", file=sys.stderr)
        return EXIT_PROGRAM_ERROR


if __name__ == "__main__":
    sys.exit(main())
