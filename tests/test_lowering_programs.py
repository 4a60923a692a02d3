"""Random whole programs: the lowering (on the reference interpreter) against the source
interpreter. Programs mix globals, an array indexed by computed values (traps included),
compound assignments, calls with side effects on globals, a recursive function, loops with
break/continue, read(), write() and print()."""

from __future__ import annotations

import pytest
from conftest import MANY_PHASES
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_lowering import observable, run_source_text, run_tl

VARS = ("g0", "g1", "g2")
BIN = ("+", "-", "*", "/", "%", "<<", ">>", "&", "|", "^", "<", "<=", ">", ">=", "==", "!=",
       "&&", "||")
ASSIGN = ("=", "+=", "-=", "*=", "/=", "%=")

PRELUDE = """input i0, i1;
output g0, g1, g2;
var arr[4] = {5, -6, 7, 100};
func side(x) { g2 += x; return g2 * 2 - x; }
func rec(n, acc) { if (n <= 0) { return acc; } return rec(n - 1, acc + n * g1) + 1; }
func rec2(a, b) { if (a <= 0) { return b; } return rec2(a - 1, b + 2) * 3 + a; }
func sw(a, b, d) { if (d <= 0) { return a - b; } return sw(b, a, d - 1); }
"""


def _expr(depth: int) -> st.SearchStrategy[str]:
    leaf = st.one_of(
        st.sampled_from(VARS + ("i0", "i1")),
        st.integers(-40, 40).map(lambda v: f"({v})"),
        st.sampled_from(["2147483647", "(-2147483648)", "31", "32"]),
        st.just("read()"),
    )
    if depth <= 0:
        return leaf
    sub = _expr(depth - 1)
    return st.one_of(
        leaf,
        st.tuples(sub, st.sampled_from(BIN), sub).map(lambda t: f"({t[0]} {t[1]} {t[2]})"),
        st.tuples(st.sampled_from(["-", "!", "~"]), sub).map(lambda t: f"({t[0]}{t[1]})"),
        sub.map(lambda x: f"arr[{x} & 3]"),
        sub.map(lambda x: f"arr[({x}) % 5]"),
        st.tuples(st.sampled_from(VARS + ("i1",)), st.sampled_from(["+", "-"]),
                  st.integers(-2, 3)).map(lambda t: f"arr[{t[0]} {t[1]} {t[2]}]"),
        sub.map(lambda x: f"side({x})"),
        st.tuples(st.integers(0, 6), sub).map(lambda t: f"rec({t[0]}, {t[1]})"),
        st.tuples(st.integers(0, 5), sub).map(lambda t: f"rec2({t[0]}, {t[1]})"),
        st.tuples(sub, sub, st.integers(0, 3)).map(lambda t: f"sw({t[0]}, {t[1]}, {t[2]})"),
    )


def _target() -> st.SearchStrategy[str]:
    return st.one_of(st.sampled_from(VARS),
                     _expr(1).map(lambda x: f"arr[{x} & 3]"),
                     st.tuples(st.sampled_from(VARS), st.integers(-2, 3)).map(
                         lambda t: f"arr[{t[0]} + {t[1]}]"),
                     st.integers(-1, 4).map(lambda k: f"arr[{k}]"))


def _statement(depth: int) -> st.SearchStrategy[str]:
    simple = st.one_of(
        st.tuples(_target(), st.sampled_from(ASSIGN), _expr(2)).map(
            lambda t: f"{t[0]} {t[1]} {t[2]};"),
        _expr(2).map(lambda x: f"write({x});"),
        _expr(2).map(lambda x: f'print("v=", {x}, " ");'),
        _expr(1).map(lambda x: f"side({x});"),
    )
    if depth <= 0:
        return simple
    block = st.lists(_statement(depth - 1), min_size=1, max_size=3).map(" ".join)
    return st.one_of(
        simple,
        st.tuples(_expr(2), block, block).map(
            lambda t: f"if ({t[0]}) {{ {t[1]} }} else {{ {t[2]} }}"),
        st.tuples(st.integers(0, 4), _expr(1), block).map(
            lambda t: f"for (var k = 0; k < {t[0]}; k += 1) {{ if ({t[1]}) {{ continue; }} "
                      f"{t[2]} if (g0 == 3) {{ break; }} }}"),
    )


RANDOM_PROGRAMS = dict(
    body=st.lists(_statement(2), min_size=1, max_size=6),
    i0=st.integers(-(1 << 31), (1 << 31) - 1), i1=st.integers(-50, 50),
    tape=st.lists(st.integers(-100, 100), max_size=4))
_RANDOM_SETTINGS = dict(deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                              HealthCheck.data_too_large])


@settings(max_examples=50, **_RANDOM_SETTINGS)  # the default run's share
@given(**RANDOM_PROGRAMS)
def test_random_programs_match_the_source_interpreter(body: list[str], i0: int, i1: int,
                                                      tape: list[int]) -> None:
    check_random_program(body, i0, i1, tape)


@pytest.mark.slow
@settings(phases=MANY_PHASES, max_examples=600, **_RANDOM_SETTINGS)
@given(**RANDOM_PROGRAMS)
def test_random_programs_match_the_source_interpreter_many(body: list[str], i0: int, i1: int,
                                                           tape: list[int]) -> None:
    check_random_program(body, i0, i1, tape)


def check_random_program(body: list[str], i0: int, i1: int, tape: list[int]) -> None:
    """The generated statements, compiled with and without the CFG optimisations, against
    the source interpreter."""
    source = PRELUDE + "\n".join(body) + "\n"
    inputs = {"i0": i0, "i1": i1}
    expected = run_source_text(source, inputs, tuple(tape))
    for optimize in (True, False):
        got = run_tl(source, inputs, tuple(tape), optimize=optimize).report
        assert observable(got) == observable(expected), source
