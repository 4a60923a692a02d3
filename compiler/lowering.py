"""Lowering: the checked `.tl` AST -> a macro program (`macros.MacroProgram`) -> SUBLEQ image.

`lower_macros` is the pass proper (checked AST -> macro IR); `lower_program` is what the
driver calls: it runs `lower_macros`, the CFG clean-ups (`cfg_opt.optimize`) and the
assembler (`macros.assemble`), and packages the result as a `SubleqImage`.

The pass is one object, `_Lowerer`, that walks the checked AST once, appending macros. Its
parts, one module per concern, each read top to bottom:

    lower_storage.py   the shared state: cells, labels, temporaries, trap stubs, frames,
                       the call graph (which calls are recursive)
    lower_arrays.py    array references, element addresses and bound checks, declarations
    lower_calls.py     calls: arguments, SAVE/RESTORE of recursive calls, stack arrays
    lower_expr.py      constant folding, values into cells, conditions as jumps
    lower_stmt.py      statements, loops, assignments, the order of the whole program
    lowering.py        (here) the operators' code (`_Lowerer._apply`), the data layout
                       (`macro_program`), and the entry points

Memory layout (addresses grow down the list)::

    code: main (top-level statements, then HALT), functions, runtime routines, trap stubs
    data: Z, T, T2, SP, trap code, trap line, $rv, routine cells, globals, arrays,
          function and main locals, temporaries, return addresses, constant pool
                                                         <- the image ends here
    stack: `stack` words (only when the program has recursive calls)

The CFG clean-ups drop the cells that are dead after a recursive call from its SAVE (see
`lower_calls` for the calling convention). Non-recursive programs need no stack at all.

The input tape's end. The machine cannot tell how long its tape is, so a program that uses
`eof()` has a hidden cell `$tape_left` that every engine writes with the run's tape length
before the first step (like a named input: `SubleqImage.tape_length_address`). Each `read()`
of such a program counts it down with one step (`SUBLEQ #1, $tape_left`); when that leaves
it at 0 or below, an out-of-line step sets it back to 0 (so reading past the end never makes
it wrap round to positive). `eof()` is `$tape_left <= 0`. Programs without `eof()` have
neither the cell nor the count.

Stack size: `options.stack` words, or by default room for 256 nested saves of the largest
`SAVE` left after the CFG clean-ups, the callee's arrays included (so recursion depth 256
at least for every function, e.g. 512 words for a recursive sum that saves its parameter
and return address), and no stack at all without recursive calls.

Operators. `*`, `/`, `%`, shifts (`>>>` too), `udiv`, `umod` and bitwise operators call the
O(W) routines of `runtime_lib`; by a constant, the cheaper-operation rewrites of `cheap_ops`
apply first: multiplication by a small or sparse constant and left shifts by constants up
to 8 are inlined; division, modulo and right shifts by a constant and low masks
`& (2^j - 1)` call the unrolled constant-divisor routines (one step per quotient bit,
`runtime_lib.const_name`).
"""

from __future__ import annotations

from dataclasses import dataclass

from mlpc.compiler import cheap_ops, runtime_lib
from mlpc.compiler import macros as mc
from mlpc.compiler.cfg_opt import optimize as cfg_optimize
from mlpc.compiler.checker import CheckedProgram
from mlpc.compiler.image import SubleqImage, TrapInfo, merge_ranges
from mlpc.compiler.lower_arrays import ArrayLowering
from mlpc.compiler.lower_calls import CallLowering
from mlpc.compiler.lower_expr import ExpressionLowering
from mlpc.compiler.lower_stmt import StatementLowering
from mlpc.compiler.lower_storage import RV, TAPE_LEFT, TRAP_DIVISION
from mlpc.compiler.macros import const
from mlpc.compiler.options import CompileOptions
from mlpc.compiler.stack import DEFAULT_STACK_FRAMES, StackPlan


@dataclass(frozen=True)
class LoweringOptions:
    """What this pass needs of the driver's `CompileOptions`."""

    word_bits: int = 32
    stack: int | None = None  # stack words (None: sized for 256 nested saves)


class _Lowerer(StatementLowering, ExpressionLowering, CallLowering, ArrayLowering):
    """The pass: walks the checked AST once (`lower`), appending macros to `self.code`;
    then `macro_program` lays out the data. Its parts are the classes it is built from
    (see the module's docstring); the operators' code is here."""

    # --- operators ---------------------------------------------------------------------

    def _apply(self, op: str, left: str, right: str, rk: int | None, dst: str | None,
               line: int) -> str:
        """dst = left op right for an arithmetic, shift or bitwise operator."""
        if op in ("+", "-"):
            out = dst or self.temp()
            if out == right and op == "+":
                self.emit(mc.Add(out, left, line=line))
                return out
            if out == right:  # dst aliases the right operand: go through a temporary
                out = self.temp()
            self.emit(mc.Mov(out, left, line=line))
            self.emit((mc.Add if op == "+" else mc.Sub)(out, right, line=line))
            return self._into(out, dst)
        cheap = cheap_ops.rewrite(self, op, left, rk, dst, line) if rk is not None else None
        if cheap is not None:
            return cheap
        if op in ("/", "%") and rk is None:
            self.emit(mc.Jump("eq", right, self.trap_stub(TRAP_DIVISION, line), line=line))
        if op in ("/", "%") and rk == 0:
            self.emit(mc.Jmp(self.trap_stub(TRAP_DIVISION, line), line=line))
            return self._into(const(0), dst)
        name, result = {
            "*": ("mul", "r"),
            "/": ("divmod", "q"),
            "%": ("divmod", "r"),
            "<<": ("shl", "a"),
            ">>": ("sar", "r"),
            ">>>": ("shr", "r"),
            "&": ("and", "r"),
            "|": ("or", "r"),
            "^": ("xor", "r"),
        }[op]
        return self._routine(name, (left, right), result, dst, line)

    def _routine(self, name: str, args: tuple[str, ...], result: str, dst: str | None,
                 line: int) -> str:
        self.routines.add(name)
        for arg, value in zip(runtime_lib.routine(name, self.w).args, args, strict=True):
            self.emit(mc.Mov(arg, value, line=line))
        self.emit(mc.Call(f"${name}", runtime_lib.cell(name, "ra"), line=line))
        return self._into(runtime_lib.cell(name, result), dst or self.temp())

    # --- the macro program -------------------------------------------------------------

    def macro_program(self, stack: int | None) -> mc.MacroProgram:
        code = list(self.code)
        data: list[mc.DataCell | mc.DataBlock] = [mc.DataCell(RV)]
        for name in sorted(self.routines):
            r = runtime_lib.routine(name, self.w)
            code.extend(r.code)
            data.extend(r.data)
        for (code_no, line), stub in sorted(self.trap_stubs.items(), key=lambda kv: kv[1]):
            code.extend([mc.Label(stub), mc.Trap(code_no, line=line)])
        for stub, back, line in self.tape_end_stubs:  # 0 - 0 = 0 <= 0: always jumps back
            code.extend([mc.Label(stub), mc.Subleq(TAPE_LEFT, TAPE_LEFT, back, line=line)])
        if self.uses_eof:
            data.append(mc.DataCell(TAPE_LEFT))
        # cells only their own function reads: temporaries, parameters and locals (the
        # CFG clean-ups may drop stores to them that nothing reads, and their saves); not
        # arrays, which callees read and write by reference
        local: set[str] = {self.cells[s.uid] for s in self.checked.main_locals}
        for fsym in self.checked.functions:
            local.update(self.own_cells(fsym))
        for _shown, label in self.symbol_names:
            if label in self.static_arrays:
                data.append(mc.DataBlock(label, self.static_arrays[label].initial))
            else:
                data.append(mc.DataCell(label))
        for fn in self.functions_done:
            for i in range(fn.temps_max):
                data.append(mc.DataCell(fn.temp(i)))
                local.add(fn.temp(i))
            if fn.symbol is not None:
                data.append(mc.DataCell(fn.ra))
        words, frames = (stack, 0) if stack is not None else (0, DEFAULT_STACK_FRAMES)
        inputs = tuple((s.name, self.cells[s.uid]) for s in self.checked.inputs)
        outputs = tuple((s.name, self.cells[s.uid]) for s in self.checked.outputs)
        return mc.MacroProgram(
            code=tuple(code),
            data=tuple(data),
            stack_words=words,
            stack_frames=frames,
            inputs=inputs,
            outputs=outputs,
            symbols=tuple(self.symbol_names),
            local_cells=frozenset(local),
            tape_left=TAPE_LEFT if self.uses_eof else None,
        )


def lower_macros(checked: CheckedProgram, options: LoweringOptions) -> mc.MacroProgram:
    """The pass: checked AST -> macro program."""
    low = _Lowerer(checked, options.word_bits)
    low.lower()
    return low.macro_program(options.stack)


def stack_plan(checked: CheckedProgram, options: LoweringOptions) -> StackPlan:
    """The stack of the program `lower_program` compiles (CFG clean-ups included: they decide
    which cells each SAVE keeps)."""
    low = _Lowerer(checked, options.word_bits)
    low.lower()
    program = cfg_optimize(low.macro_program(options.stack)).program
    kept = {m.group: m.words() for m in program.code if isinstance(m, mc.Save)}
    pushes = {pos: kept[group] for pos, group in low.save_sites.items() if kept.get(group)}
    return StackPlan(mc.stack_size(program), pushes)


def lower_program(checked: CheckedProgram, options: CompileOptions,
                  optimize: bool = True) -> SubleqImage:
    """What the driver calls: lowering, CFG clean-ups, assembly, packaged as an image.
    `optimize=False` skips the CFG clean-ups (the benchmark measures what they save)."""
    program = lower_macros(checked, LoweringOptions(options.word_bits, options.stack))
    if optimize:
        program = cfg_optimize(program).program
    return image_of(program, checked, options.word_bits)


def image_of(program: mc.MacroProgram, checked: CheckedProgram, word_bits: int) -> SubleqImage:
    """Assemble a macro program and describe it: symbols, spans, inputs, outputs, trap cells,
    memory need and the annotated listing."""
    assembled = mc.assemble(program, word_bits)
    labels = assembled.label_map()
    symbols = sorted(((name, labels[label]) for name, label in program.symbols),
                     key=lambda kv: (kv[1], kv[0]))
    return SubleqImage(
        words=assembled.words,
        source_path=checked.path,
        symbols=tuple(symbols),
        spans=mc.code_spans(program, assembled),
        inputs=tuple((name, labels[label]) for name, label in program.inputs),
        outputs=tuple((name, labels[label]) for name, label in program.outputs),
        tape_length_address=None if program.tape_left is None else labels[program.tape_left],
        min_memory=assembled.stack_end,
        trap=TrapInfo(labels[mc.TRAP_CODE], labels[mc.TRAP_LINE]),
        source_text=checked.program.text,
        listing=mc.listing(program, assembled, checked.program.text),
        writable=written_words(program, assembled),
        direct_reads=True,
    )


def written_words(program: mc.MacroProgram, assembled: mc.Assembled) -> tuple[tuple[int, int], ...]:
    """Every word the program can write, as sorted [start, end) ranges: the b operand of
    every instruction as assembled (the cells a macro writes, and the operand words that
    LOAD, STORE and RET patch), the scratch cells and the program's data (variables and
    arrays, which a patched STORE reaches), and the stack. Not written: the code's other
    words and the constant pool. A specialised network faults on any other write, so a
    mistake here shows as a fault, never as a wrong result."""
    labels = assembled.label_map()
    words = assembled.words
    targets = {words[i + 1] for i in range(0, assembled.code_words, 3) if words[i + 1] >= 0}
    data_end = labels[mc.TRAP_LINE] + 1
    for item in program.data:
        size = 1 if isinstance(item, mc.DataCell) else len(item.values)
        data_end = max(data_end, labels[item.label] + size)
    spans = [(t, t + 1) for t in targets if t < assembled.code_words]
    spans += [(assembled.code_words, data_end), (assembled.stack_base, assembled.stack_end)]
    return merge_ranges(spans)
