"""The `.tl` parser: the AST it builds (shapes, positions, literal values) and its syntax
errors (exact `file:line:col: error: message` text and caret line). Arbitrary text must
produce an AST or a `SourceError`, never anything else."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tl_cases import CASES

from mlpc.compiler import tl_ast as ast
from mlpc.compiler.parser import CHAIN_RUN, MAX_NESTING, parse_program
from mlpc.errors import SourceError, SourcePos


def parse(text: str) -> ast.Program:
    return parse_program(text, "t.tl")


def expr_of(text: str) -> ast.Expr:
    """The value expression of `x = <text>;`."""
    (stmt,) = parse(f"x = {text};").items
    assert isinstance(stmt, ast.Assign)
    return stmt.value


def shape(expr: ast.Expr) -> str:
    """A fully parenthesised rendering, to compare tree shapes compactly."""
    if isinstance(expr, ast.Binary):
        return f"({shape(expr.left)} {expr.op} {shape(expr.right)})"
    if isinstance(expr, ast.Unary):
        return f"({expr.op}{shape(expr.operand)})"
    if isinstance(expr, ast.IntLit):
        return str(expr.value)
    if isinstance(expr, ast.Name):
        return expr.name
    if isinstance(expr, ast.Index):
        return f"{expr.name}[{shape(expr.index)}]"
    if isinstance(expr, (ast.Call, ast.Builtin)):
        return f"{expr.name}({', '.join(shape(a) for a in expr.args)})"
    if isinstance(expr, ast.Conditional):
        return f"({shape(expr.cond)} ? {shape(expr.then)} : {shape(expr.orelse)})"
    assert isinstance(expr, ast.Read)
    return "read()"


def syntax_error(text: str) -> str:
    with pytest.raises(SourceError) as info:
        parse(text)
    return info.value.render()


# --- expressions -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1 + 2 * 3", "(1 + (2 * 3))"),
        ("1 - 2 - 3", "((1 - 2) - 3)"),
        ("8 / 4 / 2", "((8 / 4) / 2)"),
        ("a % b * c", "((a % b) * c)"),
        ("1 + 2 << 3", "((1 + 2) << 3)"),
        ("a << b >> c", "((a << b) >> c)"),
        ("a < b == c > d", "((a < b) == (c > d))"),
        ("a <= b != c >= d", "((a <= b) != (c >= d))"),
        ("a & b == c", "(a & (b == c))"),
        ("a | b ^ c & d", "(a | (b ^ (c & d)))"),
        ("a || b && c", "(a || (b && c))"),
        ("a && b | c", "(a && (b | c))"),
        ("-a * -b", "((-a) * (-b))"),
        ("!~-x", "(!(~(-x)))"),
        ("- -3", "(-(-3))"),
        ("(1 + 2) * 3", "((1 + 2) * 3)"),
        ("((((x))))", "x"),
        ("f(1, g(2), a[i + 1]) + read()", "(f(1, g(2), a[(i + 1)]) + read())"),
        ("f()", "f()"),
        ("a >>> b >> c << d", "(((a >>> b) >> c) << d)"),
        ("a + b >>> c", "((a + b) >>> c)"),
        ("a >>> b < c", "((a >>> b) < c)"),
        ("a ? b : c ? d : e", "(a ? b : (c ? d : e))"),
        ("a ? b ? c : d : e", "(a ? (b ? c : d) : e)"),
        ("a || b ? c + 1 : d && e", "((a || b) ? (c + 1) : (d && e))"),
        ("(a ? b : c) * 2", "((a ? b : c) * 2)"),
        ("ult(a, b) + umod(c, 3)", "(ult(a, b) + umod(c, 3))"),
    ],
)
def test_precedence_and_associativity(text: str, expected: str) -> None:
    assert shape(expr_of(text)) == expected


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("0", 0),
        ("42", 42),
        ("2147483648", 2147483648),  # range is the checker's business
        ("0x1F", 31),
        ("0XfF", 255),
        ("'A'", 65),
        ("'\\n'", 10),
        ("'\\t'", 9),
        ("'\\r'", 13),
        ("'\\0'", 0),
        ("'\\\\'", 92),
        ("'\\''", 39),
        ("'\\\"'", 34),
        ("'\"'", 34),
        ("'é'", 233),
    ],
)
def test_literal_values(text: str, value: int) -> None:
    literal = expr_of(text)
    assert isinstance(literal, ast.IntLit)
    assert (literal.value, literal.text) == (value, text)


def test_string_escapes() -> None:
    (stmt,) = parse('print("a\\tb\\n\\0\\\\\\"\\\'c");').items
    assert isinstance(stmt, ast.Print)
    assert stmt.args == (ast.StrLit("a\tb\n\0\\\"'c", SourcePos(1, 7)),)


def test_positions_of_operators_names_and_literals() -> None:
    expr = expr_of("a +\n  b[2] * f(c)")
    assert expr == ast.Binary(
        "+",
        ast.Name("a", SourcePos(1, 5)),
        ast.Binary(
            "*",
            ast.Index("b", ast.IntLit(2, "2", SourcePos(2, 5)), SourcePos(2, 3)),
            ast.Call("f", (ast.Name("c", SourcePos(2, 12)),), SourcePos(2, 10)),
            SourcePos(2, 8),
        ),
        SourcePos(1, 7),
    )


# --- statements and declarations ---------------------------------------------------------


def test_declarations() -> None:
    program = parse(
        "input a, b;\noutput z;\nvar x = 1, y;\nvar buf[16];\nvar pre[4] = {1, 2, 3, 4,};\n"
        "const N = 10, M = N;\n"
    )
    p = SourcePos
    assert program.items == (
        ast.InputDecl((ast.Ident("a", p(1, 7)), ast.Ident("b", p(1, 10))), p(1, 1)),
        ast.OutputDecl((ast.Ident("z", p(2, 8)),), p(2, 1)),
        ast.VarDecl(
            (
                ast.ScalarDeclarator("x", ast.IntLit(1, "1", p(3, 9)), p(3, 5)),
                ast.ScalarDeclarator("y", None, p(3, 12)),
            ),
            p(3, 1),
        ),
        ast.VarDecl((ast.ArrayDeclarator("buf", ast.IntLit(16, "16", p(4, 9)), None, p(4, 5)),),
                    p(4, 1)),
        ast.VarDecl(
            (
                ast.ArrayDeclarator(
                    "pre",
                    ast.IntLit(4, "4", p(5, 9)),
                    tuple(ast.IntLit(v, str(v), p(5, 12 + 3 * v)) for v in (1, 2, 3, 4)),
                    p(5, 5),
                ),
            ),
            p(5, 1),
        ),
        ast.ConstDecl(
            (
                ast.ConstDeclarator("N", ast.IntLit(10, "10", p(6, 11)), p(6, 7)),
                ast.ConstDeclarator("M", ast.Name("N", p(6, 19)), p(6, 15)),
            ),
            p(6, 1),
        ),
    )


def test_empty_array_initialiser() -> None:
    (decl,) = parse("var a[2] = {};").items
    assert isinstance(decl, ast.VarDecl)
    assert decl.declarators[0] == ast.ArrayDeclarator(
        "a", ast.IntLit(2, "2", SourcePos(1, 7)), (), SourcePos(1, 5)
    )


def test_function_definition() -> None:
    (func,) = parse("func f(p, q) {\n  return p;\n}").items
    assert func == ast.FuncDef(
        "f",
        (ast.Ident("p", SourcePos(1, 8)), ast.Ident("q", SourcePos(1, 11))),
        ast.Block((ast.Return(ast.Name("p", SourcePos(2, 10)), SourcePos(2, 3)),),
                  SourcePos(1, 14)),
        SourcePos(1, 1),
        SourcePos(1, 6),
    )
    (no_params,) = parse("func g() { return; }").items
    assert isinstance(no_params, ast.FuncDef)
    assert no_params.params == ()
    assert no_params.body.body == (ast.Return(None, SourcePos(1, 12)),)


@pytest.mark.parametrize(
    "op", ["=", "+=", "-=", "*=", "/=", "%=", "&=", "|=", "^=", "<<=", ">>=", ">>>="])
def test_assignment_operators(op: str) -> None:
    (stmt,) = parse(f"a[i] {op} 2;").items
    assert stmt == ast.Assign(
        ast.Index("a", ast.Name("i", SourcePos(1, 3)), SourcePos(1, 1)),
        op,
        ast.IntLit(2, "2", SourcePos(1, 7 + len(op))),
        SourcePos(1, 6),
    )


def test_builtins_and_conditional_nodes() -> None:
    (stmt,) = parse("x = ult(a, 1) ? putc : umod(b, 2);").items
    assert isinstance(stmt, ast.Assign)
    assert stmt.value == ast.Conditional(
        ast.Builtin("ult", (ast.Name("a", SourcePos(1, 9)), ast.IntLit(1, "1", SourcePos(1, 12))),
                    SourcePos(1, 5)),
        ast.Name("putc", SourcePos(1, 17)),
        ast.Builtin("umod", (ast.Name("b", SourcePos(1, 29)), ast.IntLit(2, "2", SourcePos(1, 32))),
                    SourcePos(1, 24)),
        SourcePos(1, 15),
    )
    (call,) = parse("putc(10);").items
    assert call == ast.ExprStmt(ast.Builtin("putc", (ast.IntLit(10, "10", SourcePos(1, 6)),),
                                            SourcePos(1, 1)), SourcePos(1, 1))


def test_if_else_if_else() -> None:
    (stmt,) = parse("if (a) { } else if (b) { } else { halt; }").items
    p = SourcePos
    assert stmt == ast.If(
        ast.Name("a", p(1, 5)),
        ast.Block((), p(1, 8)),
        ast.If(
            ast.Name("b", p(1, 21)),
            ast.Block((), p(1, 24)),
            ast.Block((ast.Halt(p(1, 35)),), p(1, 33)),
            p(1, 17),
        ),
        p(1, 1),
    )


def test_for_headers() -> None:
    (full, empty, calls) = parse(
        "for (var i = 0; i < 3; i += 1) { }\nfor (;;) { break; }\nfor (f(); read(); g()) { }"
    ).items
    p = SourcePos
    assert full == ast.For(
        ast.VarDecl((ast.ScalarDeclarator("i", ast.IntLit(0, "0", p(1, 14)), p(1, 10)),),
                    p(1, 6)),
        ast.Binary("<", ast.Name("i", p(1, 17)), ast.IntLit(3, "3", p(1, 21)), p(1, 19)),
        ast.Assign(ast.Name("i", p(1, 24)), "+=", ast.IntLit(1, "1", p(1, 29)), p(1, 26)),
        ast.Block((), p(1, 32)),
        p(1, 1),
    )
    assert empty == ast.For(None, None, None, ast.Block((ast.Break(p(2, 12)),), p(2, 10)),
                            p(2, 1))
    assert calls == ast.For(
        ast.ExprStmt(ast.Call("f", (), p(3, 6)), p(3, 6)),
        ast.Read(p(3, 11)),
        ast.ExprStmt(ast.Call("g", (), p(3, 19)), p(3, 19)),
        ast.Block((), p(3, 24)),
        p(3, 1),
    )


def test_other_statements() -> None:
    program = parse(
        'while (1) { continue; }\nprint("n=", n, "\\n");\nwrite(7);\nassert(x);\n'
        "f(1);\nread();\n{ halt; }\nprint();"
    )
    p = SourcePos
    assert program.items == (
        ast.While(ast.IntLit(1, "1", p(1, 8)), ast.Block((ast.Continue(p(1, 13)),), p(1, 11)),
                  p(1, 1)),
        ast.Print((ast.StrLit("n=", p(2, 7)), ast.Name("n", p(2, 13)),
                   ast.StrLit("\n", p(2, 16))), p(2, 1)),
        ast.Write(ast.IntLit(7, "7", p(3, 7)), p(3, 1)),
        ast.Assert(ast.Name("x", p(4, 8)), p(4, 1)),
        ast.ExprStmt(ast.Call("f", (ast.IntLit(1, "1", p(5, 3)),), p(5, 1)), p(5, 1)),
        ast.ExprStmt(ast.Read(p(6, 1)), p(6, 1)),
        ast.Block((ast.Halt(p(7, 3)),), p(7, 1)),
        ast.Print((), p(8, 1)),
    )


def test_comments_are_ignored() -> None:
    program = parse("// line\n/* block\n * more */ x = 1; /**/ // end\n/***/")
    assert program.items == (
        ast.Assign(ast.Name("x", SourcePos(3, 12)), "=", ast.IntLit(1, "1", SourcePos(3, 16)),
                   SourcePos(3, 14)),
    )


def test_built_in_keywords_parse_where_a_name_is_declared() -> None:
    """The checker, not the parser, refuses them: one message for every built-in name."""
    program = parse("var read = 1;\noutput assert;\nconst write = 2;\n"
                    "func print(halt, read[]) { }")
    var, output, const, func = program.items
    assert isinstance(var, ast.VarDecl) and var.declarators[0].name == "read"
    assert isinstance(output, ast.OutputDecl)
    assert output.names == (ast.Ident("assert", SourcePos(2, 8)),)
    assert isinstance(const, ast.ConstDecl) and const.declarators[0].name == "write"
    assert isinstance(func, ast.FuncDef) and func.name == "print"
    assert func.params == (ast.Ident("halt", SourcePos(4, 12)),
                           ast.ArrayParam("read", None, SourcePos(4, 18)))


def test_program_keeps_path_and_text() -> None:
    program = parse_program("halt;", "dir/p.tl")
    assert (program.path, program.text, program.pos) == ("dir/p.tl", "halt;", SourcePos(1, 1))


def test_nodes_are_frozen_and_hold_tuples() -> None:
    program = parse("f(1, 2);")
    with pytest.raises(AttributeError):
        program.items = ()  # type: ignore[misc]
    (stmt,) = program.items
    assert isinstance(stmt, ast.ExprStmt) and isinstance(stmt.expr, ast.Call)
    assert isinstance(stmt.expr.args, tuple)


def test_walk_visits_every_node_in_source_order() -> None:
    program = parse("var g[2][2];\nfunc f(a[]) { return a[0]; }\n"
                    "print(\"x\", g[1][f(g[0])] + -eof());\n")
    kinds = [type(node).__name__ for node in ast.walk(program)]
    assert kinds == [
        "Program", "VarDecl", "ArrayDeclarator", "IntLit", "IntLit",
        "FuncDef", "ArrayParam", "Block", "Return", "Index", "IntLit",
        "Print", "StrLit", "Binary", "Index", "IntLit", "Call", "Index", "IntLit",
        "Unary", "Builtin",
    ]
    binary = next(n for n in ast.walk(program) if isinstance(n, ast.Binary))
    assert list(ast.children(binary)) == [binary.left, binary.right]
    # a column index is a child too: a call there is a call of the expression
    assert ast.has_call(binary.left) and not ast.has_call(binary.right)
    assert ast.uses_eof(program.items) and not ast.uses_eof(program.items[:2])
    assert list(ast.calls_in(program.items)) == ["f"]
    assert [type(n).__name__ for n in ast.walk(*program.items, skip=(ast.FuncDef,))][:2] \
        == ["VarDecl", "ArrayDeclarator"]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_every_shared_case_parses(case) -> None:
    parse_program(case.source, f"{case.name}.tl")


# --- syntax errors -----------------------------------------------------------------------

SYNTAX_ERRORS = [
    ("x = 1", "t.tl:1:6: error: expected ';'\nx = 1\n     ^"),
    ("x = 1 2;", "t.tl:1:6: error: expected ';'\nx = 1 2;\n     ^"),
    ("x = 1\ny = 2;", "t.tl:1:6: error: expected ';'\nx = 1\n     ^"),
    ("f(1;", "t.tl:1:4: error: expected ')'\nf(1;\n   ^"),
    ("x = a[1;", "t.tl:1:8: error: expected ']'\nx = a[1;\n       ^"),
    # the closer this context wants, not the `;` an expression statement would
    ("if (q < 3 { q = 1; }", "t.tl:1:10: error: expected ')'\nif (q < 3 { q = 1; }\n         ^"),
    ("while (q < 3 { }", "t.tl:1:13: error: expected ')'\nwhile (q < 3 { }\n            ^"),
    ("if ((a) { }", "t.tl:1:8: error: expected ')'\nif ((a) { }\n       ^"),
    ("x = f(a, b { }", "t.tl:1:11: error: expected ')'\nx = f(a, b { }\n          ^"),
    ("x = a[i { }", "t.tl:1:8: error: expected ']'\nx = a[i { }\n       ^"),
    ("print(x { }", "t.tl:1:8: error: expected ')'\nprint(x { }\n       ^"),
    ("for (i = 0; i < 3 { }", "t.tl:1:18: error: expected ';'\nfor (i = 0; i < 3 { }\n"
                              "                 ^"),
    ("}", "t.tl:1:1: error: unexpected '}'\n}\n^"),
    ("x = 1; }", "t.tl:1:8: error: unexpected '}'\nx = 1; }\n       ^"),
    ("x = ;", "t.tl:1:5: error: expected an expression, found ';'\nx = ;\n    ^"),
    ("x = 1 +* 2;", "t.tl:1:8: error: expected an expression, found '*'\nx = 1 +* 2;\n       ^"),
    ("x = 3 +", "t.tl:1:8: error: expected an expression, found end of file\nx = 3 +\n       ^"),
    ("f(,);", "t.tl:1:3: error: expected an expression or ')', found ','\nf(,);\n  ^"),
    ("5;", "t.tl:1:1: error: expected a statement, found '5'\n5;\n^"),
    ("else { }", "t.tl:1:1: error: expected a statement, found 'else'\nelse { }\n^"),
    ("x + 1;", "t.tl:1:3: error: unexpected '+'\nx + 1;\n  ^"),
    ("var if = 1;", "t.tl:1:5: error: expected a name, found 'if'\nvar if = 1;\n    ^"),
    ("var while = 1;", "t.tl:1:5: error: expected a name, found 'while'\nvar while = 1;\n    ^"),
    ("func 3() { }", "t.tl:1:6: error: expected a name, found '3'\nfunc 3() { }\n     ^"),
    ("const 5 = 1;", "t.tl:1:7: error: expected a name, found '5'\nconst 5 = 1;\n      ^"),
    ("input;", "t.tl:1:6: error: expected a name, found ';'\ninput;\n     ^"),
    ("if x { }", "t.tl:1:4: error: expected '(', found 'x'\nif x { }\n   ^"),
    (
        "while (x) y = 1;",
        "t.tl:1:11: error: expected '{', found 'y' (braces are required around bodies)\n"
        "while (x) y = 1;\n          ^",
    ),
    (
        "if (x) { } else y = 1;",
        "t.tl:1:17: error: expected '{', found 'y' (braces are required around bodies)\n"
        "if (x) { } else y = 1;\n                ^",
    ),
    ("{ x = 1;", "t.tl:1:9: error: expected '}' at end of file\n{ x = 1;\n        ^"),
    (
        'print("abc);',
        "t.tl:1:7: error: unterminated string literal\nprint(\"abc);\n      ^",
    ),
    (
        'print("abc\n");',
        "t.tl:1:7: error: unterminated string literal\nprint(\"abc\n      ^",
    ),
    ("x = 'a;", "t.tl:1:5: error: unterminated character literal\nx = 'a;\n    ^"),
    ("x = 1; /* open", "t.tl:1:8: error: unterminated comment\nx = 1; /* open\n       ^"),
    ("/* a */ /* b\n */ /* c", "t.tl:2:5: error: unterminated comment\n */ /* c\n    ^"),
    ("x = 'ab';", "t.tl:1:5: error: character literal holds 2 characters, not one\n"
                  "x = 'ab';\n    ^"),
    ("x = '';", "t.tl:1:5: error: empty character literal\nx = '';\n    ^"),
    ('print("a\\qb");', "t.tl:1:9: error: unknown escape sequence '\\q'\n"
                        'print("a\\qb");\n        ^'),
    ("x = '\\x';", "t.tl:1:6: error: unknown escape sequence '\\x'\nx = '\\x';\n     ^"),
    ("x = 012;", "t.tl:1:5: error: invalid integer literal '012' (leading zeros are not "
                 "allowed)\nx = 012;\n    ^"),
    ("x = 12ab;", "t.tl:1:5: error: invalid integer literal '12ab'\nx = 12ab;\n    ^"),
    ("x = 0x;", "t.tl:1:5: error: invalid integer literal '0x'\nx = 0x;\n    ^"),
    ("x = 0x1g;", "t.tl:1:5: error: invalid integer literal '0x1g'\nx = 0x1g;\n    ^"),
    ("x = @;", "t.tl:1:5: error: unexpected character '@'\nx = @;\n    ^"),
    ("x = 1;\n\tx = #;", "t.tl:2:6: error: unexpected character '#'\n x = #;\n     ^"),
    ("x = \x01;", "t.tl:1:5: error: unexpected character U+0001\nx = \x01;\n    ^"),
    ("func f(a,) { }", "t.tl:1:10: error: expected a name, found ')'\nfunc f(a,) { }\n         ^"),
    ("func (a) { }", "t.tl:1:6: error: expected a name, found '('\nfunc (a) { }\n     ^"),
    ("x = a[];", "t.tl:1:7: error: expected an expression, found ']'\n"
                 "x = a[];\n      ^"),
    ('x = "s";', "t.tl:1:5: error: a string literal can only be an argument of print(...) or "
                 'an array initialiser\nx = "s";\n    ^'),
    ('write("s");', "t.tl:1:7: error: a string literal can only be an argument of print(...) "
                    'or an array initialiser\nwrite("s");\n      ^'),
    ("x == 1;", "t.tl:1:3: error: unexpected '=='\nx == 1;\n  ^"),
    ("x <<<= 1;", "t.tl:1:3: error: unknown operator '<<<='\nx <<<= 1;\n  ^"),
    ("x = a === b;", "t.tl:1:7: error: unknown operator '==='\nx = a === b;\n      ^"),
    ("x = a <<< 2;", "t.tl:1:7: error: unknown operator '<<<'\nx = a <<< 2;\n      ^"),
    ("if (a !== b) { }", "t.tl:1:7: error: unknown operator '!=='\nif (a !== b) { }\n      ^"),
    ("x = a ** 2;", "t.tl:1:7: error: unknown operator '**'\nx = a ** 2;\n      ^"),
    ("i++;", "t.tl:1:2: error: unknown operator '++'\ni++;\n ^"),
    ("x >>>>= 1;", "t.tl:1:3: error: unknown operator '>>>>='\nx >>>>= 1;\n  ^"),
    ("x = a ? b;", "t.tl:1:10: error: expected ':', found ';'\nx = a ? b;\n         ^"),
    ("return", "t.tl:1:7: error: expected an expression or ';', found end of file\n"
               "return\n      ^"),
    ("x = 1;\ry = 2;\x0cz = ;\u2028w = 1;",
     "t.tl:1:19: error: expected an expression, found ';'\nx = 1; y = 2; z = ; w = 1;\n"
     "                  ^"),
    ("x = 1;\r\ny = ;", "t.tl:2:5: error: expected an expression, found ';'\ny = ;\n    ^"),
]


@pytest.mark.parametrize(("text", "rendered"), SYNTAX_ERRORS, ids=[t for t, _ in SYNTAX_ERRORS])
def test_syntax_error_messages(text: str, rendered: str) -> None:
    assert syntax_error(text) == rendered


def test_deep_nesting_is_an_error_not_a_crash() -> None:
    # program > assign_stmt > assign > 300 unary minus: the parse tree node one level too
    # deep is the (MAX_NESTING - 1)-th minus, at column 4 + MAX_NESTING - 1.
    text = "x = " + "-" * 300 + "1;"
    col = 4 + MAX_NESTING - 1
    assert syntax_error(text) == (
        f"t.tl:1:{col}: error: nesting too deep (more than {MAX_NESTING} levels)\n"
        f"{text}\n{' ' * (col - 1)}^"
    )


def test_deeply_nested_blocks_are_an_error() -> None:
    text = "if (1) {\n" * 400 + "}\n" * 400
    with pytest.raises(SourceError, match="nesting too deep"):
        parse(text)


def test_moderate_nesting_is_fine() -> None:
    assert shape(expr_of("(" * 200 + "1" + ")" * 200)) == "1"
    assert isinstance(parse("if (1) {\n" * 40 + "}\n" * 40).items[0], ast.If)


def depth(expr: ast.Expr) -> int:
    if isinstance(expr, ast.Binary):
        return 1 + max(depth(expr.left), depth(expr.right))
    if isinstance(expr, ast.Unary):
        return 1 + depth(expr.operand)
    return 1


def value_of(expr: ast.Expr, env: dict[str, int]) -> int:
    """Python's big integers evaluating `+ - *` trees (no wrap-around needed here)."""
    if isinstance(expr, ast.IntLit):
        return expr.value
    if isinstance(expr, ast.Name):
        return env[expr.name]
    assert isinstance(expr, ast.Binary)
    left, right = value_of(expr.left, env), value_of(expr.right, env)
    return {"+": left + right, "-": left - right, "*": left * right}[expr.op]


def operands(expr: ast.Expr) -> list[str]:
    if isinstance(expr, ast.Binary):
        return operands(expr.left) + operands(expr.right)
    assert isinstance(expr, ast.Name)
    return [expr.name]


@pytest.mark.parametrize("terms", [2, CHAIN_RUN, CHAIN_RUN + 1, 1000, 5000])
def test_long_flat_sums_are_regrouped_with_the_same_value_and_order(terms: int) -> None:
    import random

    rng = random.Random(terms)
    names = [f"v{k}" for k in range(terms)]
    signed = [(rng.choice("+-"), n) for n in names[1:]]
    expr = expr_of(names[0] + "".join(f" {s} {n}" for s, n in signed))
    env = {n: rng.randint(-1000, 1000) for n in names}
    expected = env[names[0]] + sum(env[n] if s == "+" else -env[n] for s, n in signed)
    assert value_of(expr, env) == expected
    assert operands(expr) == names  # evaluated left to right, as written
    assert depth(expr) <= CHAIN_RUN + terms.bit_length()


def test_short_chains_keep_their_left_to_right_shape() -> None:
    assert shape(expr_of("a - b + c - d")) == "(((a - b) + c) - d)"
    chain = expr_of(" * ".join(["x"] * (CHAIN_RUN + 1)))
    assert isinstance(chain, ast.Binary) and chain.op == "*"
    assert depth(chain.left) == CHAIN_RUN // 2  # halves of left-to-right runs


@pytest.mark.parametrize("op", ["&&", "||", "&", "|", "^"])
def test_long_chains_of_other_associative_operators_parse(op: str) -> None:
    expr = expr_of(f" {op} ".join(["x"] * 5000))
    assert depth(expr) <= CHAIN_RUN + 13
    assert operands(expr) == ["x"] * 5000


def test_long_chains_of_non_associative_operators_are_nesting() -> None:
    with pytest.raises(SourceError, match="nesting too deep"):
        parse("x = " + " / ".join(["1"] * 500) + ";")


# --- robustness --------------------------------------------------------------------------

VALID_PROGRAMS = [case.source for case in CASES if case.source]
ALPHABET = st.sampled_from(list("(){}[];,=+-*/%<>!&|^~\"'\\ \n\tax019_") + [
    "var ", "func ", "if ", "else ", "while ", "for ", "return ", "print", "read()", "/*",
    "*/", "//", "0x", "input ", "output ", "const ",
])


def _parses_or_source_error(text: str) -> None:
    try:
        program = parse(text)
    except SourceError as err:
        assert err.pos.line >= 1 and err.pos.col >= 1
        err.render()
        return
    assert isinstance(program, ast.Program)


@settings(max_examples=70, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(max_size=80))
def test_random_text_gives_only_source_errors(text: str) -> None:
    _parses_or_source_error(text)


@settings(max_examples=70, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(ALPHABET, max_size=40).map("".join))
def test_random_token_soup_gives_only_source_errors(text: str) -> None:
    _parses_or_source_error(text)


@settings(max_examples=70, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.sampled_from(VALID_PROGRAMS),
    st.lists(st.tuples(st.integers(0, 10_000), st.integers(0, 3), st.text(max_size=3)),
             min_size=1, max_size=4),
)
def test_mutated_programs_give_only_source_errors(
    source: str, edits: list[tuple[int, int, str]]
) -> None:
    text = source
    for where, cut, insert in edits:
        at = where % (len(text) + 1)
        text = text[:at] + insert + text[at + cut:]
    _parses_or_source_error(text)
