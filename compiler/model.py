"""The last stage of the pipeline: a SUBLEQ image -> the machine's step network (codegen;
universal, or specialised to the image's constant words) -> an ONNX model (an encoding of
the exporter), with the metadata that describes it.

    image  --codegen-->  step network  --export_onnx-->  ONNX model (+ metadata)

The driver (`compiler/driver.py`) takes a program as far as its image; this module takes it
from there. It also holds what the model says of the program's names (`tensor_name`) and
what `--specialise` folds into the weights (`read_only_of`).
"""

from __future__ import annotations

import json
from collections import Counter
from typing import TYPE_CHECKING, Any

from mlpc import __version__
from mlpc.compiler.assembler import disassemble
from mlpc.compiler.codegen import ReadOnly, StepNetwork, build_step_network
from mlpc.compiler.encodings import ExportOptions
from mlpc.compiler.export_onnx import (
    ModelInterface,
    build_model,
    build_step_model,
    check_options,
)
from mlpc.compiler.image import SubleqImage, merge_ranges
from mlpc.compiler.limits import ENCODINGS, MAX_BUDGET
from mlpc.compiler.machine_config import Fault, MachineConfig
from mlpc.compiler.network import FLOAT64_EXACT, Network, RangeError
from mlpc.compiler.onnx_graph import ExportError
from mlpc.compiler.runs import NEGATIVE, POSITIVE, WRITE_SLOTS
from mlpc.compiler.sparse import SparseNetwork, lower_to_sparse
from mlpc.errors import MlpcError

if TYPE_CHECKING:
    import onnx

RESERVED_TENSORS = (
    "output_tape", "output_length", "status", "fault", "steps", "memory", "final_state",
    "trap", "trap_line", "tape", "tape_length", "max_steps", "resume_state",
)


def tensor_name(name: str, kind: str) -> str:
    """The ONNX tensor of a program input or output: its own name, or `input.NAME` /
    `output.NAME` when the name is one of the model's own tensors (`.tl` names have no dot,
    so these cannot clash)."""
    return f"{kind}.{name}" if name in RESERVED_TENSORS else name


def compile_model(
    image: SubleqImage, config: MachineConfig, options: ExportOptions | None = None,
    specialise: bool = False, runs: bool = True,
) -> onnx.ModelProto:
    """SUBLEQ image -> step network (codegen; universal, or specialised to the image's
    constant words) -> ONNX model (exporter), with metadata."""
    options = options or ExportOptions()
    # the network's ranges (and so its exactness) hold for words of the machine only
    config.check_words("memory image", image.words)
    read_only = read_only_of(image, config) if specialise else None
    step = exportable_step(config, options, read_only, runs)
    net = step.network
    sparse = lower_to_sparse(net)  # the sizes the metadata reports
    metadata = {
        **machine_metadata(step, options, sparse),
        **form_metadata(step, image, sparse),
        "memory_map": json.dumps(dict(image.symbols)),
        "inputs": json.dumps(dict(image.inputs)),
        "outputs": json.dumps(dict(image.outputs)),
        "tensor_names": json.dumps(
            {"inputs": {n: tensor_name(n, "input") for n, _ in image.inputs},
             "outputs": {n: tensor_name(n, "output") for n, _ in image.outputs}}
        ),
        "trap": json.dumps(
            None if image.trap is None
            else {"code_address": image.trap.code_address,
                  "line_address": image.trap.line_address}
        ),
        "source_path": image.source_path,
        "source": image.source_text,
        "listing": image.listing or disassemble(image.words, image.symbol_table()),
        # [start, end, line]: the words each source line compiled to (mlpc web marks the line)
        "source_lines": json.dumps([[s.start, s.end, s.line] for s in image.spans if s.line]),
    }
    form = "specialised to this program, " if read_only else ""
    per = ("iteration: a SUBLEQ step or a straight-line run of them" if step.runs
           else "SUBLEQ step")
    doc = (
        f"mlpc: {image.source_path} as a looped ReLU-MLP ({net.relu_layers} ReLU layers per "
        f"{per}, {form}m={config.memory}, W={config.word_bits}, {options.dtype})"
    )
    try:  # the build-time proof of exactness refuses what it cannot prove
        return build_model(net, model_interface(step, image), options,
                           tuple(metadata.items()), doc, step.readout)
    except ExportError as exc:
        raise MlpcError(str(exc)) from None


def model_interface(step: StepNetwork, image: SubleqImage) -> ModelInterface:
    """Describe the state vector to the (SUBLEQ-agnostic) ONNX exporter."""
    layout = step.layout
    cfg = layout.config
    trap = image.trap
    return ModelInterface(
        n_state=layout.size,
        memory=cfg.memory,
        offset=1 << (cfg.word_bits - 1),
        image=tuple(image.words),
        tape_capacity=cfg.tape_in,
        tape_start=layout.tape.start,
        slot=tuple((name, layout.index(name)) for name in layout.names[layout.scalars]),
        initial_scalars=(("pc1", 1), ("live", 1)),
        inputs=tuple((tensor_name(n, "input"), a) for n, a in image.inputs),
        outputs=tuple((tensor_name(n, "output"), a) for n, a in image.outputs),
        trap_code_address=trap.code_address if trap else -1,
        trap_line_address=trap.line_address if trap else -1,
        tape_overflow_fault=int(Fault.TAPE_TOO_LONG),
        max_budget=MAX_BUDGET,
        pending_write=("wa2", "wo", "wv"),
        state_words=layout.memory_words if layout.read_only else (),
        tape_length_address=(-1 if image.tape_length_address is None
                             else image.tape_length_address),
        state_bounds=tuple((d.lo, d.hi) for d in step.network.state.families
                           for _ in range(d.length))
        + tuple((d.lo, d.hi) for d in step.network.state.scalars),
        input_range_fault=int(Fault.INPUT_RANGE),
        invalid_resume_fault=int(Fault.INVALID_RESUME),
    )


def read_only_of(image: SubleqImage, config: MachineConfig) -> ReadOnly:
    """The constant words of a program for `--specialise`: every word outside the ranges
    its front end declared writable (a `.tl` lowering records them; `--read-only` declares
    them for other programs), with their values. The named inputs are always writable (the
    model writes them before the first step), and so is the tape length's cell."""
    if image.writable is None:
        raise MlpcError(
            f"{image.source_path}: --specialise needs to know which words the program writes: "
            "a .tl program records them; for SUBLEQ code declare the constant ones with "
            "--read-only START-END"
        )
    words = {j for start, end in image.writable for j in range(start, min(end, config.memory))}
    words.update(address for _, address in image.inputs)
    if image.tape_length_address is not None:
        words.add(image.tape_length_address)
    if not words:
        raise MlpcError(f"{image.source_path}: --specialise: the program writes no word")
    return ReadOnly(tuple(sorted(words)), tuple(image.words), image.direct_reads)


def network_sizes(network: Network, sparse: SparseNetwork | None = None) -> dict[str, int]:
    """What one step costs: the state's size, the elements it computes (the units of every
    definition that is not a pass-through) and the non-zero weights of its sparse form
    (`sparse`, when the caller has lowered it already)."""
    return {
        "state": network.n_state,
        "elements_per_step": sum(d.length or 1 for s in network.spaces
                                 for d in s.definitions() if not d.passthrough),
        "nonzero_weights": (sparse or lower_to_sparse(network)).nnz,
    }


def form_metadata(step: StepNetwork, image: SubleqImage, sparse: SparseNetwork
                  ) -> dict[str, str]:
    """Which network a model holds: `universal` (any program of its machine) or
    `specialised` (this program's constant words folded into the weights: their ranges),
    and the sizes of both forms when the program's writable words are known (`sparse`: the
    step's own network lowered)."""
    config = step.layout.config
    ro = step.read_only
    universal = (network_sizes(step.network, sparse) if ro is None
                 else network_sizes(build_step_network(config).network))
    forms = {"universal": universal}
    if ro is not None:
        forms["specialised"] = network_sizes(step.network, sparse)
        if step.runs:
            forms["specialised_one_step"] = network_sizes(
                build_step_network(config, ro, False).network)
    elif image.writable is not None:
        special = specialised_step(config, read_only_of(image, config), "int64")
        forms["specialised"] = network_sizes(special.network)
    meta = {"network_form": "universal" if ro is None else "specialised",
            "network_sizes": json.dumps(forms)}
    if ro is not None:
        writable = set(ro.writable)
        constant = merge_ranges([(j, j + 1) for j in range(config.memory) if j not in writable])
        meta["constant_words"] = json.dumps([list(r) for r in constant])
        meta["state_words"] = json.dumps(list(ro.writable))
    if step.runs:
        meta["runs"] = json.dumps(run_summary(step, forms))
    return meta


def run_summary(step: StepNetwork, forms: dict[str, dict[str, int]]) -> dict[str, Any]:
    """The straight-line runs of a specialised network (docs/network.md, "Many steps per
    iteration"): how many, their static lengths (length: how many runs), the slots, and the
    elements per iteration they add to the network of one step per iteration."""
    lengths = Counter(r.length for r in step.runs)
    return {
        "count": len(step.runs),
        "lengths": {str(n): lengths[n] for n in sorted(lengths)},
        "write_slots": WRITE_SLOTS,
        "reads_per_slot": {"added": POSITIVE, "subtracted": NEGATIVE},
        "elements_per_step_added": (forms["specialised"]["elements_per_step"]
                                    - forms["specialised_one_step"]["elements_per_step"]),
    }


def machine_metadata(step: StepNetwork, options: ExportOptions, sparse: SparseNetwork
                     ) -> dict[str, str]:
    """The metadata a model shares with every program on its machine: version, machine,
    encoding, layers and the state layout (`sparse`: the step's network lowered)."""
    net = step.network
    return {
        "mlpc_version": __version__,
        "memory_words": str(step.layout.config.memory),
        "word_bits": str(step.layout.config.word_bits),
        "tape_in": str(step.layout.config.tape_in),
        "tape_out": str(step.layout.config.tape_out),
        "relu_layers_per_step": str(net.relu_layers),
        # ReLU layers after the loop, once per run (the results: `codegen.readout_network`)
        "readout_layers": str(step.readout.relu_layers if step.readout else 0),
        "unroll": str(options.unroll),
        "weights": options.weights,
        "dtype": options.dtype,
        "nonzero_weights": str(sparse.nnz),
        "layers": json.dumps(layer_summary(net, sparse)),
        "state_layout": json.dumps(
            {"n_state": step.layout.size,
             "scalars": {s: step.layout.index(s) for s in step.layout.names[step.layout.scalars]},
             "tape_start": step.layout.tape.start, "pending_write": ["wa2", "wo", "wv"],
             # each state component's declared [lo, hi] (V, t: every word of the family):
             # the box `mlpc audit` draws its states from
             "ranges": {d.name: [d.lo, d.hi] for d in net.state.definitions()}}
        ),
    }


def exportable_step(config: MachineConfig, options: ExportOptions,
                    read_only: ReadOnly | None = None, runs: bool = True) -> StepNetwork:
    """The machine's step network (specialised to `read_only` if given), checked exportable
    with `options` (one-line error if not: too much memory, float64 not provably exact,
    dense too large)."""
    try:
        step = specialised_step(config, read_only, options.dtype, runs)
        if read_only is not None:
            check_specialised_float64(step.network, config, options)
        check_options(step.network, options)
    except ValueError as exc:
        raise MlpcError(str(exc)) from None
    return step


def specialised_step(config: MachineConfig, read_only: ReadOnly | None, dtype: str,
                     runs: bool = True) -> StepNetwork:
    """The step network (`build_step_network`), with straight-line runs where it is
    specialised, except where the runs' tables would let a partial sum reach the dtype's
    exact range (2^53 in float64, 2^63 in int64: their constants, the reads' excesses
    S * #words, sum over every run start): that network keeps one step per iteration,
    exact as before."""
    try:
        step = build_step_network(config, read_only, runs)
    except RangeError:  # the runs' tables cannot be proven exact in int64: one step
        if not (runs and read_only is not None):
            raise
        return build_step_network(config, read_only, False)
    if (step.runs and dtype == "float64"
            and step.network.max_magnitude() >= FLOAT64_EXACT):
        return build_step_network(config, read_only, False)
    return step


def check_specialised_float64(network: Network, config: MachineConfig,
                              options: ExportOptions) -> None:
    """A specialised network folds the program's constant words into its weights, where
    they can take a partial sum past 2^53 while the universal network of the same machine
    stays exact in float64: then the refusal names --specialise as the cause, and says what
    works."""
    if options.dtype != "float64" or "float64" not in ENCODINGS[options.weights].dtypes:
        return  # not a float64 model, or refused for its weights
    worst = network.max_magnitude()
    if worst < FLOAT64_EXACT or build_step_network(config).network.max_magnitude() >= FLOAT64_EXACT:
        return  # exact, or not exact without --specialise either
    raise MlpcError(f"float64 is not exact for this program with --specialise: its constant "
                    f"words, folded into the weights, let a partial sum reach {worst} >= 2^53 "
                    "(use --dtype int64, or drop --specialise)")


def compile_step_model(config: MachineConfig, options: ExportOptions | None = None
                       ) -> onnx.ModelProto:
    """One step of the machine's network as its own model (state in, next state out), with
    the machine's metadata (`model_kind` = `step`; no program: the weights depend on the
    machine only)."""
    options = options or ExportOptions()
    step = exportable_step(config, options)
    sparse = lower_to_sparse(step.network)
    metadata = {"model_kind": "step", **machine_metadata(step, options, sparse)}
    del metadata["unroll"]
    doc = (f"mlpc: one SUBLEQ step as a ReLU-MLP ({step.network.relu_layers} ReLU layers, "
           f"m={config.memory}, W={config.word_bits}, {options.dtype}): state [batch, "
           f"{step.layout.size}] -> next_state; the layout is in the metadata (state_layout)")
    try:
        return build_step_model(step.network, options, tuple(metadata.items()), doc)
    except ExportError as exc:
        raise MlpcError(str(exc)) from None


def layer_summary(network: Network, sparse: SparseNetwork) -> list[dict[str, Any]]:
    """Each layer of the step (its linear spaces, then the ReLU that closes it): width,
    non-zero weights of its sparse form (`sparse`, the network lowered), units per family
    and scalars, for the metadata."""
    out = []
    for group, layer in zip(network.layers(), sparse.layers, strict=True):
        last = group[-1]
        out.append({
            "name": layer.name,
            "relu": layer.relu,
            "width": layer.width,
            "nonzeros": layer.nnz,
            "dense_params": layer.dense_params,
            "families": [[d.name, d.length] for d in last.families],
            "computed_families": sum(1 for d in last.families if not d.passthrough),
            "scalars": len(last.scalars),
            "factors": [[f.name, f.n_in, f.n_out, f.nnz] for f in layer.factors],
            "doc": layer.doc,
        })
    return out
