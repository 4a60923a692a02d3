"""The CFG clean-ups (`cfg_opt`): each pass on hand-written macro code with its exact result,
and on lowered programs, where they must save words and steps without changing behaviour."""

from __future__ import annotations

import sys
from dataclasses import replace
from pathlib import Path

from test_lowering import compile_tl, observable, run_image, run_source_text

from mlpc.compiler import cfg_opt
from mlpc.compiler import macros as mc
from mlpc.compiler.checker import check_program
from mlpc.compiler.digraph import edges
from mlpc.compiler.lowering import LoweringOptions, lower_macros
from mlpc.compiler.parser import parse_program


def program(*code: mc.Macro, local: frozenset[str] = frozenset()) -> mc.MacroProgram:
    return mc.MacroProgram(tuple(code), (), local_cells=local)


def test_cfg_edges_include_calls_and_their_return_points() -> None:
    code = (mc.Call("f", "ra"), mc.Halt(), mc.Label("f"), mc.Ret("ra"))
    graph = cfg_opt.build_cfg(code)
    assert sorted(edges(graph)) == [(0, 1), (0, 2), (2, 3)]


def test_unreachable_code_is_removed() -> None:
    code = (mc.Jmp("end"), mc.Out(mc.const(1)), mc.Label("dead"), mc.Out(mc.const(2)),
            mc.Label("end"), mc.Halt())
    result = cfg_opt.remove_unreachable(program(*code))
    assert result.program.code == (mc.Jmp("end"), mc.Label("end"), mc.Halt())
    assert result.counts == {"unreachable": 2}


def test_jump_threading_chains_and_halts() -> None:
    code = (
        mc.Jump("lt", "x", "a"),  # a -> b -> c: threaded to c
        mc.Jmp("h"),  # a jump to HALT becomes HALT
        mc.Label("a"), mc.Jmp("b"),
        mc.Label("b"), mc.Jmp("c"),  # to the very next macro: dropped
        mc.Label("c"), mc.Jump("eq", "y", "n"),
        mc.Jmp("h"),
        mc.Label("n"), mc.Jmp("next"),
        mc.Label("next"),
        mc.Label("h"), mc.Halt(),
    )
    result = cfg_opt.thread_jumps(program(*code))
    assert [m.text() for m in result.program.code] == [
        "JLT x, c", "HALT", "a:", "JMP c", "b:", "c:", "JEQ y, next", "HALT", "n:", "HALT",
        "next:", "h:", "HALT",
    ]
    assert result.counts == {"threaded": 6, "jumps_removed": 1, "branches_inverted": 0}


def test_branch_over_a_jump_is_inverted() -> None:
    code = (mc.Jump("lt", "x", "l1"), mc.Jmp("l2"), mc.Label("l1"), mc.Out("x"),
            mc.Label("l2"), mc.Out("y"), mc.Halt())
    result = cfg_opt.thread_jumps(program(*code))
    assert result.program.code == (mc.Jump("ge", "x", "l2"), mc.Label("l1"), mc.Out("x"),
                                   mc.Label("l2"), mc.Out("y"), mc.Halt())
    assert result.counts == {"threaded": 0, "jumps_removed": 0, "branches_inverted": 1}


def test_dead_stores_to_temporaries() -> None:
    t = frozenset({"t"})
    dead = program(mc.Mov("t", mc.const(1)), mc.Mov("t", mc.const(2)), mc.Out("t"), mc.Halt(),
                   local=t)
    result = cfg_opt.remove_dead_stores(dead)
    assert result.counts == {"dead_stores": 1}
    assert result.program.code[0] == mc.Mov("t", mc.const(2))
    # live across a call (read after the return) and inside the callee: both kept
    across = (mc.Mov("t", mc.const(1)), mc.Call("f", "ra"), mc.Out("t"), mc.Halt(),
              mc.Label("f"), mc.Ret("ra"))
    assert cfg_opt.remove_dead_stores(program(*across, local=t)).counts["dead_stores"] == 0
    inside = (mc.Mov("t", mc.const(1)), mc.Call("f", "ra"), mc.Halt(),
              mc.Label("f"), mc.Out("t"), mc.Ret("ra"))
    assert cfg_opt.remove_dead_stores(program(*inside, local=t)).counts["dead_stores"] == 0
    # a user variable is never removed, even if nothing reads it
    user = (mc.Mov("x", mc.const(1)), mc.Halt())
    assert cfg_opt.remove_dead_stores(program(*user, local=t)).counts["dead_stores"] == 0
    # an addition reads its destination, so the store before it is live
    add = (mc.Mov("t", mc.const(1)), mc.Add("t", mc.const(2)), mc.Out("t"), mc.Halt())
    assert cfg_opt.remove_dead_stores(program(*add, local=t)).counts["dead_stores"] == 0


SOURCE = """output r;
func f(x) {
    if (x > 10) { return 1; } else { return 2; }
    print("never");
}
var i = 0;
while (i < 20) {
    if (i % 3 == 0) {
        if (i > 5) { r += f(i); } else { r += 2; }
    } else { r -= 1; }
    i += 1;
}
"""


def test_clean_ups_on_a_lowered_program() -> None:
    checked = check_program(parse_program(SOURCE, "t.tl"), 32)
    plain = lower_macros(checked, LoweringOptions())
    result = cfg_opt.optimize(plain)
    stats = result.stats
    assert stats["unreachable"] == 7  # CLEAR $rv after the if, and the 6 OUTs of "never"
    assert (stats["threaded"], stats["jumps_removed"]) == (1, 1)  # the inner if's JMP to a JMP
    before, after = compile_tl(SOURCE, optimize=False), compile_tl(SOURCE)
    assert len(after.words) < len(before.words)
    run_before, run_after = run_image(before), run_image(after)
    assert observable(run_before.report) == observable(run_after.report)
    # 0, 3: +2 each; 6, 9: f = 2 each; 12, 15, 18: f = 1 each; 13 others: -1 each
    assert run_after.report.outputs == (("r", -2),) == run_source_text(SOURCE).outputs
    assert run_after.report.steps < run_before.report.steps


def test_saves_of_cells_dead_after_a_recursive_call_are_pruned() -> None:
    """In `return f(n - 1) + k;` neither n nor the temporary holding n - 1 is read after
    the call, so only the return address and k stay saved."""
    source = "output r;\nfunc f(n) {\n  var k = n * 2;\n  if (n == 0) { return 0; }\n" \
             "  return f(n - 1) + k;\n}\nr = f(10);\n"
    checked = check_program(parse_program(source, "t.tl"), 32)
    plain = lower_macros(checked, LoweringOptions())
    saves = [m for m in plain.code if isinstance(m, mc.Save)]
    assert [m.cells for m in saves] == [("f.n", "f.k", "f.$ra")]
    result = cfg_opt.optimize(plain)
    saves = [m for m in result.program.code if isinstance(m, (mc.Save, mc.Restore))]
    assert [m.cells for m in saves] == [("f.k", "f.$ra"), ("f.k", "f.$ra")]
    assert result.stats["saves_pruned"] == 1
    before, after = run_image(compile_tl(source, optimize=False)), run_image(compile_tl(source))
    assert before.report.outputs == after.report.outputs == (("r", 110),)
    assert after.report.steps < before.report.steps


def test_passes_run_in_order_to_a_fixed_point_and_report_by_kind() -> None:
    """`optimize` runs `PASSES` round after round until no pass changes anything; a new pass
    is one function in the list, and its counts appear in the statistics."""
    assert [p.__name__ for p in cfg_opt.PASSES] == [
        "remove_unreachable", "thread_jumps", "remove_dead_stores", "prune_saves"]
    checked = check_program(parse_program(SOURCE, "t.tl"), 32)
    plain = lower_macros(checked, LoweringOptions())
    stats = cfg_opt.optimize(plain).stats
    assert list(stats.counts) == ["unreachable", "threaded", "jumps_removed",
                                  "branches_inverted", "dead_stores", "saves_pruned",
                                  "labels_dropped"]
    assert stats.rounds >= 2  # the last round changed nothing

    def drop_outs(p: mc.MacroProgram) -> cfg_opt.PassResult:
        code = tuple(m for m in p.code if not isinstance(m, mc.Out))
        return cfg_opt.PassResult(replace(p, code=code), {"outs": len(p.code) - len(code)})

    code = (mc.Out("x"), mc.Jmp("end"), mc.Out("y"), mc.Label("end"), mc.Halt())
    result = cfg_opt.optimize(program(*code), passes=(drop_outs, *cfg_opt.PASSES))
    # round 1: both OUTs go, the JMP to HALT becomes HALT; round 2: the old HALT is
    # unreachable; round 3 changes nothing
    assert result.program.code == (mc.Halt(),)
    assert {k: n for k, n in result.stats.counts.items() if n} == {
        "outs": 2, "threaded": 1, "unreachable": 1}
    assert result.stats.rounds == 3 and result.stats.total() == 4
    assert cfg_opt.optimize(program(*code)).program.code == (mc.Out("x"), mc.Halt())
    # no passes: only the final tidying (labels nothing jumps to)
    bare = cfg_opt.optimize(program(*code, mc.Label(".x")), passes=())
    assert bare.program.code == code and bare.stats.counts == {"labels_dropped": 1}


def test_the_benchmark_reports_what_each_pass_saves() -> None:
    """`benchmarks/bench_lowering.py` compiles each prefix of `PASSES`: what each pass saves
    over the ones before it adds up to what the clean-ups save together."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
    from bench_lowering import Program, _saved, measure

    row = measure(Program("t", SOURCE, (), (), expected=((("r", -2),), (), "halted")))
    assert list(row.by_pass) == [p.__name__ for p in cfg_opt.PASSES]
    assert row.by_pass["prune_saves"] == row.after  # the last prefix is the whole clean-up
    saved = {name: _saved([row], name) for name in row.by_pass}
    assert sum(s["image_words"] for s in saved.values()) == (
        row.before.image_words - row.after.image_words) > 0
    assert sum(s["steps"] for s in saved.values()) == row.before.steps - row.after.steps > 0
    assert saved["remove_unreachable"]["image_words"] > 0  # the 7 unreachable macros
    assert saved["thread_jumps"]["steps"] > 0
    assert measure(Program("t", SOURCE, (), ()), by_pass=False).by_pass == {}
