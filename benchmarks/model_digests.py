"""Digests of what the compiler produces, to show that a refactoring changed none of it.

    python benchmarks/model_digests.py OUT.json          # write the digests
    python benchmarks/model_digests.py OUT.json --check BEFORE.json   # and compare

For every example (`examples/*.tl`, `hello.asm`, `hello.dec`) and every program of the hsq
corpus (`$MLPC_SHARED/hsq-corpus/*.dec`, when it is there): the SHA-256 of the SUBLEQ image
(its words), and of the ONNX model's weights (every initializer of the graph and of its
subgraphs and functions, in order: name, dtype, shape, bytes) and of the whole serialised
model, compiled with the default options; the examples also with `--specialise`. With
`--check`, every entry must equal BEFORE's: the command prints each difference and exits 1.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
from pathlib import Path

import onnx

from mlpc.compiler.driver import load_program, machine_config
from mlpc.compiler.model import compile_model
from mlpc.compiler.options import CompileOptions

ROOT = Path(__file__).resolve().parent.parent


def _tensors(graph: onnx.GraphProto) -> list[onnx.TensorProto]:
    out = list(graph.initializer)
    for node in graph.node:
        for attr in node.attribute:
            if attr.type == onnx.AttributeProto.GRAPH:
                out += _tensors(attr.g)
            if attr.type == onnx.AttributeProto.TENSOR:
                out.append(attr.t)
    return out


def weights_digest(model: onnx.ModelProto) -> str:
    h = hashlib.sha256()
    graphs = [model.graph] + [onnx.GraphProto(node=f.node) for f in model.functions]
    for g in graphs:
        for t in _tensors(g):
            h.update(f"{t.name}|{t.data_type}|{list(t.dims)}|".encode())
            h.update(onnx.numpy_helper.to_array(t).tobytes())
    return h.hexdigest()


def digest(paths: list[str], specialise: bool) -> dict[str, str]:
    program = load_program(paths, CompileOptions())
    image = program.image
    cfg = machine_config(image)
    model = compile_model(image, cfg, specialise=specialise)
    words = json.dumps(list(image.words)).encode()
    return {"image": hashlib.sha256(words).hexdigest(),
            "weights": weights_digest(model),
            "model": hashlib.sha256(model.SerializeToString()).hexdigest()}


def programs() -> list[tuple[str, list[str], bool]]:
    """(name, paths, specialise); the examples by their paths relative to the repository's
    root, which `main` makes the working directory: a model holds its program's path, so a
    checkout elsewhere gives the same files."""
    found = []
    for path in sorted((ROOT / "examples").glob("*.tl")):
        relative = str(path.relative_to(ROOT))
        found.append((path.name, [relative], False))
        found.append((f"{path.name} --specialise", [relative], True))
    for name in ("hello.asm", "hello.dec"):
        found.append((name, [f"examples/{name}"], False))
    shared = Path(os.environ.get("MLPC_SHARED", ROOT.parent / "shared"))
    for path in sorted((shared / "hsq-corpus").glob("*.dec")):
        found.append((f"hsq/{path.name}", [str(path)], False))
    return found


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out")
    parser.add_argument("--check", metavar="BEFORE.json")
    args = parser.parse_args()
    out = Path(args.out).resolve()
    before_path = Path(args.check).resolve() if args.check else None
    os.chdir(ROOT)
    result = {name: digest(paths, specialise) for name, paths, specialise in programs()}
    out.write_text(json.dumps(result, indent=1, sort_keys=True) + "\n")
    print(f"{len(result)} programs digested into {out}")
    if before_path is None:
        return 0
    before = json.loads(before_path.read_text())
    bad = [f"{name}: {key} differs" for name in sorted(set(before) | set(result))
           for key in ("image", "weights", "model")
           if before.get(name, {}).get(key) != result.get(name, {}).get(key)]
    print("\n".join(bad) or f"identical to {args.check}: every image, every model")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
