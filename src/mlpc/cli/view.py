"""`mlpc view`: a compiled model in Netron."""

from __future__ import annotations

import argparse

from mlpc.cli.common import Command, port, refuse_program


def options(view: argparse.ArgumentParser) -> None:
    view.add_argument("model", metavar="MODEL.onnx",
                      help="a compiled model (compile a program first: mlpc compile)")
    view.add_argument("--port", type=port, metavar="P",
                      help="port to serve on (default: 8080 or a free one)")
    view.add_argument("--no-browser", action="store_true",
                      help="only serve; do not open a browser")


def run(args: argparse.Namespace) -> int:
    from mlpc.runtime.view import view

    refuse_program(args.model, "view", "opens a compiled model")
    return view(args.model, args.port, browse=not args.no_browser)


COMMAND = Command("view", help="open a model in Netron",
                  description="Serve a model to Netron (pip install 'mlpc[view]') and open it "
                  "in a web browser; Ctrl-C stops the server.",
                  epilog="exit status: 0 after Ctrl-C, 1 when the model cannot be read, Netron "
                  "is not installed or the port is taken, 2 usage errors.",
                  options=options, run=run)
