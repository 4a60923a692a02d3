"""`mlpc audit`: the honesty and exactness audit of a model file."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from mlpc.cli.common import Command, non_negative, refuse_program
from mlpc.errors import EXIT_PROGRAM_ERROR, MlpcError

EPILOG = """\
It reads the model file alone (its local functions and If branches expanded, its metadata's
state layout and declared ranges), never the compiler: on the Loop's state path only affine
maps with constant integer weights, Max(x, 0) and shape ops with constant arguments; decode
only reads values out; and on every state drawn, every value and every partial sum (a sum of
absolute values) of every MatMul, Gemm, Mul, Add and Sub stays below 2^63 (int64) or at most
2^53 (float64). A step model (compile --step-model) is audited as its one step.

exit status: 0 honest and exact, 1 not (or the model cannot be read or audited), 2 usage
errors."""


def options(audit: argparse.ArgumentParser) -> None:
    audit.add_argument("model", metavar="MODEL.onnx", help="a compiled model, or a step model")
    audit.add_argument("--json", action="store_true", help="print one JSON object")
    audit.add_argument("--states", type=non_negative, default=32, metavar="N",
                       help="random states to evaluate beside the structured ones (default "
                       "%(default)s)")
    audit.add_argument("--seed", type=non_negative, default=0, metavar="S",
                       help="seed of the random states (default %(default)s)")


def run(args: argparse.Namespace) -> int:
    from mlpc.runtime.audit import AuditError, audit_file

    refuse_program(args.model, "audit", "checks a compiled model")
    if not Path(args.model).is_file():
        raise MlpcError(f"{args.model}: no such file")
    try:
        report = audit_file(args.model, args.states, args.seed)
    except AuditError as exc:
        raise MlpcError(str(exc)) from None
    print(json.dumps(report.to_json()) if args.json else report.text())
    return 0 if report.ok else EXIT_PROGRAM_ERROR


COMMAND = Command("audit", help="check a model is an honest, exact looped ReLU-MLP",
                  description="The honesty and exactness audit of a model file: what the "
                  "network computes, the largest magnitude each kind of op reaches and its "
                  "margin to the dtype's exact range, and a verdict.", epilog=EPILOG, raw=True,
                  options=options, run=run)
