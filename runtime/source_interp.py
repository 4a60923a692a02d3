"""The source-level interpreter: runs a checked `.tl` program directly on its AST.

It is the oracle the SUBLEQ lowering is tested against, so it is written for obviousness,
not speed, and shares no arithmetic with the SUBLEQ side: values are Python integers wrapped
to W bits after every operation (`wrap_word`), operators are `checker.unary_op` and
`checker.binary_op`.

Semantics (docs/language.md, with every detail the engines must agree on)
-------------------------------------------------------------------------
- Every operation wraps to W-bit two's complement. `/` truncates toward zero, `%` takes the
  dividend's sign, `INT_MIN / -1 == INT_MIN` and `INT_MIN % -1 == 0`; `>>` is arithmetic,
  `>>>` logical; `ult`, `ule`, `udiv`, `umod` read their operands as unsigned words.
- **Shift counts** (the rule the lowering must follow): the count is read as an *unsigned*
  W-bit number n. `x << n` is `wrap(x * 2**n)`, which is 0 for n >= W; `x >> n` is
  `floor(x / 2**n)`, which is 0 or -1 (by the sign of x) for n >= W. A negative count is a
  huge unsigned count: `1 << -1 == 0`, `-8 >> -1 == -1`. Shifts by 0 change nothing.
- Comparisons, `!`, `&&`, `||`, `ult`, `ule` yield 0 or 1; `&&` and `||` evaluate their
  right operand only when needed, `c ? x : y` only the side it chooses.
- **Evaluation order** is left to right everywhere: operands, call arguments, `print`
  arguments (each printed before the next is evaluated). For `a[i] = e` and
  `a[i] op= e`: the index, then the bounds check, then `e`, then (for `op=`) the old value
  of `a[i]` is read, then the new one stored; `x op= e` likewise reads `x` after `e`
  (`tl_cases.py` "assignment_evaluation_order" pins this down).
- `read()` takes the next input-tape word, -1 once the tape is exhausted; `eof()` is 1
  once every word has been read (the compiled program counts them down). `write(e)`
  appends one word; `print` appends the characters of strings and the decimal text of
  integers (`-2147483648` prints as such). Writing past `tape_out` words ends the run with
  the fault "output tape full", as the machine does; the words before it are kept.
- A `var` declaration stores its initialiser (or 0) each time it runs; so does a local
  array's (all its words, zero-padded; its initialisers are evaluated left to right).
  Global arrays hold their initial values from the start. Inputs are set before the first
  statement; outputs and globals start at 0.
- Arrays are passed by reference: an array parameter is the caller's array. `g[i][j]`
  evaluates and checks i (against the rows), then evaluates and checks j (the columns).
- **Traps** end the run with status "trap" and detail `"<kind> at line N"`, N being the line
  of the node that traps (`tl_ast` documents node positions): division by zero (the `/` or
  `%` operator, the `/=`/`%=`, or the name of `udiv`/`umod`), index out of range (the
  indexed name), stack overflow (the call), assertion failed (the `assert`).
- **Stack overflow**: the interpreter keeps the compiled program's stack account (a
  `stack.StackPlan`, which its caller has `lowering.stack_plan` decide: the stack's size,
  `--stack` or the default, and the words each call takes, as the lowering and its
  clean-ups decided: the cells a recursive call saves, plus the local arrays of a callee
  that keeps them on the stack). A call whose words do not fit on top of those of its
  unfinished callers traps, at the same call and depth as the compiled program; calls that
  push nothing never overflow.
- **Steps**: one per statement executed (declarations and blocks included), one per loop
  condition test (so every iteration costs a step, even of `for (;;) {}`), one per call. A
  run that would exceed `max_steps` stops with status "step-limit". Source steps are not
  SUBLEQ steps; only the statuses, outputs and tapes are comparable across engines.
- Outputs are reported whatever the status: the values of the `output` variables when the
  run ended, in declaration order.

Deep recursion in the `.tl` program is interpreted by deep Python recursion, run in a
thread with a large stack and a recursion limit sized from the deepest recursion the stack
allows (`_deepest`).
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from mlpc.compiler import tl_ast as ast
from mlpc.compiler.checker import (
    ArraySymbol,
    CheckedProgram,
    ConstSymbol,
    DivisionByZero,
    FunctionSymbol,
    VarSymbol,
    binary_op,
    builtin_op,
    literal_value,
    unary_op,
)
from mlpc.compiler.machine_config import DEFAULT_TAPE_OUT, wrap_word
from mlpc.compiler.stack import StackPlan
from mlpc.errors import MlpcError
from mlpc.runtime.report import TRAP_KINDS, RunReport

TRAP_DIVISION, TRAP_INDEX, TRAP_STACK, TRAP_ASSERT = 1, 2, 3, 4

# Nested calls the interpreter follows beyond what the stack account bounds (see `_deepest`).
_UNCOUNTED_DEPTH = 1000
# Python frames one `.tl` activation may need at most: the AST is at most MAX_NESTING deep
# and each level costs at most three Python calls.
_PYTHON_FRAMES_PER_CALL = 800
_THREAD_STACK_BYTES = 512 * 1024 * 1024


class _Stop(Exception):
    """Ends the run: halt, trap, fault or step limit."""

    def __init__(self, status: str, detail: str = "") -> None:
        super().__init__(status, detail)
        self.status = status
        self.detail = detail


class _TooDeep(Exception):
    """Calls nested deeper than the interpreter was sized for (`_deepest`)."""


class _Break(Exception):
    pass


class _Continue(Exception):
    pass


class _Return(Exception):
    def __init__(self, value: int) -> None:
        super().__init__(value)
        self.value = value


@dataclass
class Frame:
    """A function activation (or the top-level code): its scalars by `VarSymbol.uid`, and its
    arrays by `ArraySymbol.uid`: local arrays (a new list each time the declaration runs)
    and array parameters (the caller's list itself: arrays are passed by reference)."""

    values: dict[int, int] = field(default_factory=dict)
    arrays: dict[int, list[int]] = field(default_factory=dict)


def run_source(
    checked: CheckedProgram,
    inputs: Mapping[str, int],
    tape: Sequence[int],
    max_steps: int,
    word_bits: int = 32,
    tape_out: int = DEFAULT_TAPE_OUT,
    *,
    plan: StackPlan,
    tape_in: int | None = None,
) -> RunReport:
    """Run a checked program; `plan` is the compiled program's stack (`lowering.stack_plan`,
    taken by the caller so that the oracle does not import what it checks). Raises `MlpcError`
    for bad inputs (unknown, missing or out of range names, tape words out of range, a tape
    longer than `tape_in`)."""
    if word_bits != checked.word_bits:
        raise MlpcError(
            f"the program was checked for {checked.word_bits}-bit words, not {word_bits}"
        )
    _validate(checked, inputs, tape, word_bits, tape_in)
    depth = _deepest(checked, plan)
    interpreter = _Interpreter(checked, inputs, tape, max_steps, tape_out, plan, depth)
    return _run_with_deep_stack(interpreter.run, depth)


def _deepest(checked: CheckedProgram, plan: StackPlan) -> int:
    """Activations the interpreter may have to nest: as many recursive calls as the stack
    holds of the smallest push, plus a chain of non-recursive calls through every function,
    plus room for recursive calls that push nothing (rare: nothing is live after them)."""
    smallest = min(plan.pushes.values(), default=0)
    recursive = plan.words // smallest + 1 if smallest else 0
    return recursive + len(checked.functions) + _UNCOUNTED_DEPTH


def _validate(checked: CheckedProgram, inputs: Mapping[str, int], tape: Sequence[int],
              word_bits: int, tape_in: int | None) -> None:
    low, high = -(1 << (word_bits - 1)), (1 << (word_bits - 1)) - 1
    declared = checked.input_names
    for name in inputs:
        if name not in declared:
            listing = ", ".join(declared) if declared else "none"
            raise MlpcError(f"unknown input {name!r} (the program's inputs: {listing})")
    missing = [name for name in declared if name not in inputs]
    if missing:
        raise MlpcError("missing input" + ("s" if len(missing) > 1 else "") + ": "
                        + ", ".join(missing))
    for name, value in inputs.items():
        if not low <= value <= high:
            raise MlpcError(f"input {name} = {value} does not fit in {word_bits} bits")
    for i, word in enumerate(tape):
        if not low <= word <= high:
            raise MlpcError(f"input tape word {i} is {word}, outside the {word_bits}-bit "
                            f"range [{low}, {high}]")
    if tape_in is not None and len(tape) > tape_in:
        raise MlpcError(f"input tape has {len(tape)} words but its capacity is {tape_in} "
                        "(use --tape-in)")


def _run_with_deep_stack(run: Callable[[], RunReport], max_depth: int) -> RunReport:
    """Run `run` in a thread whose stack and recursion limit fit `max_depth` activations."""
    results: list[RunReport] = []
    errors: list[BaseException] = []

    def target() -> None:
        try:
            results.append(run())
        except BaseException as err:  # handed to the calling thread
            errors.append(err)

    old_limit = sys.getrecursionlimit()
    sys.setrecursionlimit(max(old_limit, 2000 + max_depth * _PYTHON_FRAMES_PER_CALL))
    try:
        if not _run_in_thread(target):
            target()  # no thread with a large stack could be started: try in this one
    finally:
        sys.setrecursionlimit(old_limit)
    if errors:
        if isinstance(errors[0], RecursionError):
            raise MlpcError("the source interpreter ran out of Python stack") from None
        if isinstance(errors[0], _TooDeep):
            raise MlpcError(f"the source interpreter cannot follow more than {max_depth} "
                            "nested calls") from None
        raise errors[0]
    return results[0]


def _run_in_thread(target: Callable[[], None]) -> bool:
    """Run `target` in a thread with a large stack; False if no such thread could start
    (a platform or `ulimit` refusing the stack size)."""
    old_stack = threading.stack_size()
    for size in (_THREAD_STACK_BYTES, _THREAD_STACK_BYTES // 8):
        try:
            threading.stack_size(size)
            thread = threading.Thread(target=target, name="mlpc-source-interpreter")
            thread.start()
        except (ValueError, RuntimeError, MemoryError):
            continue
        finally:
            threading.stack_size(old_stack)
        thread.join()
        return True
    return False


class _Interpreter:
    def __init__(self, checked: CheckedProgram, inputs: Mapping[str, int],
                 tape: Sequence[int], max_steps: int, tape_out: int, stack: StackPlan,
                 max_depth: int) -> None:
        self.checked = checked
        self.word_bits = checked.word_bits
        self.symbols = checked.symbols
        self.tape = tuple(tape)
        self.tape_pos = 0
        self.out: list[int] = []
        self.tape_out = tape_out
        self.max_steps = max_steps
        self.stack = stack
        self.stack_used = 0  # words the unfinished recursive calls pushed
        self.max_depth = max_depth
        self.steps = 0
        self.depth = 0
        self.globals: dict[int, int] = {s.uid: 0 for s in checked.globals}
        for symbol in checked.inputs:
            self.globals[symbol.uid] = wrap_word(inputs[symbol.name], self.word_bits)
        self.arrays: dict[int, list[int]] = {a.uid: list(a.initial) for a in checked.arrays}
        self.exec_by_type: dict[type, Callable[[ast.Stmt, Frame], None]] = {
            ast.InputDecl: self.exec_nothing,
            ast.OutputDecl: self.exec_nothing,
            ast.ConstDecl: self.exec_nothing,
            ast.FuncDef: self.exec_nothing,
            ast.VarDecl: self.exec_var_decl,
            ast.Assign: self.exec_assign,
            ast.If: self.exec_if,
            ast.While: self.exec_while,
            ast.For: self.exec_for,
            ast.Break: self.exec_break,
            ast.Continue: self.exec_continue,
            ast.Return: self.exec_return,
            ast.Print: self.exec_print,
            ast.Write: self.exec_write,
            ast.Halt: self.exec_halt,
            ast.Assert: self.exec_assert,
            ast.ExprStmt: self.exec_expr_stmt,
            ast.Block: self.exec_block,
        }
        self.eval_by_type: dict[type, Callable[[ast.Expr, Frame], int]] = {
            ast.IntLit: self.eval_literal,
            ast.Name: self.eval_name,
            ast.Index: self.eval_index,
            ast.Call: self.eval_call,
            ast.Builtin: self.eval_builtin,
            ast.Read: self.eval_read,
            ast.Unary: self.eval_unary,
            ast.Binary: self.eval_binary,
            ast.Conditional: self.eval_conditional,
        }

    # the run

    def run(self) -> RunReport:
        status, detail = "halted", ""
        main = Frame()
        try:
            for item in self.checked.program.items:
                self.execute(item, main)
        except _Stop as stop:
            status, detail = stop.status, stop.detail
        outputs = tuple((s.name, self.globals[s.uid]) for s in self.checked.outputs)
        return RunReport(outputs, tuple(self.out), status, detail, self.steps, "source")

    def tick(self) -> None:
        if self.steps >= self.max_steps:
            raise _Stop("step-limit", f"stopped after {self.steps} steps (max_steps)")
        self.steps += 1

    def trap(self, kind: int, line: int) -> _Stop:
        return _Stop("trap", f"{TRAP_KINDS[kind]} at line {line}")

    def emit(self, word: int) -> None:
        if len(self.out) >= self.tape_out:
            raise _Stop("fault", "output tape full")
        self.out.append(word)

    # variables

    def load(self, symbol: VarSymbol, frame: Frame) -> int:
        return self.globals[symbol.uid] if symbol.is_global else frame.values[symbol.uid]

    def store(self, symbol: VarSymbol, frame: Frame, value: int) -> None:
        if symbol.is_global:
            self.globals[symbol.uid] = value
        else:
            frame.values[symbol.uid] = value

    def words(self, symbol: ArraySymbol, frame: Frame) -> list[int]:
        """The words of an array as this activation sees it."""
        if symbol.kind == "global":
            return self.arrays[symbol.uid]
        return frame.arrays[symbol.uid]

    def element(self, node: ast.Index, frame: Frame) -> tuple[list[int], int]:
        """The array and the checked word index of `a[i]` or `g[i][j]`: i is evaluated and
        checked against the array's length (its rows), then j against its columns; traps
        at the first index out of range."""
        symbol = self.symbols[node.pos]
        assert isinstance(symbol, ArraySymbol)
        words = self.words(symbol, frame)
        columns = symbol.columns or 1
        index = self.evaluate(node.index, frame)
        if not 0 <= index < len(words) // columns:
            raise self.trap(TRAP_INDEX, node.pos.line)
        if node.column is None:
            return words, index
        column = self.evaluate(node.column, frame)
        if not 0 <= column < columns:
            raise self.trap(TRAP_INDEX, node.pos.line)
        return words, index * columns + column

    def arithmetic(self, op: str, left: int, right: int, line: int) -> int:
        try:
            return binary_op(op, left, right, self.word_bits)
        except DivisionByZero:
            raise self.trap(TRAP_DIVISION, line) from None

    # statements

    def execute(self, stmt: ast.Stmt, frame: Frame) -> None:
        self.tick()
        self.exec_by_type[type(stmt)](stmt, frame)

    def exec_nothing(self, stmt: ast.Stmt, frame: Frame) -> None:
        """Declarations of inputs, outputs, constants and functions do nothing at run time."""

    def exec_block(self, stmt: ast.Block, frame: Frame) -> None:
        for inner in stmt.body:
            self.execute(inner, frame)

    def exec_var_decl(self, stmt: ast.VarDecl, frame: Frame) -> None:
        for declarator in stmt.declarators:
            if isinstance(declarator, ast.ArrayDeclarator):
                array = self.symbols[declarator.pos]
                assert isinstance(array, ArraySymbol)
                if array.kind == "local":  # global arrays hold their values from the start
                    words = list(array.initial)
                    if isinstance(declarator.init, tuple):  # expressions, left to right
                        for k, expr in enumerate(declarator.init):
                            words[k] = self.evaluate(expr, frame)
                    frame.arrays[array.uid] = words
            else:
                value = 0 if declarator.init is None else self.evaluate(declarator.init, frame)
                symbol = self.symbols[declarator.pos]
                assert isinstance(symbol, VarSymbol)
                self.store(symbol, frame, value)

    def exec_assign(self, stmt: ast.Assign, frame: Frame) -> None:
        target = stmt.target
        if isinstance(target, ast.Index):
            array, index = self.element(target, frame)
            value = self.evaluate(stmt.value, frame)
            if stmt.op != "=":
                value = self.arithmetic(stmt.op[:-1], array[index], value, stmt.pos.line)
            array[index] = value
            return
        symbol = self.symbols[target.pos]
        assert isinstance(symbol, VarSymbol)
        value = self.evaluate(stmt.value, frame)
        if stmt.op != "=":
            value = self.arithmetic(stmt.op[:-1], self.load(symbol, frame), value,
                                    stmt.pos.line)
        self.store(symbol, frame, value)

    def exec_if(self, stmt: ast.If, frame: Frame) -> None:
        if self.evaluate(stmt.cond, frame) != 0:
            self.execute(stmt.then, frame)
        elif stmt.orelse is not None:
            self.execute(stmt.orelse, frame)

    def exec_while(self, stmt: ast.While, frame: Frame) -> None:
        while True:
            self.tick()
            if self.evaluate(stmt.cond, frame) == 0:
                return
            try:
                self.execute(stmt.body, frame)
            except _Break:
                return
            except _Continue:
                pass

    def exec_for(self, stmt: ast.For, frame: Frame) -> None:
        if stmt.init is not None:
            self.execute(stmt.init, frame)
        while True:
            self.tick()
            if stmt.cond is not None and self.evaluate(stmt.cond, frame) == 0:
                return
            try:
                self.execute(stmt.body, frame)
            except _Break:
                return
            except _Continue:
                pass
            if stmt.step is not None:
                self.execute(stmt.step, frame)

    def exec_break(self, stmt: ast.Break, frame: Frame) -> None:
        raise _Break

    def exec_continue(self, stmt: ast.Continue, frame: Frame) -> None:
        raise _Continue

    def exec_return(self, stmt: ast.Return, frame: Frame) -> None:
        raise _Return(0 if stmt.value is None else self.evaluate(stmt.value, frame))

    def exec_print(self, stmt: ast.Print, frame: Frame) -> None:
        for arg in stmt.args:
            text = arg.value if isinstance(arg, ast.StrLit) else str(self.evaluate(arg, frame))
            for ch in text:
                self.emit(ord(ch))

    def exec_write(self, stmt: ast.Write, frame: Frame) -> None:
        self.emit(self.evaluate(stmt.value, frame))

    def exec_halt(self, stmt: ast.Halt, frame: Frame) -> None:
        raise _Stop("halted")

    def exec_assert(self, stmt: ast.Assert, frame: Frame) -> None:
        if self.evaluate(stmt.cond, frame) == 0:
            raise self.trap(TRAP_ASSERT, stmt.pos.line)

    def exec_expr_stmt(self, stmt: ast.ExprStmt, frame: Frame) -> None:
        self.evaluate(stmt.expr, frame)

    # expressions

    def evaluate(self, expr: ast.Expr, frame: Frame) -> int:
        return self.eval_by_type[type(expr)](expr, frame)

    def eval_literal(self, expr: ast.IntLit, frame: Frame) -> int:
        return literal_value(expr, self.word_bits)

    def eval_name(self, expr: ast.Name, frame: Frame) -> int:
        symbol = self.symbols[expr.pos]
        if isinstance(symbol, ConstSymbol):
            return symbol.value
        assert isinstance(symbol, VarSymbol)
        return self.load(symbol, frame)

    def eval_index(self, expr: ast.Index, frame: Frame) -> int:
        array, index = self.element(expr, frame)
        return array[index]

    def eval_read(self, expr: ast.Read, frame: Frame) -> int:
        if self.tape_pos >= len(self.tape):
            return -1
        self.tape_pos += 1
        return self.tape[self.tape_pos - 1]

    def eval_unary(self, expr: ast.Unary, frame: Frame) -> int:
        return unary_op(expr.op, self.evaluate(expr.operand, frame), self.word_bits)

    def eval_binary(self, expr: ast.Binary, frame: Frame) -> int:
        left = self.evaluate(expr.left, frame)
        if expr.op == "&&" and left == 0:
            return 0
        if expr.op == "||" and left != 0:
            return 1
        right = self.evaluate(expr.right, frame)
        return self.arithmetic(expr.op, left, right, expr.pos.line)

    def eval_conditional(self, expr: ast.Conditional, frame: Frame) -> int:
        chosen = expr.then if self.evaluate(expr.cond, frame) != 0 else expr.orelse
        return self.evaluate(chosen, frame)

    def eval_builtin(self, expr: ast.Builtin, frame: Frame) -> int:
        """`putc` (a statement only: the checker sees to it) writes its word and gives 0;
        `eof()` is 1 once every tape word has been read; the others are `builtin_op`,
        `udiv`/`umod` trapping at the name's line."""
        args = [self.evaluate(arg, frame) for arg in expr.args]
        if expr.name == "eof":
            return 1 if self.tape_pos >= len(self.tape) else 0
        if expr.name == "putc":
            self.emit(args[0])
            return 0
        try:
            return builtin_op(expr.name, args, self.word_bits)
        except DivisionByZero:
            raise self.trap(TRAP_DIVISION, expr.pos.line) from None

    def eval_call(self, expr: ast.Call, frame: Frame) -> int:
        function = self.symbols[expr.pos]
        assert isinstance(function, FunctionSymbol)
        callee = Frame()
        for param, arg in zip(function.params, expr.args, strict=True):
            if isinstance(param, ArraySymbol):  # by reference: the caller's list itself
                array = self.symbols[arg.pos]
                assert isinstance(array, ArraySymbol)
                callee.arrays[param.uid] = self.words(array, frame)
            else:
                callee.values[param.uid] = self.evaluate(arg, frame)
        self.tick()
        pushed = self.stack.pushes.get(expr.pos, 0)
        if self.stack_used + pushed > self.stack.words:
            raise self.trap(TRAP_STACK, expr.pos.line)
        if self.depth >= self.max_depth:
            raise _TooDeep
        self.depth += 1
        self.stack_used += pushed
        try:
            self.exec_block(function.definition.body, callee)
        except _Return as returned:
            return returned.value
        finally:
            self.depth -= 1
            self.stack_used -= pushed
        return 0
