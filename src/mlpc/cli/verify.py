"""`mlpc verify`: the engines side by side, step by step, until the first divergence."""

from __future__ import annotations

import argparse

from mlpc.cli.common import (
    Command,
    add_program_run_options,
    check_machine_limits,
    machine_run,
    max_steps,
    non_negative,
    positive,
)
from mlpc.compiler.machine_config import DEFAULT_MAX_STEPS
from mlpc.errors import EXIT_OK, EXIT_PROGRAM_ERROR, UsageError

VERIFY_DEFAULT_STEPS = 2000
EPILOG = """\
The engines: reference (the SUBLEQ interpreter), numpy (the compiled layers), onnx
(onnxruntime, one step per call), and for .tl programs source (the AST interpreter, compared
on the final outputs, tape, status and detail against a full-speed reference run, since a
source step is not a SUBLEQ step). After every step each machine-level engine's memory, pc,
fault, step count and output tape are compared with the first engine's; the first
divergence is reported with the step, the instruction executed and each differing cell by
name. The network engines take about 1-3 ms per step: --steps bounds the lock-step part.

exit status: 0 all engines agree, 1 a divergence (or errors in the program, its inputs or
files), 2 usage errors."""


def options(ver: argparse.ArgumentParser) -> None:
    add_program_run_options(ver)
    ver.add_argument("--steps", type=positive, default=VERIFY_DEFAULT_STEPS, metavar="N",
                     help="steps to compare in lock-step (default %(default)s)")
    ver.add_argument("--engines", default=None, metavar="E1,E2,...",
                     help="engines to compare, the first is the baseline (default "
                     "reference,numpy,onnx, plus source for .tl programs)")
    ver.add_argument("--max-steps", type=non_negative, default=None, metavar="N",
                     help="step budget of the full runs compared with the source engine "
                     f"(default {DEFAULT_MAX_STEPS:,})")
    ver.add_argument("--quiet", action="store_true", help="no progress display")


def run(args: argparse.Namespace) -> int:
    check_machine_limits(args)
    from mlpc.runtime.engines import get_engine
    from mlpc.runtime.request import RunRequest
    from mlpc.runtime.verify import MACHINE_ENGINES, compare_with_source, lockstep

    prepared = machine_run(args)
    program = prepared.program
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
    result = lockstep(program.image, prepared.config, prepared.words, dict(prepared.inputs),
                      prepared.tape, machine, args.steps, show_progress=not args.quiet)
    if "source" in engines and result.divergence is None:
        request = RunRequest(program, prepared.config, prepared.tape, prepared.inputs,
                             max_steps(args), show_progress=not args.quiet,
                             budget_given=args.max_steps is not None)
        compare_with_source(result, get_engine("reference")(request),
                            get_engine("source")(request))
    print(result.render(args.steps))
    return EXIT_OK if result.agree else EXIT_PROGRAM_ERROR


COMMAND = Command("verify", help="run the engines in lock-step",
                  description="Run the executors side by side, step by step, and report the "
                  "first divergence or that they agree.", epilog=EPILOG, raw=True,
                  options=options, run=run)
