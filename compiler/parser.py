"""The `.tl` parser: text -> `tl_ast.Program`, or a `SourceError` with a precise message.

The grammar is `grammar.lark` (LALR(1); the basic lexer, so keywords are reserved
everywhere). A non-recursive lark transformer builds the AST, so a long expression cannot
exhaust the Python stack while parsing. Long chains of one associative operator (`a + b -
c + ...`, `* & | ^ && ||`) are regrouped into a balanced tree of short left-to-right runs
(`_balance_chains`: same value, same evaluation order), so a flat expression of thousands
of terms is only a few dozen levels deep. What remains deep is real nesting (parentheses,
nested calls, blocks, unary operators, chains of non-associative operators): the parse
tree's depth is limited to `MAX_NESTING` so that the later recursive passes (checker,
source interpreter, lowering) stay far from Python's recursion limit.

Whatever the input, `parse_program` raises nothing but `SourceError`: every lark error is
turned into a message a C programmer would expect ("expected ';'", "unexpected '}'",
"unterminated string literal", "unterminated comment", ...) at the position of the problem.
"""

from __future__ import annotations

import functools
import re
from pathlib import Path

from lark import Lark, Token, Transformer_NonRecursive, Tree
from lark.exceptions import (
    LarkError,
    UnexpectedCharacters,
    UnexpectedEOF,
    UnexpectedInput,
    UnexpectedToken,
    VisitError,
)

from mlpc.cache import grammar_cache_file
from mlpc.compiler import tl_ast as ast
from mlpc.errors import SourceError, SourcePos

GRAMMAR_PATH = Path(__file__).with_name("grammar.lark")

# Parse-tree depth allowed. C compilers guarantee 63 levels of nested parentheses and 127 of
# blocks; 256 levels of parse tree leave room for long operator chains (`a + b + ... + z`)
# while every recursive pass over the AST stays far below Python's default limit of 1000.
MAX_NESTING = 256
# Operands an associative chain keeps in one left-to-right run (`((a + b) + c) + ...`, the
# shape the lowering compiles best); longer chains are split in halves, recursively.
CHAIN_RUN = 64
# Operators whose chains may be regrouped, by group: wrap-around `+`/`-` (with signs),
# `*`, `&`, `|`, `^` are associative on W-bit words, `&&`/`||` also in what they evaluate.
_CHAIN_GROUP = {"PLUS": "+", "MINUS": "+", "STAR": "*", "AMP": "&", "PIPE": "|",
                "CARET": "^", "ANDAND": "&&", "OROR": "||"}

# Escapes allowed in string and character literals.
ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "0": "\0", "\\": "\\", "'": "'", '"': '"'}

# How terminals are named in messages.
_TERMINAL_TEXT = {
    "SEMICOLON": "';'",
    "COMMA": "','",
    "LPAR": "'('",
    "RPAR": "')'",
    "LSQB": "'['",
    "RSQB": "']'",
    "LBRACE": "'{'",
    "RBRACE": "'}'",
    "NAME": "a name",
    "NUMBER": "a number",
    "CHAR": "a character literal",
    "STRING": "a string",
    "$END": "end of file",
}
_EXPRESSION_START = {"NAME", "NUMBER", "CHAR", "LPAR", "MINUS", "BANG", "TILDE", "READ"}
_STATEMENT_START = {"VAR", "IF", "WHILE", "FOR", "PRINT", "HALT"}
# The built-in names as token types. The keyword ones (READ, PRINT, ...) are taken where a
# name is declared (`decl_name`, so that the checker refuses them with its own message);
# when a name is wanted they are not worth naming beside it.
_NAME_KEYWORDS = {name.upper() for name in ast.BUILTIN_NAMES}
# Closing tokens that, when expected, are most likely simply missing: reported right after
# the previous token, as C compilers do.
_MISSING_CLOSERS = ("SEMICOLON", "RPAR", "RSQB")


class _LexError(Exception):
    """Raised from a lexer callback (unterminated comment); turned into a SourceError."""

    def __init__(self, message: str, pos: SourcePos) -> None:
        super().__init__(message)
        self.message = message
        self.pos = pos


def _unclosed_comment(token: Token) -> Token:
    raise _LexError("unterminated comment", _pos(token))


def _unknown_operator(token: Token) -> Token:
    raise _LexError(f"unknown operator '{token.value}'", _pos(token))


@functools.cache
def _lark() -> Lark:
    """The parser, its LALR tables loaded from mlpc's cache when lark finds them there for
    this very grammar (lark checks its hash), else built and stored (a fifth of a second)."""
    grammar = GRAMMAR_PATH.read_text(encoding="utf-8")
    return Lark(
        grammar,
        cache=grammar_cache_file(grammar),
        start="program",
        parser="lalr",
        lexer="basic",
        maybe_placeholders=True,
        lexer_callbacks={"UNCLOSED_COMMENT": _unclosed_comment,
                         "UNKNOWN_OPERATOR": _unknown_operator},
    )


def _pos(token: Token) -> SourcePos:
    return SourcePos(token.line or 1, token.column or 1)


# Characters `str.splitlines` breaks lines at but the lexer does not (it counts LF only).
_OTHER_LINE_BREAKS = re.compile(r"\r(?!\n)|[\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029]")


def text_for_messages(text: str) -> str:
    """The source as a `SourceError` shows it. `SourceError.render` picks the offending line
    with `splitlines`, which also breaks at CR, FF, U+2028 and the like, while the lexer
    counts LF only; those other line breaks become spaces here (CR LF stays), so the line
    shown is the line the position counts. Columns are unchanged."""
    return _OTHER_LINE_BREAKS.sub(" ", text)


def parse_program(text: str, path: str) -> ast.Program:
    """Parse `.tl` source text; `path` is used in error messages only."""
    try:
        return _parse(text, path)
    except SourceError as err:
        err.source = text_for_messages(text)
        raise


def _parse(text: str, path: str) -> ast.Program:
    try:
        tree = _lark().parse(text)
    except _LexError as err:
        raise SourceError(err.message, path, err.pos, text) from None
    except UnexpectedInput as err:
        message, pos = _describe_syntax_error(err, text)
        raise SourceError(message, path, pos, text) from None
    except LarkError as err:  # pragma: no cover - lark's other errors are grammar bugs
        raise SourceError(f"syntax error: {err}", path, SourcePos(1, 1), text) from None
    except RecursionError:  # pragma: no cover - the LALR parser is iterative
        raise SourceError("nesting too deep", path, SourcePos(1, 1), text) from None
    _balance_chains(tree)
    _check_depth(tree, path, text)
    try:
        items = _ToAst(path, text).transform(tree)
    except VisitError as err:
        if isinstance(err.orig_exc, SourceError):
            raise err.orig_exc from None
        raise
    except RecursionError:  # pragma: no cover - guarded by _check_depth
        raise SourceError("nesting too deep", path, SourcePos(1, 1), text) from None
    return ast.Program(items, path, text)


# --- syntax errors -----------------------------------------------------------------------


def _describe_syntax_error(err: UnexpectedInput, text: str) -> tuple[str, SourcePos]:
    if isinstance(err, UnexpectedCharacters):
        pos = SourcePos(err.line, err.column)
        char = err.char
        if char == '"':
            return "unterminated string literal", pos
        if char == "'":
            return "unterminated character literal", pos
        return f"unexpected character {_show_char(char)}", pos
    if isinstance(err, UnexpectedToken):
        return _describe_unexpected_token(err.token, _acceptable(err), text)
    if isinstance(err, UnexpectedEOF):
        end = _end_of_last_token(text, len(text))
        return "unexpected end of file", end
    return "syntax error", SourcePos(err.line if err.line > 0 else 1, max(err.column, 1))


def _acceptable(err: UnexpectedToken) -> set[str]:
    """The tokens the parser could really take where it failed. `err.expected` is the LALR
    state's lookahead set, which merges every context that state serves: after `if (q < 3`
    it holds `;` too (an expression statement's), and `expected ';'` would be the message.
    Feeding each candidate to a copy of the parser leaves only those this context takes."""
    if err.interactive_parser is None:  # pragma: no cover - the LALR parser always has one
        return set(err.expected)
    return set(err.interactive_parser.accepts())


def _show_char(char: str) -> str:
    if char.isprintable() and char != " ":
        return f"'{char}'"
    return f"U+{ord(char):04X}"


def _describe_unexpected_token(
    token: Token, expected: set[str], text: str
) -> tuple[str, SourcePos]:
    at_end = token.type == "$END"
    start = len(text) if at_end else (token.start_pos or 0)
    found = "end of file" if at_end else f"'{token.value}'"
    here = _end_of_last_token(text, len(text)) if at_end else _pos(token)
    if token.type == "STRING":
        return ("a string literal can only be an argument of print(...) or an array "
                "initialiser"), here
    wants_expression = expected >= _EXPRESSION_START
    for closer in _MISSING_CLOSERS:
        if closer in expected:
            closer_text = _TERMINAL_TEXT[closer]
            if wants_expression:  # `f(,)`, `return` at the end: either could be meant
                return f"expected an expression or {closer_text}, found {found}", here
            return f"expected {closer_text}", _end_of_last_token(text, start)
    if at_end and "RBRACE" in expected:
        return "expected '}' at end of file", here
    if wants_expression:
        return f"expected an expression, found {found}", here
    if token.type == "RBRACE":
        return "unexpected '}'", here
    if expected >= _STATEMENT_START:
        return f"expected a statement, found {found}", here
    if expected and expected <= {"LBRACE", "IF"}:
        return f"expected '{{', found {found} (braces are required around bodies)", here
    named = expected - _NAME_KEYWORDS if "NAME" in expected else expected
    if len(named) == 1:
        (only,) = named
        return f"expected {_terminal_text(only)}, found {found}", here
    if at_end:
        return "unexpected end of file", here
    return f"unexpected {found}", here


def _terminal_text(name: str) -> str:
    if name in _TERMINAL_TEXT:
        return _TERMINAL_TEXT[name]
    try:
        pattern = _lark().get_terminal(name).pattern
    except KeyError:  # pragma: no cover - every expected terminal is in the grammar
        return name
    if pattern.type == "str":
        return f"'{pattern.value}'"
    return name.lower()  # pragma: no cover - regexp terminals are all named above


def _end_of_last_token(text: str, before: int) -> SourcePos:
    """The position just after the last token that starts before offset `before` (where a
    missing `;` belongs), or 1:1 when there is none."""
    last: Token | None = None
    try:
        for token in _lark().lex(text):
            if (token.start_pos or 0) >= before:
                break
            last = token
    except (LarkError, _LexError):
        pass
    if last is None or last.end_line is None or last.end_column is None:
        return SourcePos(1, 1)
    return SourcePos(last.end_line, last.end_column)


def _chain_group(node: Tree | Token) -> str | None:
    """The group of a `binary` parse-tree node's operator, if it may be regrouped."""
    if isinstance(node, Tree) and node.data == "binary":
        return _CHAIN_GROUP.get(node.children[1].type)
    return None


def _balance_chains(tree: Tree) -> None:
    """Regroup every chain of more than CHAIN_RUN operands in place (see the module doc),
    without recursion over the chain."""
    stack: list[Tree | Token] = [tree]
    while stack:
        node = stack.pop()
        if not isinstance(node, Tree):
            continue
        group = _chain_group(node)
        if group is None:
            stack.extend(node.children)
            continue
        terms: list[tuple[Token | None, Tree]] = []
        spine: Tree = node
        while _chain_group(spine) == group:
            left, op, right = spine.children
            terms.append((op, right))
            spine = left
        terms.append((None, spine))
        terms.reverse()
        if len(terms) > CHAIN_RUN:
            node.children = _grouped(terms).children
        stack.extend(operand for _op, operand in terms)


def _grouped(terms: list[tuple[Token | None, Tree]]) -> Tree:
    """`t0 op1 t1 op2 t2 ...` (terms[0] has no operator) as a tree of depth at most
    CHAIN_RUN + log2(len(terms)). Operands stay in order; splitting `a - b + c` before
    `- b` gives `a - (b - c)`: the right half's signs are taken relative to its first."""
    if len(terms) <= CHAIN_RUN:
        tree = terms[0][1]
        for op, operand in terms[1:]:
            tree = Tree("binary", [tree, op, operand])
        return tree
    mid = len(terms) // 2
    op, first = terms[mid]
    assert op is not None
    right: list[tuple[Token | None, Tree]] = [(None, first)]
    for inner, operand in terms[mid + 1:]:
        assert inner is not None
        right.append((_relative_to(op, inner), operand))
    return Tree("binary", [_grouped(terms[:mid]), op, _grouped(right)])


def _relative_to(op: Token, inner: Token) -> Token:
    """The operator `inner` becomes inside a parenthesised right operand of `op`:
    `x - (y - z)` is `x - y + z`, so under a `-` a `+` becomes `-` and a `-` becomes `+`."""
    if op.type != "MINUS" or inner.type not in ("PLUS", "MINUS"):
        return inner
    if inner.type == "PLUS":
        return Token.new_borrow_pos("MINUS", "-", inner)
    return Token.new_borrow_pos("PLUS", "+", inner)


def _check_depth(tree: Tree, path: str, text: str) -> None:
    """Reject parse trees deeper than MAX_NESTING, found without recursion."""
    stack: list[tuple[Tree | Token, int]] = [(tree, 0)]
    while stack:
        node, depth = stack.pop()
        if not isinstance(node, Tree):
            continue
        if depth > MAX_NESTING:
            raise SourceError(
                f"nesting too deep (more than {MAX_NESTING} levels)",
                path,
                _first_position(node),
                text,
            )
        stack.extend((child, depth + 1) for child in node.children)


def _first_position(tree: Tree) -> SourcePos:
    stack: list[Tree | Token | None] = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, Token):
            return _pos(node)
        if isinstance(node, Tree):
            stack.extend(reversed(node.children))
    return SourcePos(1, 1)  # pragma: no cover - every deep tree holds a token


# --- the parse tree -> AST transformer ---------------------------------------------------


def _present(children: list) -> list:
    """The children that are really there: drops lark's `None` placeholders."""
    return [c for c in children if c is not None]


def _as_statement(
    node: ast.VarDecl | ast.Assign | ast.Call | ast.Builtin | ast.Read | None,
) -> ast.VarDecl | ast.Assign | ast.ExprStmt | None:
    """`for` headers hold calls as expression statements."""
    if isinstance(node, (ast.Call, ast.Builtin, ast.Read)):
        return ast.ExprStmt(node, node.pos)
    return node


class _ToAst(Transformer_NonRecursive):
    """Builds `tl_ast` nodes; one method per rule (or alias) of the grammar."""

    def __init__(self, path: str, text: str) -> None:
        super().__init__()
        self.path = path
        self.text = text

    def _error(self, message: str, pos: SourcePos) -> SourceError:
        return SourceError(message, self.path, pos, self.text)

    # program and declarations

    def program(self, children: list) -> tuple[ast.Stmt, ...]:
        return tuple(children)

    def input_decl(self, children: list) -> ast.InputDecl:
        keyword, *names = children
        return ast.InputDecl(tuple(names), _pos(keyword))

    def output_decl(self, children: list) -> ast.OutputDecl:
        keyword, *names = children
        return ast.OutputDecl(tuple(names), _pos(keyword))

    def ident(self, children: list) -> ast.Ident:
        (name,) = children
        return ast.Ident(str(name), _pos(name))

    def var_decl(self, children: list) -> ast.VarDecl:
        (decl,) = children
        return decl

    def var_decl_body(self, children: list) -> ast.VarDecl:
        keyword, *declarators = children
        return ast.VarDecl(tuple(declarators), _pos(keyword))

    def scalar_declarator(self, children: list) -> ast.ScalarDeclarator:
        name, _assign, init = children
        return ast.ScalarDeclarator(str(name), init, _pos(name))

    def array_declarator(self, children: list) -> ast.ArrayDeclarator:
        name, size, _assign, init = children
        return ast.ArrayDeclarator(str(name), size, init, _pos(name))

    def matrix_declarator(self, children: list) -> ast.ArrayDeclarator:
        name, rows, columns, _assign, init = children
        return ast.ArrayDeclarator(str(name), rows, init, _pos(name), columns)

    def array_param(self, children: list) -> ast.ArrayParam:
        (name,) = children
        return ast.ArrayParam(str(name), None, _pos(name))

    def matrix_param(self, children: list) -> ast.ArrayParam:
        name, columns = children
        return ast.ArrayParam(str(name), columns, _pos(name))

    def array_init(self, children: list) -> tuple[ast.Expr, ...]:
        return tuple(c for c in _present(children) if not isinstance(c, Token))

    def const_decl(self, children: list) -> ast.ConstDecl:
        keyword, *declarators = children
        return ast.ConstDecl(tuple(declarators), _pos(keyword))

    def const_declarator(self, children: list) -> ast.ConstDeclarator:
        name, _assign, value = children
        return ast.ConstDeclarator(str(name), value, _pos(name))

    def func_def(self, children: list) -> ast.FuncDef:
        keyword, name, *params, body = children
        return ast.FuncDef(str(name), tuple(_present(params)), body, _pos(keyword), _pos(name))

    # statements

    def block(self, children: list) -> ast.Block:
        brace, *body = children
        return ast.Block(tuple(body), _pos(brace))

    def assign_stmt(self, children: list) -> ast.Assign:
        (assign,) = children
        return assign

    def assign(self, children: list) -> ast.Assign:
        target, op, value = children
        return ast.Assign(target, str(op), value, _pos(op))

    def if_stmt(self, children: list) -> ast.If:
        keyword, cond, then, _else, orelse = children
        return ast.If(cond, then, orelse, _pos(keyword))

    def while_stmt(self, children: list) -> ast.While:
        keyword, cond, body = children
        return ast.While(cond, body, _pos(keyword))

    def for_stmt(self, children: list) -> ast.For:
        keyword, init, cond, step, body = children
        return ast.For(_as_statement(init), cond, _as_statement(step), body, _pos(keyword))

    def break_stmt(self, children: list) -> ast.Break:
        return ast.Break(_pos(children[0]))

    def continue_stmt(self, children: list) -> ast.Continue:
        return ast.Continue(_pos(children[0]))

    def return_stmt(self, children: list) -> ast.Return:
        keyword, value = children
        return ast.Return(value, _pos(keyword))

    def print_stmt(self, children: list) -> ast.Print:
        keyword, *args = children
        return ast.Print(tuple(_present(args)), _pos(keyword))

    def string(self, children: list) -> ast.StrLit:
        (token,) = children
        return ast.StrLit(self._decode(token), _pos(token))

    def write_stmt(self, children: list) -> ast.Write:
        keyword, value = children
        return ast.Write(value, _pos(keyword))

    def halt_stmt(self, children: list) -> ast.Halt:
        return ast.Halt(_pos(children[0]))

    def assert_stmt(self, children: list) -> ast.Assert:
        keyword, cond = children
        return ast.Assert(cond, _pos(keyword))

    def expr_stmt(self, children: list) -> ast.ExprStmt:
        (expr,) = children
        return ast.ExprStmt(expr, expr.pos)

    def call_expr(self, children: list) -> ast.Call | ast.Builtin | ast.Read:
        (expr,) = children
        return expr

    # expressions

    def binary(self, children: list) -> ast.Binary:
        left, op, right = children
        return ast.Binary(str(op), left, right, _pos(op))

    def conditional(self, children: list) -> ast.Conditional:
        cond, question, then, orelse = children
        return ast.Conditional(cond, then, orelse, _pos(question))

    def unary(self, children: list) -> ast.Unary:
        op, operand = children
        return ast.Unary(str(op), operand, _pos(op))

    def name(self, children: list) -> ast.Name:
        (name,) = children
        return ast.Name(str(name), _pos(name))

    def index(self, children: list) -> ast.Index:
        name, index = children
        return ast.Index(str(name), index, _pos(name))

    def matrix_index(self, children: list) -> ast.Index:
        name, index, column = children
        return ast.Index(str(name), index, _pos(name), column)

    def call(self, children: list) -> ast.Call | ast.Builtin:
        name, *args = children
        if str(name) in ast.BUILTINS:
            return ast.Builtin(str(name), tuple(_present(args)), _pos(name))
        return ast.Call(str(name), tuple(_present(args)), _pos(name))

    def read(self, children: list) -> ast.Read:
        return ast.Read(_pos(children[0]))

    def number(self, children: list) -> ast.IntLit:
        (token,) = children
        text = str(token)
        lowered = text.lower()
        if lowered.startswith("0x") and len(text) > 2 and _all_in(lowered[2:], "0123456789abcdef"):
            return ast.IntLit(int(text, 16), text, _pos(token))
        if _all_in(text, "0123456789") and (text == "0" or not text.startswith("0")):
            return ast.IntLit(int(text), text, _pos(token))
        if _all_in(text, "0123456789"):
            raise self._error(
                f"invalid integer literal '{text}' (leading zeros are not allowed)", _pos(token)
            )
        raise self._error(f"invalid integer literal '{text}'", _pos(token))

    def char(self, children: list) -> ast.IntLit:
        (token,) = children
        value = self._decode(token)
        if len(value) != 1:
            what = "empty character literal" if not value else "character literal holds "
            if value:
                what += f"{len(value)} characters, not one"
            raise self._error(what, _pos(token))
        return ast.IntLit(ord(value), str(token), _pos(token))

    def _decode(self, token: Token) -> str:
        """The value of a quoted literal with its escapes decoded; an unknown escape is an
        error at the backslash."""
        body = str(token)[1:-1]
        out: list[str] = []
        i = 0
        while i < len(body):
            ch = body[i]
            if ch != "\\":
                out.append(ch)
                i += 1
                continue
            escape = body[i + 1]  # the lexer guarantees a character after a backslash
            if escape not in ESCAPES:
                where = SourcePos(token.line or 1, (token.column or 1) + 1 + i)
                raise self._error(f"unknown escape sequence '\\{escape}'", where)
            out.append(ESCAPES[escape])
            i += 2
        return "".join(out)


def _all_in(text: str, alphabet: str) -> bool:
    return bool(text) and all(ch in alphabet for ch in text)
