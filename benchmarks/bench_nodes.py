"""Where one iteration's time goes: every op of one unrolled step of a model's Loop body,
timed alone, in one run.

    python benchmarks/bench_nodes.py fizzbuzz                 # the --specialise model
    python benchmarks/bench_nodes.py fizzbuzz --universal --batch 1 64
    python benchmarks/bench_nodes.py model.onnx --top 10

The step `s0/` of the Loop body (local functions expanded) is run once on a random state to
learn every intermediate value. Then each op is timed in a Loop of its own, `--copies`
distinct copies of it per iteration with the values it consumed as inputs (onnxruntime's
graph optimisations off, so that copies are not merged and constants are not folded), on
one thread; the time of an `Identity` op timed the same way is subtracted, so a figure is
the op's work above the cost of running any op at all. Reported: each op's time, the
elements it writes or the products it multiplies, and the sum by op type. A figure out of
line with its elements (an op walking a broadcast element by element) shows here.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")

import argparse  # noqa: E402
import collections  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from dataclasses import dataclass  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import onnx  # noqa: E402
import onnxruntime as ort  # noqa: E402
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

from mlpc.compiler.driver import load_program, machine_config  # noqa: E402
from mlpc.compiler.model import compile_model  # noqa: E402
from mlpc.compiler.options import CompileOptions  # noqa: E402

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
STATE = ("V_in", "t_in", "scalars_in")  # the Loop body's carried state (families encoding)
ONNX_TYPE = {np.dtype(np.int64): TensorProto.INT64, np.dtype(np.float64): TensorProto.DOUBLE,
             np.dtype(np.bool_): TensorProto.BOOL}


@dataclass(frozen=True)
class Timed:
    op_type: str
    name: str
    seconds: float
    work: int  # products for a MatMul, else the elements of its first output


def load_model(what: str, universal: bool) -> onnx.ModelProto:
    """An .onnx file, or an example compiled with --specialise (or universal)."""
    if what.endswith(".onnx"):
        return onnx.load(what)
    program = load_program([str(EXAMPLES / f"{what}.tl")], CompileOptions())
    return compile_model(program.image, machine_config(program.image),
                         specialise=not universal)


def constants(model: onnx.ModelProto) -> dict[str, np.ndarray]:
    found = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    for node in model.graph.node:
        if node.op_type == "Constant":
            found[node.output[0]] = numpy_helper.to_array(node.attribute[0].t)
    return found


def first_step(model: onnx.ModelProto) -> tuple[list[onnx.NodeProto], onnx.GraphProto]:
    """The nodes of the body's first unrolled step, each local function call expanded into
    its nodes (their inner names prefixed, the call's inputs and outputs substituted)."""
    loop = next(n for n in model.graph.node if n.op_type == "Loop")
    body = loop.attribute[0].g
    functions = {f.name: f for f in model.functions}
    nodes: list[onnx.NodeProto] = []
    for call in body.node:
        if not call.name.startswith("s0/"):
            continue
        if call.op_type not in functions:
            nodes.append(call)
            continue
        f = functions[call.op_type]
        bind = {**dict(zip(f.input, call.input, strict=True)),
                **dict(zip(f.output, call.output, strict=True))}
        for inner in f.node:
            node = onnx.NodeProto()
            node.CopyFrom(inner)
            del node.input[:]
            del node.output[:]
            node.input.extend(bind.get(i, f"{call.name}:{i}") if i else "" for i in inner.input)
            node.output.extend(bind.get(o, f"{call.name}:{o}") for o in inner.output)
            nodes.append(node)
    return nodes, body


def session(graph: onnx.GraphProto, opsets: list[onnx.OperatorSetIdProto]
            ) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.intra_op_num_threads = options.inter_op_num_threads = 1
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    model = helper.make_model(graph, opset_imports=opsets)
    return ort.InferenceSession(model.SerializeToString(), options,
                                providers=["CPUExecutionProvider"])


def values(nodes: list[onnx.NodeProto], body: onnx.GraphProto, consts: dict[str, np.ndarray],
           opsets: list[onnx.OperatorSetIdProto], batch: int) -> dict[str, np.ndarray]:
    """Every value of the step, run once on a random state of the body's shapes."""
    rng = np.random.default_rng(0)
    feeds: dict[str, np.ndarray] = {}
    dtype = np.dtype(np.int64)
    for value in body.input:
        if value.name in STATE:
            tensor = value.type.tensor_type
            dtype = np.dtype(helper.tensor_dtype_to_np_dtype(tensor.elem_type))
            shape = [batch if d.dim_param else d.dim_value for d in tensor.shape.dim]
            feeds[value.name] = rng.integers(0, 50, shape).astype(dtype)
    used = {i for n in nodes for i in n.input}
    outputs = [o for n in nodes for o in n.output]
    graph = helper.make_graph(
        nodes, "step", [helper.make_tensor_value_info(k, ONNX_TYPE[v.dtype], None)
                        for k, v in feeds.items()],
        [helper.make_tensor_value_info(o, ONNX_TYPE[dtype], None) for o in outputs],
        [numpy_helper.from_array(v, k) for k, v in consts.items() if k in used])
    return {**feeds, **dict(zip(outputs, session(graph, opsets).run(None, feeds),
                                strict=True))}


def time_op(node: onnx.NodeProto, known: dict[str, np.ndarray], consts: dict[str, np.ndarray],
            opsets: list[onnx.OperatorSetIdProto], copies: int, trips: int) -> float:
    """Seconds per run of `node`: `copies` distinct copies per iteration of a Loop, its
    first output carried so that every copy stays live; best of 5."""
    inputs = list(dict.fromkeys(i for i in node.input if i and i not in consts))
    first = known[node.output[0]]
    kind = ONNX_TYPE[first.dtype]
    body_nodes = [helper.make_node("Identity", ["cond_in"], ["cond_out"])]
    carried = []
    for k in range(copies):
        copy = onnx.NodeProto()
        copy.CopyFrom(node)
        copy.name = f"copy{k}"
        del copy.output[:]
        copy.output.extend(f"{o}@{k}" for o in node.output)
        body_nodes += [copy, helper.make_node("Identity", [copy.output[0]], [f"out{k}"])]
        carried.append(k)
    body = helper.make_graph(
        body_nodes, "body",
        [helper.make_tensor_value_info("i", TensorProto.INT64, []),
         helper.make_tensor_value_info("cond_in", TensorProto.BOOL, []),
         *(helper.make_tensor_value_info(f"in{k}", kind, None) for k in carried)],
        [helper.make_tensor_value_info("cond_out", TensorProto.BOOL, []),
         *(helper.make_tensor_value_info(f"out{k}", kind, None) for k in carried)])
    loop = helper.make_node("Loop", ["trips", "cond", *(f"init{k}" for k in carried)],
                            [f"final{k}" for k in carried], body=body)
    graph = helper.make_graph(
        [loop], "bench",
        [helper.make_tensor_value_info("trips", TensorProto.INT64, []),
         helper.make_tensor_value_info("cond", TensorProto.BOOL, []),
         *(helper.make_tensor_value_info(i, ONNX_TYPE[known[i].dtype], None) for i in inputs),
         *(helper.make_tensor_value_info(f"init{k}", kind, None) for k in carried)],
        [helper.make_tensor_value_info(f"final{k}", kind, None) for k in carried],
        [numpy_helper.from_array(consts[i], i) for i in dict.fromkeys(node.input)
         if i in consts])
    run = session(graph, opsets)
    feeds = {"trips": np.array(trips, np.int64), "cond": np.array(True),
             **{i: known[i] for i in inputs}, **{f"init{k}": first for k in carried}}
    best = float("inf")
    for _ in range(5):
        start = time.perf_counter()
        run.run(None, feeds)
        best = min(best, time.perf_counter() - start)
    return best / trips / copies


def work(node: onnx.NodeProto, known: dict[str, np.ndarray], consts: dict[str, np.ndarray]
         ) -> int:
    if node.op_type != "MatMul":
        return int(known[node.output[0]].size)
    a, b = (known.get(i, consts.get(i)) for i in node.input[:2])
    assert a is not None and b is not None
    return int(known[node.output[0]].size) * int(a.shape[-1])


def measure(model: onnx.ModelProto, batch: int, copies: int, trips: int) -> list[Timed]:
    consts = constants(model)
    opsets = list(model.opset_import)
    nodes, body = first_step(model)
    known = values(nodes, body, consts, opsets, batch)
    state = next(k for k in STATE if k in known)
    identity = helper.make_node("Identity", [state], ["identity_out"], name="identity")
    known["identity_out"] = known[state]
    base = time_op(identity, known, consts, opsets, copies, trips)
    return [Timed(n.op_type, n.name, time_op(n, known, consts, opsets, copies, trips) - base,
                  work(n, known, consts)) for n in nodes]


def report(timed: list[Timed], batch: int, top: int) -> None:
    total = sum(t.seconds for t in timed)
    print(f"\nbatch {batch}: {len(timed)} ops, {total * 1e6:.1f} us above the cost of an "
          "Identity op each")
    for t in sorted(timed, key=lambda t: -t.seconds)[:top]:
        unit = "products" if t.op_type == "MatMul" else "elements"
        per = t.seconds / max(t.work, 1) * 1e9
        print(f"  {t.seconds * 1e6:8.2f} us  {t.op_type:8s} {t.work:9d} {unit:8s} "
              f"{per:6.2f} ns each  {t.name}")
    by_type: collections.Counter[str] = collections.Counter()
    for t in timed:
        by_type[t.op_type] += t.seconds * 1e6
    print("  by op: " + ", ".join(f"{k} {v:.1f} us" for k, v in by_type.most_common()))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("model", help="an example's name (examples/NAME.tl) or an .onnx file")
    parser.add_argument("--universal", action="store_true",
                        help="compile the example's universal model (default: --specialise)")
    parser.add_argument("--batch", type=int, nargs="+", default=[1, 64])
    parser.add_argument("--copies", type=int, default=10)
    parser.add_argument("--trips", type=int, default=200)
    parser.add_argument("--top", type=int, default=15)
    args = parser.parse_args(argv)
    model = load_model(args.model, args.universal)
    print(f"{args.model}: {onnxruntime_line()}")
    for batch in args.batch:
        report(measure(model, batch, args.copies, args.trips), batch, args.top)
    return 0


def onnxruntime_line() -> str:
    return f"onnxruntime {ort.__version__}, 1 thread, graph optimisations off"


if __name__ == "__main__":
    sys.exit(main())
