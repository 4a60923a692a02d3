"""The families encoding's cheaper ways of computing the same values (issue 22): a reduction
whose families are combined per word before they are summed, and a pending product whose
foldable rows fold while the others are computed first. Each is taken only where it costs
fewer products; the model must still equal the formula (and numpy) exactly."""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
from onnx import numpy_helper

from mlpc.compiler.encodings import ExportOptions
from mlpc.compiler.export_onnx import build_step_model
from mlpc.compiler.network import Lin, Network, SpaceBuilder, state_space
from mlpc.runtime.numpy_exec import NumpyExecutor


def _run(net: Network, x: np.ndarray) -> tuple[np.ndarray, list[str]]:
    model = build_step_model(net, ExportOptions())
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    names = [n.name for n in model.graph.node] + [n.name for f in model.functions
                                                   for n in f.node]
    return session.run(None, {"state": x})[0], names


def _step_tables(n: int, columns: int, seed: int) -> tuple[Network, np.ndarray]:
    """x in [0, n]; y_i = sum_j w_ij [x >= j] with [x >= j] = relu(x - j + 1) - relu(x - j)
    (two families of one stack, `columns` weighted sums of their combination)."""
    rng = np.random.default_rng(seed)
    w = rng.integers(-5, 6, (columns, n))
    names = [f"y{i}" for i in range(columns)]
    x = state_space(scalars=(("x", 0, n),) + tuple((y, -5 * n, 5 * n) for y in names),
                    families=())
    b = SpaceBuilder("h", True, x)
    b.unit("P", b.s("x") + 1 + Lin(slope=-1), length=n)
    b.unit("Q", b.s("x") + Lin(slope=-1), length=n)
    b.unit("x", b.s("x"))
    h = b.build()
    z = SpaceBuilder("next", False, h)
    z.linear("x", z.s("x"), 0, n)
    for i, y in enumerate(names):
        z.linear(y, z.sum(z.v("P") - z.v("Q"), 0, 1, tuple(int(v) for v in w[i])), -5 * n, 5 * n)
    return Network(x, (h, z.build())), w


def test_a_reduction_combines_its_families_first_when_that_costs_fewer_products() -> None:
    net, w = _step_tables(200, 20, 3)  # whole: 2 * 200 * 20 products; combined: 200 * 22
    xs = np.zeros((5, 21), dtype=np.int64)
    xs[:, 0] = [0, 1, 57, 199, 200]
    want = np.concatenate([xs[:, :1], (np.arange(200)[None, :] <= xs[:, :1]).astype(np.int64)
                           @ w.T], axis=1)
    assert np.array_equal(NumpyExecutor(net, check=True).step(xs), want)
    got, names = _run(net, xs)
    assert np.array_equal(got, want)
    assert any(n.endswith("/words") or "/words#" in n for n in names)
    small, _ = _step_tables(20, 2, 4)  # whole sums cost fewer products than one more op
    assert not any("/words" in n for n in _run(small, np.zeros((1, 3), np.int64))[1])


def _wrap_flag(copies: int) -> Network:
    """u in [0, 2^40]; q = [u >= 2^39] = relu(u - 2^39 + 1) - relu(u - 2^39) in a linear
    space, then f = 2^30 q: folding f's row multiplies 2^30 into units that reach 2^40, past
    2^63, while the `copies` copied scalars fold freely."""
    t = 1 << 39
    names = [f"s{i}" for i in range(copies)]
    x = state_space(scalars=(("u", 0, 1 << 40), ("f", 0, 1 << 30))
                    + tuple((s, 0, 10) for s in names), families=())
    b = SpaceBuilder("h", True, x)
    b.unit("A", b.s("u") - t + 1)
    b.unit("B", b.s("u") - t)
    for s in ("u", *names):
        b.unit(s, b.s(s))
    h = b.build()
    z = SpaceBuilder("z", False, h)
    z.linear("q", z.s("A") - z.s("B"), 0, 1)
    for s in ("u", *names):
        z.linear(s, z.s(s), 0, 1 << 40 if s == "u" else 10)
    z1 = z.build()
    z = SpaceBuilder("next", False, z1)
    z.linear("u", z.s("u"), 0, 1 << 40)
    z.linear("f", (1 << 30) * z.s("q"), 0, 1 << 30)
    for s in names:
        z.linear(s, z.s(s), 0, 10)
    return Network(x, (h, z1, z.build()))


def test_a_pending_product_folds_its_foldable_rows_and_computes_the_others_first() -> None:
    net = _wrap_flag(60)
    rng = np.random.default_rng(8)
    xs = np.concatenate([np.array([[0], [1 << 39], [(1 << 39) - 1], [1 << 40]]),
                         np.zeros((4, 1), np.int64), rng.integers(0, 11, (4, 60))], axis=1)
    want = xs.copy()
    want[:, 1] = (xs[:, 0] >= 1 << 39) * (1 << 30)
    assert np.array_equal(NumpyExecutor(net, check=True).step(xs), want)
    got, names = _run(net, xs)
    assert np.array_equal(got, want)
    assert any("scalars_first" in n for n in names)  # q first, the copies folded
    assert not any("unfolded" in n for n in names)


def test_the_scalar_columns_relu_is_max_with_a_column_of_zeros() -> None:
    """onnxruntime walks a scalar 0 against the column's trailing axis of 1 element by element
    (about 15 ns each at batch 64, measured by benchmarks/bench_nodes.py); a zeros constant
    of the column's own shape [1, ns + 1, 1] takes its fast path, with the same result."""
    net = _wrap_flag(3)
    model = build_step_model(net, ExportOptions())
    consts = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    relus = [n for n in [*model.graph.node, *(n for f in model.functions for n in f.node)]
             if n.op_type == "Max" and "relu_scalars" in n.name]
    assert relus
    for node in relus:
        zeros = consts[node.input[1]]
        assert zeros.shape == (1, len(net.spaces[0].scalars) + 1, 1)
        assert not zeros.any()
    xs = np.array([[(1 << 39) + 5, 0, 1, 2, 3]], dtype=np.int64)
    want = xs.copy()
    want[:, 1] = 1 << 30
    assert np.array_equal(_run(net, xs)[0], want)
