"""`mlpc trace`: a run on the SUBLEQ reference interpreter, step by step."""

from __future__ import annotations

import argparse
import sys

from mlpc.cli.common import (
    Command,
    MachineRun,
    add_program_run_options,
    check_machine_limits,
    machine_run,
    model_among,
    model_metadata,
    non_negative,
    positive,
)
from mlpc.compiler.machine_config import Status
from mlpc.errors import UsageError

TRACE_WINDOW = 1000
EPILOG = """\
Each line: step number, pc, the instruction a b c, the source line and macro instruction the
words came from (compiled .tl programs), and what the step did: changed cells by name
(`a: 48 -> 30`, unnamed cells as M[addr]), `in V -> cell`, `out W`, `jump C`, `halt`. A line
`; N: text` shows the source line whenever it changes; a last `;` line sums up the run.

Steps before --from run at full speed without printing. --steps defaults to --to, or to
1,000 steps after --from.

exit status: 0 the trace was printed (whatever the program did), 1 errors in the program,
its inputs or files (or --plot without matplotlib), 2 usage errors."""


def options(tr: argparse.ArgumentParser) -> None:
    add_program_run_options(tr)
    tr.add_argument("--steps", type=non_negative, metavar="N",
                    help="stop after N steps in total")
    tr.add_argument("--from", dest="first", type=positive, default=1, metavar="A",
                    help="first step to show (default 1)")
    tr.add_argument("--to", dest="last", type=positive, metavar="B",
                    help="last step to show")
    tr.add_argument("--json", action="store_true", help="print one JSON object")
    tr.add_argument("--specialise", action="store_true",
                    help="say which steps each iteration of the --specialise network executes "
                    "(a straight-line run is one iteration); a specialised model says it "
                    "without this")
    tr.add_argument("--plot", metavar="OUT.png",
                    help="plot memory cells over the shown steps (needs matplotlib)")
    tr.add_argument("--cells", metavar="NAME,...",
                    help="cells to plot, by name or address (default: the program's named "
                    "variables that change, else the most-changed cells)")


def run_starts(args: argparse.Namespace, prepared: MachineRun) -> dict[int, int] | None:
    """The straight-line runs of the specialised network (start -> length): with
    --specialise, or for a specialised model (its metadata lists its runs). They are the
    runs the network itself executes (none where it keeps one step per iteration)."""
    from mlpc.compiler.model import read_only_of, specialised_step

    model = model_among(args.program, args.command)
    meta = model_metadata(model) if model is not None else {}
    if not args.specialise and "runs" not in meta:
        return None
    if args.specialise and model is not None:
        raise UsageError("--specialise is a compile option: the model has its own network")
    ro = read_only_of(prepared.program.image, prepared.config)
    step = specialised_step(prepared.config, ro, meta.get("dtype", "int64"))
    return {r.start: r.length for r in step.runs}


def run(args: argparse.Namespace) -> int:
    check_machine_limits(args)
    from mlpc.runtime.trace import trace_run

    if args.last is not None and args.last < args.first:
        raise UsageError(f"--to {args.last} is before --from {args.first}")
    if args.cells and not args.plot:
        raise UsageError("--cells chooses what --plot draws: give --plot OUT.png too")
    if args.plot:
        from mlpc.runtime.plots import require_matplotlib

        require_matplotlib()  # before a long trace, not after it
    prepared = machine_run(args)
    steps = args.steps
    if steps is None:
        steps = args.last if args.last is not None else args.first - 1 + TRACE_WINDOW
    trace = trace_run(prepared.program.image, prepared.config, prepared.words, prepared.tape,
                      steps, args.first, args.last, run_starts(args, prepared))
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


COMMAND = Command("trace", help="show a run step by step",
                  description="Run a program on the SUBLEQ reference interpreter and print "
                  "every step.", epilog=EPILOG, raw=True, options=options, run=run)
