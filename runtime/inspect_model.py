"""`mlpc inspect`: what a compiled model contains, read from the file alone."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from typing import Any

import onnx

from mlpc.errors import MlpcError
from mlpc.runtime.onnx_model import refuse_step_model


def _op_types(nodes: Any, functions: dict[tuple[str, str], Any]) -> Iterator[str]:
    """The op types of `nodes`, a call of a local function standing for the function's."""
    for node in nodes:
        called = functions.get((node.domain, node.op_type))
        if called is None:
            yield node.op_type
        else:
            yield from _op_types(called.node, functions)


def describe(model: onnx.ModelProto, name: str, file_bytes: int) -> dict[str, Any]:
    """What `mlpc inspect` shows of `model`, a model file's contents (`name`: how messages
    and the report name it; `file_bytes`: its size)."""
    path = name
    meta = {p.key: p.value for p in model.metadata_props}
    if "layers" not in meta:
        raise MlpcError(f"{path}: this ONNX model was not made by mlpc (no layer metadata)")
    refuse_step_model(meta, path)
    layers = json.loads(meta["layers"])
    loops = [n for n in model.graph.node if n.op_type == "Loop"]
    body_ops: Counter[str] = Counter()
    if loops:
        body = next(a.g for a in loops[0].attribute if a.name == "body")
        body_ops.update(_op_types(body.node, {(f.domain, f.name): f for f in model.functions}))
    unroll = int(meta["unroll"])
    return {
        "file": name,
        "file_bytes": file_bytes,
        "memory_words": int(meta["memory_words"]),
        "word_bits": int(meta["word_bits"]),
        "tape_in": int(meta["tape_in"]),
        "tape_out": int(meta["tape_out"]),
        "dtype": meta.get("dtype", "int64"),
        "weights": meta["weights"],
        "unroll": unroll,
        "relu_layers_per_step": int(meta["relu_layers_per_step"]),
        "readout_layers": int(meta.get("readout_layers", 0)),
        "layers": layers,
        "nonzero_weights": sum(layer["nonzeros"] for layer in layers),
        "dense_equivalent_params": sum(layer["dense_params"] for layer in layers),
        "ops_per_step": round(sum(body_ops.values()) / unroll, 1),
        "body_ops": dict(sorted(body_ops.items())),
        "inputs": json.loads(meta["inputs"]),
        "outputs": json.loads(meta["outputs"]),
        "memory_map": json.loads(meta["memory_map"]),
        "source_path": meta.get("source_path", ""),
        "mlpc_version": meta.get("mlpc_version", ""),
        "network_form": meta.get("network_form", "universal"),
        "network_sizes": json.loads(meta.get("network_sizes", "{}")),
        "constant_words": json.loads(meta.get("constant_words", "[]")),
        "runs": json.loads(meta.get("runs", "null")),
    }


def _count(value: object) -> str:
    return f"{value:,}" if isinstance(value, int) else "-"


def _families(layer: dict[str, Any]) -> str:
    """`computed/all` family definitions of a layer's last space ("-" in older models)."""
    families = layer.get("families")
    if families is None:
        return "-"
    return f"{layer.get('computed_families', len(families))}/{len(families)}"


def _forms(info: dict[str, Any]) -> list[str]:
    """Which network the model holds and what each form costs per step."""
    constant = info["constant_words"]
    lines = [f"form: {info['network_form']}" + (
        f" ({sum(b - a for a, b in constant):,} constant words in {len(constant)} ranges, "
        "folded into the weights)" if constant else "")]
    width = max([12, *map(len, info["network_sizes"])])
    for form, sizes in info["network_sizes"].items():
        lines.append(f"  {form:<{width}} state {sizes['state']:>7,}   elements per step "
                     f"{sizes['elements_per_step']:>8,}   non-zero weights "
                     f"{sizes['nonzero_weights']:>9,}")
    runs = info.get("runs")
    if runs:
        lengths = {int(k): v for k, v in runs["lengths"].items()}
        steps = sum(k * v for k, v in lengths.items())
        lines.append(
            f"runs: {runs['count']:,} straight-line runs, {min(lengths)} to {max(lengths)} "
            f"SUBLEQ steps long ({steps / runs['count']:.2f} on average, static), each one "
            f"network iteration; {runs['write_slots']} write slots of "
            f"{runs['reads_per_slot']['added']}+{runs['reads_per_slot']['subtracted']} reads; "
            f"+{runs['elements_per_step_added']:,} elements per iteration over one step per "
            "iteration")
        lines.append("  lengths: " + ", ".join(f"{k}: {v}" for k, v in lengths.items()))
    return lines


def _per(info: dict[str, Any]) -> str:
    if info.get("runs"):
        return "iteration (a SUBLEQ step or a straight-line run)"
    return "SUBLEQ step"


def render(info: dict[str, Any]) -> str:
    lines = [
        f"{info['file']}: {info['file_bytes']:,} bytes, mlpc {info['mlpc_version']}",
        f"machine: m = {info['memory_words']} words, W = {info['word_bits']} bits, "
        f"tapes in/out = {info['tape_in']}/{info['tape_out']} words",
        f"network: {info['relu_layers_per_step']} ReLU layers per "
        f"{_per(info)} "
        f"(and {info['readout_layers']} read-out layers once, after the loop), "
        f"{info['dtype']}, {info['weights']} weights, {info['unroll']} "
        f"{'iterations' if info.get('runs') else 'steps'} per Loop iteration, "
        f"{info['ops_per_step']} ONNX ops per {'iteration' if info.get('runs') else 'step'}",
        f"{'layer':<12}{'relu':>5}{'width':>9}{'families':>10}{'scalars':>9}{'non-zeros':>12}"
        f"{'dense params':>15}",
    ]
    for layer in info["layers"]:
        lines.append(
            f"{layer['name']:<12}{'yes' if layer['relu'] else 'no':>5}{layer['width']:>9,}"
            f"{_families(layer):>10}{_count(layer.get('scalars')):>9}"
            f"{layer['nonzeros']:>12,}{layer['dense_params']:>15,}"
        )
    lines.append(
        f"{'total':<17}{'':>9}{'':>10}{'':>9}{info['nonzero_weights']:>12,}"
        f"{info['dense_equivalent_params']:>15,}"
    )
    lines.append("families: unit families over the memory index (computed / all, the rest "
                 "pass a family through)")
    lines.extend(_forms(info))
    if info["inputs"] or info["outputs"]:
        lines.append("inputs: " + ", ".join(f"{k}@{v}" for k, v in info["inputs"].items()))
        lines.append("outputs: " + ", ".join(f"{k}@{v}" for k, v in info["outputs"].items()))
    if info["memory_map"]:
        shown = list(info["memory_map"].items())[:40]
        lines.append("memory map: " + ", ".join(f"{k}={v}" for k, v in shown)
                     + (" ..." if len(info["memory_map"]) > 40 else ""))
    return "\n".join(lines)
