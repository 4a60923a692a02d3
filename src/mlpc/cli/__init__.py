"""The `mlpc` command line (README.md, "The command line"): one module per command, each
declaring its `COMMAND` (`mlpc.cli.common.Command`: its parser and what it runs);
`COMMANDS` lists them in the order `mlpc --help` shows them.

Exit statuses: 0 halted, 1 errors in the program or its inputs, 2 usage errors, 3 trap or
fault, 4 step limit. Messages go to stderr; no traceback reaches the user.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from mlpc import __version__, cache
from mlpc.cli import asm, audit, common, compile, inspect, run, trace, verify, view, web
from mlpc.errors import EXIT_PROGRAM_ERROR, MlpcError

COMMANDS: tuple[common.Command, ...] = tuple(module.COMMAND for module in (
    run, compile, inspect, asm, trace, verify, view, web, audit))


def build_parser() -> argparse.ArgumentParser:
    parser = common.Parser(prog="mlpc", description="Compile programs into looped ReLU-MLPs.")
    parser.add_argument("--version", action="version", version=f"mlpc {__version__}")
    # only `mlpc run` has --no-cache; every other command reads and writes the cache
    parser.set_defaults(no_cache=False)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=common.Parser)
    sub.required = True
    for command in COMMANDS:
        command.add_to(sub)
    return parser


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
        cache.set_enabled(not args.no_cache)
        return next(c for c in COMMANDS if c.name == args.command).run(args)
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
