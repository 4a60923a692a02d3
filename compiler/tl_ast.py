"""The typed AST of the `.tl` language (docs/language.md).

Every node is a small frozen dataclass with a `pos: SourcePos` (1-based line and column) and
holds tuples, never lists, so a parsed program is an immutable value that every later pass
(checker, source interpreter, lowering) can share without defensive copies.

Nodes
-----
Program            items: the top-level statements and definitions, in source order
Expressions (`Expr`):
  IntLit           value: the literal's integer value as written (decimal, hex `0x..`, char
                   `'A'`); not yet wrapped: the checker guarantees `wrap_W(value)` is meant
  Name             a variable or constant use
  Index            `name[index]` or `name[index][column]`: an array element
  Call             `name(args...)`: a function call
  Read             `read()`: the next input-tape word
  Builtin          `name(args...)` for a built-in function (`BUILTINS`: `ult`, `ule`,
                   `udiv`, `umod`, `putc`, `eof`); their names are reserved, as are all
                   of `BUILTIN_NAMES`
  Unary            op in `- ! ~`
  Binary           op in `* / % + - << >> >>> < <= > >= == != & ^ | && ||` (`&&`, `||`
                   short-circuit)
  Conditional      `cond ? then : orelse`: only the chosen side is evaluated
StrLit             a string literal: a `Print` argument or an array initialiser
Ident              a declared name: parameter, `input`/`output` name
Declarators:
  ScalarDeclarator `x` or `x = e` in a `var` declaration
  ArrayDeclarator  `buf[size]`, `buf[size] = {e, ...}`, `s[] = "text"`, `g[rows][columns]`
                   in a `var` declaration
ArrayParam         `a[]` or `g[][columns]` in a parameter list
  ConstDeclarator  `N = e` in a `const` declaration
Statements (`Stmt`):
  InputDecl, OutputDecl, VarDecl, ConstDecl, FuncDef,
  Assign (op `=` or a compound `op=` for every arithmetic, shift and bitwise operator),
  If, While, For, Break, Continue, Return,
  Print, Write, Halt, Assert, ExprStmt (a call or `read()` whose value is dropped), Block

Positions (they matter: trap lines are `node.pos.line` of the node that traps)
------------------------------------------------------------------------------
- `Name`, `Index`, `Call`, declarators, `Ident`, `ArrayParam`: the position of the identifier.
- `Builtin`: the position of its name; `Conditional`: the position of its `?`.
- `Binary`, `Unary`: the position of the operator token (so `a /\\n b` traps on the line of
  the `/`).  `Assign`: the position of the assignment operator (`x /= 0` traps there).
- Other statements: the position of their first token (the keyword; for `ExprStmt` the
  called name); `FuncDef.pos` is the `func` keyword and `FuncDef.name_pos` its name;
  `Block`: its `{`; `Program`: 1:1.
- An identifier occurrence is identified by its position: `CheckedProgram.symbols` maps the
  `pos` of every `Name`, `Index`, `Call`, declarator and `Ident` to its resolved symbol.

Walking the tree
----------------
`children(node)` yields the nodes directly inside a node and `walk(*roots)` every node under
them, in source order. The passes that ask a question of a whole subtree (does it call a
function, which functions does it call, does it use `eof()`) use these, so a node type
added here is seen by all of them at once.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, fields
from functools import cache

from mlpc.errors import SourcePos

# --- expressions -------------------------------------------------------------------------


@dataclass(frozen=True)
class IntLit:
    value: int
    text: str  # the literal as written, for messages
    pos: SourcePos


@dataclass(frozen=True)
class Name:
    name: str
    pos: SourcePos


@dataclass(frozen=True)
class Index:
    """`name[index]`, or `name[index][column]` for a two-dimensional array."""

    name: str
    index: Expr
    pos: SourcePos
    column: Expr | None = None


@dataclass(frozen=True)
class Call:
    name: str
    args: tuple[Expr, ...]
    pos: SourcePos


@dataclass(frozen=True)
class Read:
    pos: SourcePos


# Built-in functions and their arities: a call to one of these names is a `Builtin`, never
# a user function (the checker rejects a `func` of that name). `eof()` is 1 when the next
# `read()` would pass the end of the input tape, else 0.
BUILTINS = {"ult": 2, "ule": 2, "udiv": 2, "umod": 2, "putc": 1, "eof": 0}
# Every built-in name: the built-in functions above, `read()` and the built-in statements
# (the grammar's keywords `read`, `write`, `print`, `halt`, `assert`). None may be declared,
# in any position that declares a name (the checker's "'read' is a built-in name").
BUILTIN_NAMES = frozenset({*BUILTINS, "read", "write", "print", "halt", "assert"})


@dataclass(frozen=True)
class Builtin:
    name: str  # a key of BUILTINS
    args: tuple[Expr, ...]
    pos: SourcePos


@dataclass(frozen=True)
class Unary:
    op: str  # "-", "!", "~"
    operand: Expr
    pos: SourcePos


@dataclass(frozen=True)
class Binary:
    op: str  # "*", "/", "%", "+", "-", "<<", ">>", ">>>", "<", "<=", ">", ">=", "==", "!=",
    #          "&", "^", "|", "&&", "||"
    left: Expr
    right: Expr
    pos: SourcePos


@dataclass(frozen=True)
class Conditional:
    cond: Expr
    then: Expr
    orelse: Expr
    pos: SourcePos  # the `?`


Expr = IntLit | Name | Index | Call | Builtin | Read | Unary | Binary | Conditional


@dataclass(frozen=True)
class StrLit:
    value: str  # escapes already decoded
    pos: SourcePos


PrintArg = StrLit | Expr


# --- declarations ------------------------------------------------------------------------


@dataclass(frozen=True)
class Ident:
    name: str
    pos: SourcePos


@dataclass(frozen=True)
class ScalarDeclarator:
    name: str
    init: Expr | None
    pos: SourcePos


@dataclass(frozen=True)
class ArrayDeclarator:
    name: str
    size: Expr | None  # None: `name[]`, the length taken from the initialiser
    init: tuple[Expr, ...] | StrLit | None  # `= {...}`, `= "text"`, or None
    pos: SourcePos
    columns: Expr | None = None  # `name[rows][columns]`: a two-dimensional array


@dataclass(frozen=True)
class ArrayParam:
    """`name[]` (or `name[][columns]`) in a parameter list: an array passed by reference."""

    name: str
    columns: Expr | None
    pos: SourcePos


@dataclass(frozen=True)
class ConstDeclarator:
    name: str
    value: Expr
    pos: SourcePos


@dataclass(frozen=True)
class InputDecl:
    names: tuple[Ident, ...]
    pos: SourcePos


@dataclass(frozen=True)
class OutputDecl:
    names: tuple[Ident, ...]
    pos: SourcePos


@dataclass(frozen=True)
class VarDecl:
    declarators: tuple[ScalarDeclarator | ArrayDeclarator, ...]
    pos: SourcePos


@dataclass(frozen=True)
class ConstDecl:
    declarators: tuple[ConstDeclarator, ...]
    pos: SourcePos


@dataclass(frozen=True)
class FuncDef:
    name: str
    params: tuple[Ident | ArrayParam, ...]
    body: Block
    pos: SourcePos  # the `func` keyword
    name_pos: SourcePos  # the function's name


# --- statements --------------------------------------------------------------------------


@dataclass(frozen=True)
class Assign:
    target: Name | Index
    op: str  # "=", or "op=" for op in `+ - * / % & | ^ << >> >>>`
    value: Expr
    pos: SourcePos  # the assignment operator


@dataclass(frozen=True)
class Block:
    body: tuple[Stmt, ...]
    pos: SourcePos


@dataclass(frozen=True)
class If:
    cond: Expr
    then: Block
    orelse: Block | If | None
    pos: SourcePos


@dataclass(frozen=True)
class While:
    cond: Expr
    body: Block
    pos: SourcePos


@dataclass(frozen=True)
class ExprStmt:
    expr: Call | Builtin | Read
    pos: SourcePos


@dataclass(frozen=True)
class For:
    init: VarDecl | Assign | ExprStmt | None  # a `var` here is scoped to the loop
    cond: Expr | None  # None: always true
    step: Assign | ExprStmt | None
    body: Block
    pos: SourcePos


@dataclass(frozen=True)
class Break:
    pos: SourcePos


@dataclass(frozen=True)
class Continue:
    pos: SourcePos


@dataclass(frozen=True)
class Return:
    value: Expr | None  # None: returns 0
    pos: SourcePos


@dataclass(frozen=True)
class Print:
    args: tuple[PrintArg, ...]
    pos: SourcePos


@dataclass(frozen=True)
class Write:
    value: Expr
    pos: SourcePos


@dataclass(frozen=True)
class Halt:
    pos: SourcePos


@dataclass(frozen=True)
class Assert:
    cond: Expr
    pos: SourcePos


Stmt = (
    InputDecl | OutputDecl | VarDecl | ConstDecl | FuncDef | Assign | If | While | For | Break
    | Continue | Return | Print | Write | Halt | Assert | ExprStmt | Block
)


@dataclass(frozen=True)
class Program:
    """A parsed `.tl` file: its top-level items in source order, plus the path and text
    so that later passes can report errors with the offending line."""

    items: tuple[Stmt, ...]
    path: str
    text: str
    pos: SourcePos = SourcePos(1, 1)


Node = (
    Program | Stmt | Expr | StrLit | Ident | ScalarDeclarator | ArrayDeclarator | ArrayParam
    | ConstDeclarator
)

# Field annotations (strings: `from __future__ import annotations`) that never hold a node.
_LEAF_ANNOTATIONS = frozenset({"str", "int", "SourcePos"})


@cache
def _child_fields(cls: type) -> tuple[str, ...]:
    """The fields of a node type that hold nodes."""
    return tuple(f.name for f in fields(cls) if f.type not in _LEAF_ANNOTATIONS)


def children(node: Node) -> Iterator[Node]:
    """The nodes directly inside `node`, in field order (the order of the source text;
    `Index`: the row's index, then the column's)."""
    for name in _child_fields(type(node)):
        value = getattr(node, name)
        if isinstance(value, tuple):
            yield from value
        elif value is not None:
            yield value


def walk(*roots: Node, skip: tuple[type, ...] = ()) -> Iterator[Node]:
    """Every node in and under `roots`, each before its children, in source order. A node
    of a type in `skip` is left out with everything under it. Iterative: the depth of a
    tree is not bounded by Python's recursion limit."""
    stack: list[Node] = list(reversed(roots))
    while stack:
        node = stack.pop()
        if isinstance(node, skip):
            continue
        yield node
        stack.extend(reversed(tuple(children(node))))


def uses_eof(items: tuple[Stmt, ...]) -> bool:
    """Whether the program calls `eof()` anywhere (functions included)."""
    return any(isinstance(node, Builtin) and node.name == "eof" for node in walk(*items))


def calls_in(stmts: tuple[Stmt, ...] | list[Stmt]) -> Iterator[str]:
    """Names of the functions called anywhere in these statements (function definitions
    among them are not looked into)."""
    for node in walk(*stmts, skip=(FuncDef,)):
        if isinstance(node, Call):
            yield node.name


def has_call(node: Node) -> bool:
    """Whether evaluating `node` may call a function."""
    return any(isinstance(inner, Call) for inner in walk(node))
