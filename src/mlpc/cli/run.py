"""`mlpc run`: run a program (compiled first, or taken from the cache) or a compiled model,
once or as a batch."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from mlpc import cache
from mlpc.cli.common import (
    Command,
    add_machine_options,
    add_network_options,
    add_stack_option,
    check_inputs,
    check_machine_limits,
    check_memory_limit,
    compile_options,
    max_steps,
    model_among,
    network_options,
    non_negative,
    parse_input_lists,
    parse_inputs,
    parse_tape,
    refuse_compile_options,
)
from mlpc.compiler.assembler import read_text
from mlpc.compiler.limits import ENGINE_NAMES
from mlpc.compiler.machine_config import DEFAULT_MAX_STEPS, MachineConfig
from mlpc.errors import MlpcError, UsageError

if TYPE_CHECKING:
    from mlpc.runtime.onnx_model import OnnxModel
    from mlpc.runtime.report import RunReport

EPILOG = """\
A batch (--input lists or --batch) runs as one onnxruntime batch on the onnx engine and item
by item on the others. Text output heads each item with `[i] NAME=VALUE ...`; with --json
each item prints one object (as a single run does) on its own line.

exit status: 0 halted, 1 errors in the program, its inputs or files, 2 usage errors, 3 trap
or fault, 4 the step budget ran out. A batch exits with the largest status of its items
(so 4 if any item ran out of steps, else 3 if any trapped or faulted, else 0)."""


def options(run: argparse.ArgumentParser) -> None:
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
    run.add_argument("--max-steps", type=non_negative, default=None, metavar="N",
                     help=f"step budget (default {DEFAULT_MAX_STEPS:,})")
    run.add_argument("--words", action="store_true", help="print output words as integers")
    run.add_argument("--json", action="store_true",
                     help="print one JSON object (in a batch, one per line)")
    run.add_argument("--quiet", action="store_true", help="no progress display")
    run.add_argument("--no-cache", action="store_true",
                     help="compile afresh: neither read nor write mlpc's cache of compiled "
                     "models ($XDG_CACHE_HOME/mlpc, else ~/.cache/mlpc)")
    add_machine_options(run)
    add_stack_option(run)
    add_network_options(run)


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


def run(args: argparse.Namespace) -> int:
    check_machine_limits(args)
    if args.batch == "-" and args.stdin:
        raise UsageError("--batch - and --stdin both read standard input: give one of them")
    tape = _read_stdin_tape() if args.stdin else parse_tape(args.tape or "")
    items = batch_items(args, tape)
    single = items is None
    if items is None:
        items = [BatchItem("", parse_inputs(args.input), tape)]
    model = model_among(args.program, "run")
    if model is not None:
        return _run_model_file(args, model, items, single)
    if args.engine == "onnx":
        return _run_program_on_onnx(args, items, single)
    from mlpc.compiler.driver import load_program, machine_config
    from mlpc.runtime.engines import get_engine
    from mlpc.runtime.request import RunRequest

    program = load_program(args.program, compile_options(args))
    if args.engine == "source":
        config = MachineConfig(memory=3, word_bits=args.word_bits, tape_in=args.tape_in,
                               tape_out=args.tape_out)
    else:
        config = machine_config(program.image, args.memory, args.word_bits, args.tape_in,
                                args.tape_out)
    for item in items:
        _check_item(item, program.input_names, config)
    _, dtype = network_options(args)
    engine = get_engine(args.engine)
    reports = [engine(RunRequest(program, config, item.tape, item.inputs, max_steps(args),
                                 show_progress=not args.quiet,
                                 budget_given=args.max_steps is not None, dtype=dtype,
                                 specialise=args.specialise, runs=not args.one_step))
               for item in items]
    return _print_reports(reports, items, single, args)


def _run_program_on_onnx(args: argparse.Namespace, items: list[BatchItem],
                         single: bool) -> int:
    """Compile the program (or take its model from the cache) and run the items as one
    onnxruntime batch. A cached model runs exactly as a freshly compiled one: both are
    loaded from their bytes and checked against their own metadata."""
    from mlpc.runtime.onnx_model import OnnxModel

    store = cache.ModelCache.default()
    key = store.key(args.program, _model_key_options(args)) if store else None
    data = store.load(key) if store and key else None
    if data is None:
        data = _compile_for_run(args, items)
        if store and key:
            store.store(key, data)
    model = OnnxModel(data)
    return _run_model(model, items, single, args)


def _run_model(model: OnnxModel, items: list[BatchItem], single: bool,
               args: argparse.Namespace) -> int:
    """Every item on a loaded model, in one batch, and their reports printed."""
    from mlpc.runtime.onnx_model import run_model_batch

    for item in items:
        _check_item(item, model.inputs, MachineConfig(memory=3, word_bits=model.word_bits))
    reports = run_model_batch(model, [(item.inputs, item.tape) for item in items],
                              max_steps(args), show_progress=not args.quiet,
                              show_total=args.max_steps is not None)
    return _print_reports(reports, items, single, args)


def _model_key_options(args: argparse.Namespace) -> dict[str, object]:
    """Every option that shapes the model `mlpc run` compiles (the cache key's part)."""
    weights, dtype = network_options(args)
    return {"memory": args.memory, "word_bits": args.word_bits, "tape_in": args.tape_in,
            "tape_out": args.tape_out, "stack": args.stack, "weights": weights,
            "dtype": dtype, "specialise": args.specialise, "one_step": args.one_step,
            "read_only": sorted(args.read_only)}


def _compile_for_run(args: argparse.Namespace, items: list[BatchItem]) -> bytes:
    """The model `mlpc run PROG` runs, as bytes (its inputs checked first, as without a
    cache: an input the program lacks is reported before compiling)."""
    from mlpc.compiler.driver import load_program, machine_config
    from mlpc.compiler.encodings import ExportOptions
    from mlpc.compiler.model import compile_model

    program = load_program(args.program, compile_options(args))
    config = machine_config(program.image, args.memory, args.word_bits, args.tape_in,
                            args.tape_out)
    for item in items:
        _check_item(item, program.input_names, config)
    weights, dtype = network_options(args)
    check_memory_limit(weights, config)
    model = compile_model(program.image, config, ExportOptions(weights=weights, dtype=dtype),
                          args.specialise, runs=not args.one_step)
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


def _run_model_file(args: argparse.Namespace, path: str, items: list[BatchItem],
                    single: bool) -> int:
    if args.engine != "onnx":
        raise UsageError(f"a compiled model runs on the onnx engine, not {args.engine!r}")
    if args.weights is not None or args.dtype is not None:
        raise UsageError("--weights and --dtype are compile options: a compiled model has its "
                         "own")
    refuse_compile_options(args, "a compiled model")
    from mlpc.runtime.onnx_model import OnnxModel

    model = OnnxModel(path)
    return _run_model(model, items, single, args)


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


COMMAND = Command("run", help="run a program or a compiled model",
                  description="Run a program (compiled first) or a compiled model, once or as "
                  "a batch.", epilog=EPILOG, raw=True, options=options, run=run)
