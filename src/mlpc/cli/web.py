"""`mlpc web`: a self-contained static site that runs a compiled model in the browser."""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from mlpc.cli.common import Command, port_or_0, refuse_program
from mlpc.errors import UsageError


def options(web: argparse.ArgumentParser) -> None:
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
    web.add_argument("--port", type=port_or_0, metavar="P",
                     help="port for --serve (default or 0: a free one, in the URL printed)")
    web.add_argument("--onnxruntime-web", dest="ort_web", metavar="DIR",
                     help="a copy of the npm package onnxruntime-web (or of its dist files) "
                     "to use instead of the cache")


def run(args: argparse.Namespace) -> int:
    from mlpc.runtime import web

    if (args.model is None) == (args.examples is None):
        raise UsageError("mlpc web takes a MODEL.onnx or --examples (one of them)")
    if args.model is not None:
        refuse_program(args.model, "web", "runs a compiled model")
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


COMMAND = Command(
    "web", help="a web page that runs a model in the browser",
    description="Write a self-contained static site that runs a compiled model in the "
    "browser (onnxruntime-web) and shows the network's state step by step: source, "
    "listing, memory, outputs. onnxruntime-web is fetched once with npm pack into "
    "~/.cache/mlpc (or $XDG_CACHE_HOME/mlpc), or taken from --onnxruntime-web DIR.",
    epilog="exit status: 0 the site was written (with --serve: after Ctrl-C or SIGTERM, "
    "which remove a temporary site), 1 when a "
    "model cannot be read or was not made by mlpc, onnxruntime-web cannot be had, the "
    "folder cannot be written or the port is taken, 2 usage errors.",
    options=options, run=run)
