"""The encodings behind one interface (`compiler/encodings.py`): each `--weights` name is
one line of `limits.ENCODINGS` naming its module, and the exporter knows them only through
`Encoding`; no exporter module imports another in a cycle."""

from __future__ import annotations

import ast
import dataclasses
from pathlib import Path

import pytest

from mlpc.compiler.encodings import Encoding, ExportOptions, encoding
from mlpc.compiler.export_onnx import build_step_model, check_options
from mlpc.compiler.limits import DEFAULT_UNROLL, DTYPES, ENCODINGS, WEIGHTS
from mlpc.compiler.network import Lin, Network, SpaceBuilder, state_space
from mlpc.compiler.onnx_graph import ExportError

COMPILER = Path(__file__).resolve().parents[1] / "compiler"
EXPORTERS = ("encodings", "export_onnx", "export_families", "export_sparse", "export_dense")


def _tiny() -> Network:
    """state (x in [0, 10], v[4] in [0, 3]) -> relu(v + x - j) -> its sum -> next state."""
    x = state_space(scalars=(("x", 0, 10),), families=(("v", 4, 0, 3),))
    h = SpaceBuilder("h", True, x)
    h.unit("f", h.v("v") + h.s("x") + Lin(slope=-1))
    h.unit("v", h.v("v"))
    h1 = h.build()
    z = SpaceBuilder("next", False, h1)
    z.linear("v", z.v("v"), 0, 3)
    z.linear("x", z.sum(z.v("f"), 0, 13) - z.sum(z.v("f"), 0, 13), 0, 10)
    return Network(x, (h1, z.build()))


def test_each_encoding_is_a_registered_module_with_the_interface() -> None:
    assert WEIGHTS == tuple(ENCODINGS) and set(WEIGHTS) == {"families", "sparse", "dense"}
    defaults = ExportOptions()
    assert (defaults.weights, defaults.dtype, defaults.unroll) == (
        WEIGHTS[0], DTYPES[0], DEFAULT_UNROLL)
    methods = {name for name in vars(Encoding) if not name.startswith("_")} - {"prover"}
    assert methods == {"check", "prepare", "value_infos", "split", "emit", "event_shape",
                       "tap", "join"}
    for name, info in ENCODINGS.items():
        assert info.name == name and set(info.dtypes) <= set(DTYPES)
        cls = encoding(name)
        assert cls.__module__ == info.module
        for method in methods:
            assert callable(getattr(cls, method)), (name, method)


def test_a_new_encoding_is_one_registry_line(monkeypatch: pytest.MonkeyPatch) -> None:
    """The exporter has no case for any encoding's name: the sparse module registered
    under another name writes the same model, byte for byte, and is checked alike."""
    network = _tiny()
    again = dataclasses.replace(ENCODINGS["sparse"], name="sparse_again")
    monkeypatch.setitem(ENCODINGS, "sparse_again", again)
    for weights in ("sparse", "sparse_again"):
        with pytest.raises(ExportError, match="float64 needs --weights families"):
            check_options(network, ExportOptions(weights=weights, dtype="float64"))
    models = [build_step_model(network, ExportOptions(weights=w)).SerializeToString()
              for w in ("sparse", "sparse_again")]
    assert models[0] == models[1]
    with pytest.raises(ExportError, match="unknown weights encoding 'sparse_too'"):
        check_options(network, ExportOptions(weights="sparse_too"))


def test_dense_refuses_what_its_registry_line_limits(monkeypatch: pytest.MonkeyPatch) -> None:
    network = _tiny()
    check_options(network, ExportOptions(weights="dense"))
    monkeypatch.setitem(ENCODINGS, "dense", dataclasses.replace(ENCODINGS["dense"],
                                                                max_elements=1))
    with pytest.raises(ExportError, match=r"dense weights would have \d+ entries \(more than 1\)"):
        check_options(network, ExportOptions(weights="dense"))


def _imports(module: str) -> set[str]:
    """The project modules `compiler/<module>.py` imports when it runs (not the imports
    only a type checker reads)."""
    tree = ast.parse((COMPILER / f"{module}.py").read_text())
    found = set()
    for node in tree.body:  # top level: `if TYPE_CHECKING:` blocks are skipped
        if isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return {m.removeprefix("mlpc.compiler.") for m in found if m.startswith("mlpc.")}


def test_no_cycle_between_the_exporter_modules() -> None:
    assert _imports("encodings") == {"limits", "machine_config"}  # only the leaves
    graph = {m: _imports(m) & set(EXPORTERS) for m in EXPORTERS}
    assert graph["export_onnx"] == {"encodings", "export_families"}  # the read-out's
    done: set[str] = set()

    def visit(module: str, path: tuple[str, ...]) -> None:
        assert module not in path, f"import cycle: {' -> '.join((*path, module))}"
        if module not in done:
            for other in graph[module]:
                visit(other, (*path, module))
            done.add(module)

    for module in EXPORTERS:
        visit(module, ())
