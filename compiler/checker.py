"""The `.tl` checker: resolves every name, folds constants, and rejects invalid programs.

`check_program(program)` returns a `CheckedProgram`: the AST plus everything the source
interpreter and the lowering need, so neither redoes scoping:

- `symbols` maps the position of every identifier occurrence (`Name`, `Index`, `Call`,
  `Assign` targets, declarators, `Ident`s) to one symbol object. Symbols have a unique
  `uid`; two occurrences denote the same variable exactly when they map to the same symbol.
- `globals`, `arrays`, `constants`, `functions` (with their parameters and locals),
  `main_locals` (variables declared in blocks of the top-level code), `inputs`, `outputs`.

It also defines the operator semantics of the language (`unary_op`, `binary_op`,
`literal_value`) used for constant folding and by the source interpreter.

The checker is built in three layers: `_CheckerBase` (its state, and how it records an
error and goes on), `_ExpressionChecker` (expressions, calls and their arguments, constant
folding) and `_Checker` (the program, declarations, scopes, statements). Each kind of node
has its method, found by the node's type in a table (`_CHECK_EXPR`, `_FOLD`,
`_CHECK_STATEMENT`).

Language decisions in full (docs/language.md is the user's summary)
-------------------------------------------------------------------
Scoping (C-like):
- Names must be declared before they are used, in the text. Exception: functions may be
  called before (or after) their definition, recursion and mutual recursion included.
- The global scope holds `input`, `output`, top-level `var`, `const`, arrays and functions.
  A function sees the globals declared before its definition, and may read and write them.
- Each `{ ... }` block opens a scope, as in C; a function's parameters and the outermost
  block of its body share one scope; `for (var i = ...; ...)` scopes `i` to the loop.
- An inner declaration may shadow an outer one (a local may shadow a global); declaring a
  name twice in the same scope is an error. A global name may not also name a function.
  Calls always resolve to functions, so a local variable named like a function does not
  hide the function.
- A declarator's name is in scope after the whole declarator: in `var x = x + 1;` the
  initialiser reads the outer `x`.
Where declarations may appear:
- `input`, `output` and functions only at the top level, outside blocks.
  `var` (arrays too) and `const` anywhere a statement may appear.
Values:
- A `var` declaration assigns its initialiser (or 0) each time it executes: a `var` in a
  loop body is reset on every iteration. Top-level `var x = e;` runs in order like any
  statement (before it runs, `x` is 0).
- A top-level array is static: its initialisers are constant expressions (or a string: its
  characters), it holds them from the start of the run and executing the declaration does
  nothing. An array declared in a block (of a function or of the top-level code) is local:
  like a scalar `var`, each time its declaration runs it is set to its initialiser (any
  expressions, evaluated left to right), zero-padded; in a function each activation has
  its own.
- Array parameters (`a[]`, `g[][C]`) take an array by reference: an argument must name an
  array with as many dimensions (and, for two, the same column count); the index checks
  use the argument's length. A two-dimensional array `g[R][C]` is stored row after row and
  indexed `g[i][j]`, each index checked against its own bound.
- Constants are folded at compile time; they may be declared anywhere and used wherever a
  constant expression is required (array sizes, initialisers) or as values.
- Integer literals: decimal and character literals must fit the signed W-bit range; a
  decimal literal directly negated may be 2^(W-1) (so `-2147483648` is INT_MIN at W=32).
  Hexadecimal literals may be any W-bit pattern, `0` to `2^W - 1`, and denote the
  two's-complement word with those bits (`0xFFFFFFFF == -1` at W=32), as bit masks need.
Operators (see `binary_op`, `builtin_op`): W-bit wrap-around everywhere; `/` truncates
toward zero, `%` has the dividend's sign, `INT_MIN / -1 == INT_MIN`, `INT_MIN % -1 == 0`;
shift counts are read as unsigned W-bit numbers and a count of W or more shifts every bit
out (`x << n` and `x >>> n` are 0, `x >> n` is 0 or -1 by the sign of x), so a negative
count behaves as a huge one. `>>>`, `ult`, `ule`, `udiv` and `umod` read their operands as
unsigned W-bit numbers.
Built-ins: their names (`ast.BUILTIN_NAMES`: the built-in functions, `read` and the built-in
statements) are reserved for them: none may be declared, as a variable, input, output,
constant, array, function or parameter (`'read' is a built-in name`). `putc(x)` writes one
word, like `write(x)`, and has no value, so it may only be called as a statement. `eof()`
reads the state of the input tape, so it is never a constant expression.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from mlpc.compiler import tl_ast as ast
from mlpc.compiler.machine_config import wrap_word
from mlpc.compiler.parser import text_for_messages
from mlpc.errors import SourceError, SourcePos

MAX_ARRAY_SIZE = 1 << 20  # words; far beyond any memory the machine can have
MAX_ERRORS = 20  # errors reported at most; the checker stops looking after that many


class CheckErrors(SourceError):
    """Every error the checker found, in source order (at most MAX_ERRORS). It is the first
    of them for code that looks at one error (message, position); `render` shows them all,
    each as its own `file:line:col: error: ...` line with its source line and caret."""

    def __init__(self, errors: list[SourceError], truncated: bool) -> None:
        first = errors[0]
        super().__init__(first.message, first.path, first.pos, first.source)
        self.errors = tuple(errors)
        self.truncated = truncated

    def render(self) -> str:
        text = "\n".join(err.render() for err in self.errors)
        if self.truncated:
            text += f"\n{self.path}: error: too many errors (the first {MAX_ERRORS} are shown)"
        return text


class _TooManyErrors(Exception):
    """Stops the checker once MAX_ERRORS errors are recorded."""


class _UnknownConstant(Exception):
    """A constant expression uses a constant whose own value had an error (reported)."""


# --- operator semantics ------------------------------------------------------------------


class DivisionByZero(Exception):
    """`/` or `%` with a zero divisor: a trap at run time, an error in constant folding."""


def unary_op(op: str, value: int, word_bits: int) -> int:
    """The value of `op value` on W-bit words."""
    if op == "-":
        return wrap_word(-value, word_bits)
    if op == "!":
        return 1 if value == 0 else 0
    if op == "~":
        return wrap_word(~value, word_bits)
    raise ValueError(f"unknown unary operator {op!r}")


def binary_op(op: str, left: int, right: int, word_bits: int) -> int:
    """The value of `left op right` on W-bit words (both operands already evaluated: the
    caller implements the short-circuit of `&&` and `||`). Raises `DivisionByZero`."""
    if op == "+":
        return wrap_word(left + right, word_bits)
    if op == "-":
        return wrap_word(left - right, word_bits)
    if op == "*":
        return wrap_word(left * right, word_bits)
    if op in ("/", "%"):
        if right == 0:
            raise DivisionByZero
        quotient = abs(left) // abs(right)
        if (left < 0) != (right < 0):
            quotient = -quotient
        if op == "/":
            return wrap_word(quotient, word_bits)
        return wrap_word(left - right * quotient, word_bits)
    if op in ("<<", ">>", ">>>"):
        count = right % (1 << word_bits)  # the count as an unsigned word
        if op == "<<":
            return 0 if count >= word_bits else wrap_word(left << count, word_bits)
        if op == ">>>":
            return 0 if count >= word_bits else wrap_word(unsigned(left, word_bits) >> count,
                                                           word_bits)
        return (-1 if left < 0 else 0) if count >= word_bits else left >> count
    if op == "&":
        return wrap_word(left & right, word_bits)
    if op == "|":
        return wrap_word(left | right, word_bits)
    if op == "^":
        return wrap_word(left ^ right, word_bits)
    comparisons = {
        "<": left < right,
        "<=": left <= right,
        ">": left > right,
        ">=": left >= right,
        "==": left == right,
        "!=": left != right,
        "&&": left != 0 and right != 0,
        "||": left != 0 or right != 0,
    }
    if op in comparisons:
        return 1 if comparisons[op] else 0
    raise ValueError(f"unknown binary operator {op!r}")


def unsigned(value: int, word_bits: int) -> int:
    """The W-bit word `value` read as an unsigned number, 0 to 2^W - 1."""
    return value % (1 << word_bits)


def builtin_op(name: str, args: list[int], word_bits: int) -> int:
    """The value of a built-in function with a value (`ult`, `ule`, `udiv`, `umod`): both
    operands read as unsigned W-bit numbers. Raises `DivisionByZero`."""
    left, right = (unsigned(a, word_bits) for a in args)
    if name == "ult":
        return 1 if left < right else 0
    if name == "ule":
        return 1 if left <= right else 0
    if name in ("udiv", "umod"):
        if right == 0:
            raise DivisionByZero
        return wrap_word(left // right if name == "udiv" else left % right, word_bits)
    raise ValueError(f"unknown built-in {name!r}")


def literal_value(literal: ast.IntLit, word_bits: int) -> int:
    """The W-bit word an integer literal denotes (the checker has checked its range)."""
    return wrap_word(literal.value, word_bits)


# --- symbols -----------------------------------------------------------------------------

GLOBAL_KINDS = ("input", "output", "global")


@dataclass(frozen=True, eq=False)
class VarSymbol:
    """A scalar variable. `kind`: "input", "output", "global" (top-level `var`), "param",
    or "local" (declared in a block). `function` is the enclosing function's name, None for
    globals and for locals of the top-level code."""

    uid: int
    name: str
    kind: str
    function: str | None
    pos: SourcePos

    @property
    def is_global(self) -> bool:
        return self.kind in GLOBAL_KINDS


@dataclass(frozen=True, eq=False)
class ArraySymbol:
    """An array. `kind`: "global" (top-level `var`, static, holds `initial` from the start),
    "local" (declared in a block of a function or of the top-level code: each time its
    declaration runs, set to its initialiser's values, zero-padded) or "param" (an array
    parameter: the caller's array, by reference; `size` and `initial` unknown, 0 and ()).
    `size` is the number of words, `initial` all of them (zero-padded, wrapped; for a local
    array initialised by expressions that are not constant, 0 stands for those). `columns`
    is 0 for a one-dimensional array, else the column count of a two-dimensional one
    (stored row after row).
    `function` is the enclosing function's name (None for globals and the top level)."""

    uid: int
    name: str
    size: int
    initial: tuple[int, ...]
    pos: SourcePos
    kind: str = "global"
    columns: int = 0
    function: str | None = None

    @property
    def length(self) -> int:
        """What the first index is checked against: rows, or elements (0 for a parameter,
        whose length is the argument's)."""
        return self.size // self.columns if self.columns else self.size

    def shape(self) -> str:
        """How the array is declared, for messages: `a[]`, `g[][4]`."""
        return f"{self.name}[][{self.columns}]" if self.columns else f"{self.name}[]"


@dataclass(frozen=True, eq=False)
class ConstSymbol:
    """A named constant with its folded W-bit value."""

    uid: int
    name: str
    value: int
    pos: SourcePos


@dataclass(frozen=True, eq=False)
class FunctionSymbol:
    """A function: parameters in order (scalars, and arrays passed by reference), every
    scalar local declared anywhere in its body (block-scoped locals that shadow each other
    are distinct symbols), and every local array."""

    uid: int
    name: str
    params: tuple[VarSymbol | ArraySymbol, ...]
    locals: tuple[VarSymbol, ...]
    definition: ast.FuncDef
    pos: SourcePos  # the function's name in its definition
    arrays: tuple[ArraySymbol, ...] = ()

    @property
    def arity(self) -> int:
        return len(self.params)


Symbol = VarSymbol | ArraySymbol | ConstSymbol | FunctionSymbol


@dataclass(frozen=True, eq=False)
class CheckedProgram:
    """A program that passed every check, with its names resolved. Compared and hashed by
    identity (it holds a dict), so it can key caches."""

    program: ast.Program
    word_bits: int
    inputs: tuple[VarSymbol, ...]  # in declaration order
    outputs: tuple[VarSymbol, ...]  # in declaration order
    globals: tuple[VarSymbol, ...]  # every global scalar, inputs and outputs included
    arrays: tuple[ArraySymbol, ...]  # global arrays
    constants: tuple[ConstSymbol, ...]  # every constant, global or local
    functions: tuple[FunctionSymbol, ...]  # in definition order
    main_locals: tuple[VarSymbol, ...]  # locals declared in blocks of the top-level code
    symbols: Mapping[SourcePos, Symbol] = field(repr=False)
    main_arrays: tuple[ArraySymbol, ...] = ()  # arrays declared in blocks of the top level

    @property
    def input_names(self) -> tuple[str, ...]:
        return tuple(s.name for s in self.inputs)

    @property
    def output_names(self) -> tuple[str, ...]:
        return tuple(s.name for s in self.outputs)

    @property
    def path(self) -> str:
        return self.program.path

    def symbol(self, node: ast.Name | ast.Index | ast.Call | ast.Ident | ast.ScalarDeclarator
               | ast.ArrayDeclarator | ast.ConstDeclarator | ast.ArrayParam) -> Symbol:
        """The symbol a name occurrence resolves to."""
        return self.symbols[node.pos]

    def function(self, name: str) -> FunctionSymbol:
        for function in self.functions:
            if function.name == name:
                return function
        raise KeyError(name)


# --- the checker -------------------------------------------------------------------------


class _NotConstant(Exception):
    def __init__(self, reason: str, pos: SourcePos) -> None:
        super().__init__(reason)
        self.reason = reason
        self.pos = pos


@dataclass
class _Scope:
    names: dict[str, Symbol]
    parent: _Scope | None

    def lookup(self, name: str) -> Symbol | None:
        scope: _Scope | None = self
        while scope is not None:
            if name in scope.names:
                return scope.names[name]
            scope = scope.parent
        return None


@dataclass
class _FunctionContext:
    """What the checker tracks while inside a function (or the top-level code: name None)."""

    name: str | None
    locals: list[VarSymbol] = field(default_factory=list)
    arrays: list[ArraySymbol] = field(default_factory=list)


def check_program(program: ast.Program, word_bits: int = 32) -> CheckedProgram:
    """Check a parsed program; raises `CheckErrors` (a `SourceError`) listing the problems.

    After an error the checker goes on with the next statement (or with the body of the
    statement whose condition was wrong, or with the other operands and arguments of the
    expression: `1 + b + c` reports both names), and a declaration that had an error still
    declares its name, so that one mistake is reported once, not again at every use."""
    return _Checker(program, word_bits).check()


class _CheckerBase:
    """The checker's state, and how it records errors and goes on after one."""

    def __init__(self, program: ast.Program, word_bits: int) -> None:
        self.program = program
        self.shown_text = text_for_messages(program.text)
        self.word_bits = word_bits
        self.word_min = -(1 << (word_bits - 1))
        self.word_max = (1 << (word_bits - 1)) - 1
        self.symbols: dict[SourcePos, Symbol] = {}
        self.next_uid = 0
        self.global_scope = _Scope({}, None)
        self.inputs: list[VarSymbol] = []
        self.outputs: list[VarSymbol] = []
        self.globals: list[VarSymbol] = []
        self.arrays: list[ArraySymbol] = []
        self.constants: list[ConstSymbol] = []
        self.function_defs: dict[str, ast.FuncDef] = {}
        self.function_symbols: dict[str, FunctionSymbol] = {}
        self.call_sites: dict[SourcePos, str] = {}
        # array arguments, checked against the callee's parameter once every function is
        # known: (the argument, its array, the function, the parameter's index)
        self.array_arguments: list[tuple[ast.Name, ArraySymbol, str, int]] = []
        self.main = _FunctionContext(None)
        self.context = self.main
        self.loop_depth = 0
        self.errors: list[SourceError] = []
        self.unknown_constants: set[int] = set()  # uids of constants whose value failed

    def error(self, message: str, pos: SourcePos) -> SourceError:
        return SourceError(message, self.program.path, pos, self.shown_text)

    def record(self, err: SourceError) -> None:
        """Keep an error and go on; stop at MAX_ERRORS. An error already kept (by `all_of`,
        which also raises it) is kept once."""
        if any(kept is err for kept in self.errors):
            return
        self.errors.append(err)
        if len(self.errors) >= MAX_ERRORS:
            raise _TooManyErrors

    def checked_expr(self, expr: ast.Expr, scope: _Scope) -> None:
        """Check an expression, recording its first error instead of raising it."""
        try:
            self.expr(expr, scope)
        except SourceError as err:
            self.record(err)

    def all_of(self, checks: Iterable[Callable[[], None]]) -> None:
        """Run every check, so that an error in one hides none in the next (`1 + b + c`
        reports `b` and `c`). Each error is recorded as it comes (so that the limit keeps
        the first ones), and the first is raised too, for callers that stop at it (constant
        folding)."""
        first: SourceError | None = None
        for check in checks:
            try:
                check()
            except SourceError as err:
                self.record(err)
                if first is None:
                    first = err
        if first is not None:
            raise first

    def each(self, exprs: Iterable[ast.Expr], scope: _Scope) -> None:
        """Check every expression (`all_of`)."""
        self.all_of(functools.partial(self.expr, expr, scope) for expr in exprs)

    def record_all(self, checks: Iterable[Callable[[], None]]) -> None:
        """`all_of` for a caller that raises its own error: theirs are recorded only."""
        try:
            self.all_of(checks)
        except SourceError:
            pass  # recorded by all_of

    def uid(self) -> int:
        self.next_uid += 1
        return self.next_uid


class _ExpressionChecker(_CheckerBase):
    """Expressions: names resolved, calls and arguments matched to their functions,
    literals in range; constant expressions folded."""

    # expressions

    def expr(self, expr: ast.Expr, scope: _Scope) -> None:
        _CHECK_EXPR[type(expr)](self, expr, scope)

    def literal_expr(self, expr: ast.IntLit, scope: _Scope) -> None:
        self.literal(expr, negated=False)

    def name_expr(self, expr: ast.Name, scope: _Scope) -> None:
        symbol = self.resolve(expr.name, expr.pos, scope)
        if isinstance(symbol, ArraySymbol):
            raise self.error(
                f"array '{expr.name}' used as a value (index it: {expr.name}[i])", expr.pos
            )

    def index_expr(self, expr: ast.Index, scope: _Scope) -> None:
        indices = (expr.index,) if expr.column is None else (expr.index, expr.column)
        try:
            symbol = self.resolve(expr.name, expr.pos, scope)
        except SourceError:
            self.record_all(functools.partial(self.expr, e, scope) for e in indices)
            raise
        if not isinstance(symbol, ArraySymbol):
            raise self.error(f"'{expr.name}' is not an array", expr.pos)
        if symbol.columns and expr.column is None:
            raise self.error(f"'{expr.name}' is a two-dimensional array (index it: "
                             f"{expr.name}[i][j])", expr.pos)
        if not symbol.columns and expr.column is not None:
            raise self.error(f"'{expr.name}' is a one-dimensional array (index it: "
                             f"{expr.name}[i])", expr.pos)
        self.each(indices, scope)

    def unary_expr(self, expr: ast.Unary, scope: _Scope) -> None:
        if expr.op == "-" and isinstance(expr.operand, ast.IntLit):
            self.literal(expr.operand, negated=True)
        else:
            self.expr(expr.operand, scope)

    def builtin_expr(self, expr: ast.Builtin, scope: _Scope) -> None:
        self.builtin(expr, scope, as_statement=False)

    def binary_expr(self, expr: ast.Binary, scope: _Scope) -> None:
        self.each((expr.left, expr.right), scope)

    def conditional_expr(self, expr: ast.Conditional, scope: _Scope) -> None:
        self.each((expr.cond, expr.then, expr.orelse), scope)

    def read_expr(self, expr: ast.Read, scope: _Scope) -> None:
        """Nothing to check."""

    def resolve(self, name: str, pos: SourcePos, scope: _Scope) -> Symbol:
        symbol = scope.lookup(name)
        if symbol is None:
            if name in self.function_defs:
                raise self.error(f"function '{name}' used as a value (call it: {name}(...))",
                                 pos)
            raise self.error(f"undeclared name '{name}'", pos)
        self.symbols[pos] = symbol
        return symbol

    def call(self, call: ast.Call, scope: _Scope) -> None:
        definition = self.function_defs.get(call.name)
        if definition is None or len(definition.params) != len(call.args):
            # the arguments' own errors too; a bare name may be an array, as any parameter
            # of an unknown function may be
            self.record_all(functools.partial(self.loose_argument, arg, scope)
                            for arg in call.args)
        if definition is None:
            if scope.lookup(call.name) is not None:
                raise self.error(f"'{call.name}' is not a function", call.pos)
            raise self.error(f"call to undeclared function '{call.name}'", call.pos)
        expected, given = len(definition.params), len(call.args)
        if expected != given:
            raise self.error(
                f"function '{call.name}' takes {_count(expected, 'argument')}, "
                f"but {given} {'was' if given == 1 else 'were'} given",
                call.pos,
            )
        self.call_sites[call.pos] = call.name
        self.all_of(functools.partial(self.argument, call, number, arg, param, scope)
                    for number, (arg, param)
                    in enumerate(zip(call.args, definition.params, strict=True)))

    def loose_argument(self, arg: ast.Expr, scope: _Scope) -> None:
        """An argument of a call that is wrong itself: a name need only be declared."""
        if isinstance(arg, ast.Name):
            self.resolve(arg.name, arg.pos, scope)
        else:
            self.expr(arg, scope)

    def argument(self, call: ast.Call, number: int, arg: ast.Expr,
                 param: ast.Ident | ast.ArrayParam, scope: _Scope) -> None:
        if isinstance(param, ast.ArrayParam):
            self.array_argument(call, number, arg, param, scope)
            return
        if isinstance(arg, ast.Name) and isinstance(scope.lookup(arg.name), ArraySymbol):
            raise self.error(
                f"argument {number + 1} of '{call.name}' is the array '{arg.name}', but "
                f"parameter '{param.name}' is not an array (declare it '{param.name}[]')",
                arg.pos,
            )
        self.expr(arg, scope)

    def array_argument(self, call: ast.Call, number: int, arg: ast.Expr,
                       param: ast.ArrayParam, scope: _Scope) -> None:
        """An argument for an array parameter must name an array of as many dimensions;
        the column counts are compared once every function is checked."""
        wanted = f"{param.name}[][...]" if param.columns is not None else f"{param.name}[]"
        param_dims = "two-dimensional" if param.columns is not None else "one-dimensional"
        symbol = scope.lookup(arg.name) if isinstance(arg, ast.Name) else None
        if not isinstance(arg, ast.Name) or not isinstance(symbol, ArraySymbol):
            if isinstance(arg, ast.Name):
                self.resolve(arg.name, arg.pos, scope)  # an undeclared name says so
            raise self.error(
                f"argument {number + 1} of '{call.name}' must be an array (parameter "
                f"'{wanted}' is passed by reference)",
                _expr_pos(arg),
            )
        self.symbols[arg.pos] = symbol
        if bool(symbol.columns) != (param.columns is not None):
            dims = "two-dimensional" if symbol.columns else "one-dimensional"
            raise self.error(
                f"argument {number + 1} of '{call.name}': '{arg.name}' is a {dims} array, "
                f"but parameter '{param.name}' takes a {param_dims} one",
                arg.pos,
            )
        self.array_arguments.append((arg, symbol, call.name, number))

    def array_argument_shapes(self) -> None:
        """A two-dimensional argument must have the column count of its parameter."""
        for arg, symbol, name, number in self.array_arguments:
            function = self.function_symbols.get(name)
            if function is None:  # pragma: no cover - a call of a function with errors
                continue
            param = function.params[number]
            if isinstance(param, ArraySymbol) and param.columns != symbol.columns:
                self.record(self.error(
                    f"argument {number + 1} of '{name}': '{arg.name}' has {symbol.columns} "
                    f"columns, but parameter '{param.shape()}' has {param.columns}",
                    arg.pos,
                ))

    def builtin(self, call: ast.Builtin, scope: _Scope, as_statement: bool) -> None:
        expected, given = ast.BUILTINS[call.name], len(call.args)
        if expected != given:
            raise self.error(
                f"built-in function '{call.name}' takes {_count(expected, 'argument')}, "
                f"but {given} {'was' if given == 1 else 'were'} given",
                call.pos,
            )
        if call.name == "putc" and not as_statement:
            raise self.error("'putc' has no value (call it as a statement: putc(x);)",
                             call.pos)
        self.each(call.args, scope)

    def literal(self, literal: ast.IntLit, negated: bool) -> None:
        value = literal.value
        is_hex = literal.text[:2].lower() == "0x"
        if is_hex:
            fits = value < (1 << self.word_bits)
        else:
            fits = value <= self.word_max + (1 if negated else 0)
        if not fits:
            raise self.error(
                f"integer literal {literal.text} is out of range for {self.word_bits}-bit "
                "words",
                literal.pos,
            )

    # constant expressions

    def recovered_constant(self, expr: ast.Expr, scope: _Scope, what: str) -> int | None:
        """`constant`, or None after recording its error (or when it uses a constant whose
        value had an error: that one is reported already)."""
        try:
            return self.constant(expr, scope, what)
        except SourceError as err:
            self.record(err)
        except _UnknownConstant:
            pass
        return None

    def constant(self, expr: ast.Expr, scope: _Scope, what: str) -> int:
        """Fold a constant expression to its W-bit value (checking it on the way)."""
        self.expr(expr, scope)
        try:
            return self.fold(expr, scope)
        except _NotConstant as err:
            raise self.error(f"{what} must be a constant expression ({err.reason})",
                             err.pos) from None

    def fold(self, expr: ast.Expr, scope: _Scope) -> int:
        return _FOLD[type(expr)](self, expr, scope)

    def fold_literal(self, expr: ast.IntLit, scope: _Scope) -> int:
        return literal_value(expr, self.word_bits)

    def fold_name(self, expr: ast.Name, scope: _Scope) -> int:
        symbol = scope.lookup(expr.name)
        if isinstance(symbol, ConstSymbol):
            if symbol.uid in self.unknown_constants:
                raise _UnknownConstant
            return symbol.value
        raise _NotConstant(f"'{expr.name}' is a variable", expr.pos)

    def fold_index(self, expr: ast.Index, scope: _Scope) -> int:
        raise _NotConstant(f"'{expr.name}[...]' is an array element", expr.pos)

    def fold_call(self, expr: ast.Call, scope: _Scope) -> int:
        raise _NotConstant(f"'{expr.name}(...)' is a function call", expr.pos)

    def fold_read(self, expr: ast.Read, scope: _Scope) -> int:
        raise _NotConstant("'read()' reads the input tape", expr.pos)

    def fold_unary(self, expr: ast.Unary, scope: _Scope) -> int:
        return unary_op(expr.op, self.fold(expr.operand, scope), self.word_bits)

    def fold_conditional(self, expr: ast.Conditional, scope: _Scope) -> int:
        # as at run time, only the chosen side
        chosen = expr.then if self.fold(expr.cond, scope) != 0 else expr.orelse
        return self.fold(chosen, scope)

    def fold_builtin(self, expr: ast.Builtin, scope: _Scope) -> int:
        if expr.name == "eof":
            raise _NotConstant("'eof()' reads the input tape", expr.pos)
        args = [self.fold(arg, scope) for arg in expr.args]
        try:
            return builtin_op(expr.name, args, self.word_bits)
        except DivisionByZero:
            raise self.error("division by zero in a constant expression",
                             expr.pos) from None

    def fold_binary(self, expr: ast.Binary, scope: _Scope) -> int:
        left = self.fold(expr.left, scope)
        # As at run time (and as C allows), an operand `&&`/`||` does not evaluate need not
        # be constant: `0 && f()` folds to 0.
        if expr.op == "&&" and left == 0:
            return 0
        if expr.op == "||" and left != 0:
            return 1
        right = self.fold(expr.right, scope)
        try:
            return binary_op(expr.op, left, right, self.word_bits)
        except DivisionByZero:
            raise self.error("division by zero in a constant expression", expr.pos) from None


# The check of each kind of expression, and its constant folding.
_CHECK_EXPR: dict[type, Callable[[Any, Any, _Scope], None]] = {
    ast.IntLit: _ExpressionChecker.literal_expr,
    ast.Name: _ExpressionChecker.name_expr,
    ast.Index: _ExpressionChecker.index_expr,
    ast.Call: _ExpressionChecker.call,
    ast.Read: _ExpressionChecker.read_expr,
    ast.Unary: _ExpressionChecker.unary_expr,
    ast.Builtin: _ExpressionChecker.builtin_expr,
    ast.Binary: _ExpressionChecker.binary_expr,
    ast.Conditional: _ExpressionChecker.conditional_expr,
}
_FOLD: dict[type, Callable[[Any, Any, _Scope], int]] = {
    ast.IntLit: _ExpressionChecker.fold_literal,
    ast.Name: _ExpressionChecker.fold_name,
    ast.Index: _ExpressionChecker.fold_index,
    ast.Call: _ExpressionChecker.fold_call,
    ast.Read: _ExpressionChecker.fold_read,
    ast.Unary: _ExpressionChecker.fold_unary,
    ast.Conditional: _ExpressionChecker.fold_conditional,
    ast.Builtin: _ExpressionChecker.fold_builtin,
    ast.Binary: _ExpressionChecker.fold_binary,
}


class _Checker(_ExpressionChecker):
    """The whole program: declarations, scopes and statements."""

    # the whole program

    def check(self) -> CheckedProgram:
        truncated = False
        try:
            self.all_items()
            self.array_argument_shapes()
        except _TooManyErrors:
            truncated = True
        if self.errors:
            ordered = sorted(self.errors, key=lambda err: (err.pos.line, err.pos.col))
            raise CheckErrors(ordered, truncated)
        for pos, name in self.call_sites.items():
            self.symbols[pos] = self.function_symbols[name]
        return CheckedProgram(
            program=self.program,
            word_bits=self.word_bits,
            inputs=tuple(self.inputs),
            outputs=tuple(self.outputs),
            globals=tuple(self.globals),
            arrays=tuple(self.arrays),
            constants=tuple(self.constants),
            functions=tuple(self.function_symbols[d.name] for d in self.function_defs.values()),
            main_locals=tuple(self.main.locals),
            symbols=self.symbols,
            main_arrays=tuple(self.main.arrays),
        )

    def all_items(self) -> None:
        for item in self.program.items:
            if not isinstance(item, ast.FuncDef):
                continue
            if item.name in ast.BUILTIN_NAMES:
                self.record(self.error(f"'{item.name}' is a built-in name", item.name_pos))
            elif item.name in self.function_defs:
                first = self.function_defs[item.name].name_pos.line
                self.record(self.error(
                    f"redefinition of function '{item.name}' (first defined at line {first})",
                    item.name_pos,
                ))
            else:
                self.function_defs[item.name] = item
        for item in self.program.items:
            self.statement(item, self.global_scope, top_level=True)

    # declarations

    def declare(self, scope: _Scope, name: str, symbol: Symbol, pos: SourcePos) -> None:
        """Declare `name`; a clash is recorded and the first declaration kept. A built-in
        name is refused but still declared, so that its uses are not errors too."""
        self.symbols[pos] = symbol
        if name in ast.BUILTIN_NAMES:
            self.record(self.error(f"'{name}' is a built-in name", pos))
        if name in scope.names:
            first = scope.names[name].pos.line
            self.record(self.error(
                f"redeclaration of '{name}' (first declared at line {first})", pos))
        elif scope is self.global_scope and name in self.function_defs:
            line = self.function_defs[name].name_pos.line
            self.record(self.error(
                f"'{name}' is already the name of a function (line {line})", pos))
        else:
            scope.names[name] = symbol

    def new_var(self, name: str, kind: str, pos: SourcePos) -> VarSymbol:
        symbol = VarSymbol(self.uid(), name, kind, self.context.name, pos)
        if kind == "local":
            self.context.locals.append(symbol)
        elif kind in GLOBAL_KINDS:
            self.globals.append(symbol)
        return symbol

    def io_decl(self, decl: ast.InputDecl | ast.OutputDecl, scope: _Scope, top_level: bool
                ) -> None:
        kind = "input" if isinstance(decl, ast.InputDecl) else "output"
        if not top_level:
            self.record(self.error(f"'{kind}' declarations must be at the top level",
                                   decl.pos))
        for ident in decl.names:
            symbol = self.new_var(ident.name, kind, ident.pos)
            self.declare(scope, ident.name, symbol, ident.pos)
            (self.inputs if kind == "input" else self.outputs).append(symbol)

    def var_decl(self, decl: ast.VarDecl, scope: _Scope, top_level: bool) -> None:
        for declarator in decl.declarators:
            if isinstance(declarator, ast.ArrayDeclarator):
                self.array_decl(declarator, scope, top_level)
                continue
            if declarator.init is not None:
                self.checked_expr(declarator.init, scope)
            kind = "global" if top_level else "local"
            symbol = self.new_var(declarator.name, kind, declarator.pos)
            self.declare(scope, declarator.name, symbol, declarator.pos)

    def array_decl(self, decl: ast.ArrayDeclarator, scope: _Scope, top_level: bool) -> None:
        """Declares the array even when something about it is wrong (a one-element array
        stands in for a bad size), so that its uses are not errors too."""
        init_exprs: tuple[ast.Expr, ...] = ()
        if isinstance(decl.init, ast.StrLit):
            try:
                self.string(decl.init)
            except SourceError as err:
                self.record(err)
            values = [ord(ch) for ch in decl.init.value]
        else:
            init_exprs = decl.init or ()
            values = [self.initialiser(e, scope, top_level) for e in init_exprs]
        columns = 0
        if decl.columns is not None:
            columns = self.dimension(decl.columns, scope, "array column count")
        if decl.size is None:
            size = len(values)
            if decl.init is None:
                self.record(self.error(
                    f"array '{decl.name}' needs a size or an initialiser", decl.pos))
                size = 1
            elif size == 0:
                self.record(self.error(f"array '{decl.name}' has no elements", decl.pos))
                size = 1
        else:
            size = self.dimension(decl.size, scope, "array size")
        if columns:
            size *= columns
        if size > MAX_ARRAY_SIZE:
            where = decl.size if decl.size is not None else decl.columns
            self.record(self.error(
                f"array size {size} is too large (at most {MAX_ARRAY_SIZE})",
                _expr_pos(where) if where is not None else decl.pos,
            ))
            size, columns = 1, 0
        if len(values) > size:
            if init_exprs:
                extra_pos = _expr_pos(init_exprs[size])
            else:
                assert isinstance(decl.init, ast.StrLit)
                extra_pos = decl.init.pos
            self.record(self.error(
                f"too many initialisers for '{decl.name}' ({_count(size, 'element')}, "
                f"{len(values)} given)",
                extra_pos,
            ))
            values = values[:size]
        initial = tuple(wrap_word(v, self.word_bits) for v in values) + (0,) * (
            size - len(values))
        kind = "global" if top_level else "local"
        symbol = ArraySymbol(self.uid(), decl.name, size, initial, decl.pos, kind, columns,
                             self.context.name)
        self.declare(scope, decl.name, symbol, decl.pos)
        if top_level:
            self.arrays.append(symbol)
        else:
            self.context.arrays.append(symbol)

    def initialiser(self, expr: ast.Expr, scope: _Scope, top_level: bool) -> int:
        """A global array's initialiser is a constant (the array holds it from the start);
        a local array's may be any expression, computed each time the declaration runs (its
        value here: the constant's, or 0 when it is not constant)."""
        if top_level:
            return self.recovered_constant(expr, scope, "array initialiser") or 0
        self.checked_expr(expr, scope)
        try:
            return self.fold(expr, scope)
        except (_NotConstant, _UnknownConstant, SourceError):
            return 0

    def dimension(self, expr: ast.Expr, scope: _Scope, what: str) -> int:
        """A positive constant size (1 after an error, which is recorded)."""
        size = self.recovered_constant(expr, scope, what)
        if size is None:
            return 1
        if size <= 0:
            self.record(self.error(f"{what} must be positive, not {size}", _expr_pos(expr)))
            return 1
        return size

    def const_decl(self, decl: ast.ConstDecl, scope: _Scope) -> None:
        for declarator in decl.declarators:
            value = self.recovered_constant(
                declarator.value, scope, f"value of constant '{declarator.name}'"
            )
            symbol = ConstSymbol(self.uid(), declarator.name, value or 0, declarator.pos)
            if value is None:
                self.unknown_constants.add(symbol.uid)
            self.declare(scope, declarator.name, symbol, declarator.pos)
            self.constants.append(symbol)

    def func_def(self, definition: ast.FuncDef, top_level: bool) -> None:
        if not top_level:
            self.record(self.error(
                f"function '{definition.name}' must be defined at the top level", definition.pos
            ))
        outer_context, outer_loops = self.context, self.loop_depth
        self.context, self.loop_depth = _FunctionContext(definition.name), 0
        scope = _Scope({}, self.global_scope)
        params: list[VarSymbol | ArraySymbol] = []
        for param in definition.params:
            symbol: VarSymbol | ArraySymbol
            if isinstance(param, ast.ArrayParam):
                columns = 0
                if param.columns is not None:
                    columns = self.dimension(param.columns, scope, "array column count")
                symbol = ArraySymbol(self.uid(), param.name, 0, (), param.pos, "param",
                                     columns, definition.name)
            else:
                symbol = self.new_var(param.name, "param", param.pos)
            self.declare(scope, param.name, symbol, param.pos)
            params.append(symbol)
        self.statements(definition.body.body, scope)
        self.function_symbols[definition.name] = FunctionSymbol(
            self.uid(), definition.name, tuple(params), tuple(self.context.locals), definition,
            definition.name_pos, tuple(self.context.arrays),
        )
        self.context, self.loop_depth = outer_context, outer_loops

    # statements

    def statements(self, body: Iterable[ast.Stmt], scope: _Scope) -> None:
        for stmt in body:
            self.statement(stmt, scope, top_level=False)

    def block(self, block: ast.Block, scope: _Scope) -> None:
        self.statements(block.body, _Scope({}, scope))

    def loop_body(self, block: ast.Block, scope: _Scope) -> None:
        self.loop_depth += 1
        self.block(block, scope)
        self.loop_depth -= 1

    def statement(self, stmt: ast.Stmt, scope: _Scope, top_level: bool) -> None:
        """Check one statement; its first error that nothing inside recovered from is
        recorded, and checking goes on with the next statement."""
        try:
            self.checked_statement(stmt, scope, top_level)
        except SourceError as err:
            self.record(err)

    def checked_statement(self, stmt: ast.Stmt, scope: _Scope, top_level: bool) -> None:
        _CHECK_STATEMENT[type(stmt)](self, stmt, scope, top_level)

    def if_stmt(self, stmt: ast.If, scope: _Scope, top_level: bool) -> None:
        self.checked_expr(stmt.cond, scope)
        self.block(stmt.then, scope)
        if isinstance(stmt.orelse, ast.Block):
            self.block(stmt.orelse, scope)
        elif stmt.orelse is not None:
            self.statement(stmt.orelse, scope, top_level=False)

    def while_stmt(self, stmt: ast.While, scope: _Scope, top_level: bool) -> None:
        self.checked_expr(stmt.cond, scope)
        self.loop_body(stmt.body, scope)

    def for_stmt(self, stmt: ast.For, scope: _Scope, top_level: bool) -> None:
        loop_scope = _Scope({}, scope)
        if stmt.init is not None:
            self.statement(stmt.init, loop_scope, top_level=False)
        if stmt.cond is not None:
            self.checked_expr(stmt.cond, loop_scope)
        if stmt.step is not None:
            self.statement(stmt.step, loop_scope, top_level=False)
        self.loop_body(stmt.body, loop_scope)

    def loop_jump(self, stmt: ast.Break | ast.Continue, scope: _Scope, top_level: bool
                  ) -> None:
        if self.loop_depth == 0:
            word = "break" if isinstance(stmt, ast.Break) else "continue"
            raise self.error(f"'{word}' outside a loop", stmt.pos)

    def return_stmt(self, stmt: ast.Return, scope: _Scope, top_level: bool) -> None:
        if self.context.name is None:
            raise self.error("'return' outside a function (use 'halt;' to stop)", stmt.pos)
        if stmt.value is not None:
            self.expr(stmt.value, scope)

    def print_stmt(self, stmt: ast.Print, scope: _Scope, top_level: bool) -> None:
        for arg in stmt.args:
            if isinstance(arg, ast.StrLit):
                try:
                    self.string(arg)
                except SourceError as err:
                    self.record(err)
        self.each((arg for arg in stmt.args if not isinstance(arg, ast.StrLit)), scope)

    def write_or_assert(self, stmt: ast.Write | ast.Assert, scope: _Scope, top_level: bool
                        ) -> None:
        self.expr(stmt.value if isinstance(stmt, ast.Write) else stmt.cond, scope)

    def expr_stmt(self, stmt: ast.ExprStmt, scope: _Scope, top_level: bool) -> None:
        if isinstance(stmt.expr, ast.Builtin):
            self.builtin(stmt.expr, scope, as_statement=True)
        else:
            self.expr(stmt.expr, scope)

    def block_stmt(self, stmt: ast.Block, scope: _Scope, top_level: bool) -> None:
        self.block(stmt, scope)

    def halt_stmt(self, stmt: ast.Halt, scope: _Scope, top_level: bool) -> None:
        """Nothing to check."""

    def assign(self, stmt: ast.Assign, scope: _Scope) -> None:
        try:
            self.assign_target(stmt.target, scope)
        except SourceError as err:
            self.record(err)
        self.expr(stmt.value, scope)

    def assign_target(self, target: ast.Name | ast.Index, scope: _Scope) -> None:
        symbol = scope.lookup(target.name)
        if symbol is None and target.name in self.function_defs:
            raise self.error(f"cannot assign to function '{target.name}'", target.pos)
        if symbol is None:
            raise self.error(f"undeclared name '{target.name}'", target.pos)
        if isinstance(target, ast.Index):
            self.expr(target, scope)
        elif isinstance(symbol, ConstSymbol):
            raise self.error(f"cannot assign to constant '{target.name}'", target.pos)
        elif isinstance(symbol, ArraySymbol):
            raise self.error(
                f"cannot assign to array '{target.name}' (assign to its elements)", target.pos
            )
        else:
            self.symbols[target.pos] = symbol

    def string(self, literal: ast.StrLit) -> None:
        for offset, ch in enumerate(literal.value):
            if ord(ch) > self.word_max:
                raise self.error(
                    f"character U+{ord(ch):04X} does not fit in a {self.word_bits}-bit word",
                    SourcePos(literal.pos.line, literal.pos.col + 1 + offset),
                )


# The check of each kind of statement.
_CHECK_STATEMENT: dict[type, Callable[[Any, Any, _Scope, bool], None]] = {
    ast.InputDecl: _Checker.io_decl,
    ast.OutputDecl: _Checker.io_decl,
    ast.VarDecl: _Checker.var_decl,
    ast.ConstDecl: lambda checker, stmt, scope, top_level: checker.const_decl(stmt, scope),
    ast.FuncDef: lambda checker, stmt, scope, top_level: checker.func_def(stmt, top_level),
    ast.Assign: lambda checker, stmt, scope, top_level: checker.assign(stmt, scope),
    ast.If: _Checker.if_stmt,
    ast.While: _Checker.while_stmt,
    ast.For: _Checker.for_stmt,
    ast.Break: _Checker.loop_jump,
    ast.Continue: _Checker.loop_jump,
    ast.Return: _Checker.return_stmt,
    ast.Print: _Checker.print_stmt,
    ast.Write: _Checker.write_or_assert,
    ast.Assert: _Checker.write_or_assert,
    ast.ExprStmt: _Checker.expr_stmt,
    ast.Block: _Checker.block_stmt,
    ast.Halt: _Checker.halt_stmt,
}


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def _expr_pos(expr: ast.Expr) -> SourcePos:
    """Where an expression starts (Binary and Unary nodes sit at their operator)."""
    while isinstance(expr, (ast.Binary, ast.Conditional)):
        expr = expr.left if isinstance(expr, ast.Binary) else expr.cond
    return expr.pos
