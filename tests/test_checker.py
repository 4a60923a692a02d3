"""The `.tl` checker: name resolution (what the lowering relies on) and every check, each
with its exact `file:line:col: error: message` text and caret line."""

from __future__ import annotations

from typing import get_args

import pytest
from tl_cases import CASES, INT_MAX, INT_MIN

from mlpc.compiler import tl_ast as ast
from mlpc.compiler.checker import (
    _CHECK_EXPR,
    _CHECK_STATEMENT,
    _FOLD,
    MAX_ARRAY_SIZE,
    MAX_ERRORS,
    ArraySymbol,
    CheckedProgram,
    CheckErrors,
    ConstSymbol,
    FunctionSymbol,
    VarSymbol,
    check_program,
)
from mlpc.compiler.parser import parse_program
from mlpc.errors import SourceError, SourcePos


def check(text: str, word_bits: int = 32) -> CheckedProgram:
    return check_program(parse_program(text, "t.tl"), word_bits)


def check_error(text: str, word_bits: int = 32) -> str:
    with pytest.raises(SourceError) as info:
        check(text, word_bits)
    return info.value.render()


# --- resolution --------------------------------------------------------------------------


def test_inputs_outputs_globals_in_declaration_order() -> None:
    checked = check("input b, a;\noutput z;\nvar g = 1;\noutput y;\ninput c;\n")
    assert checked.input_names == ("b", "a", "c")
    assert checked.output_names == ("z", "y")
    assert [(s.name, s.kind) for s in checked.globals] == [
        ("b", "input"), ("a", "input"), ("z", "output"), ("g", "global"), ("y", "output"),
        ("c", "input"),
    ]
    assert all(s.function is None and s.is_global for s in checked.globals)
    assert len({s.uid for s in checked.globals}) == 5 + 1


def test_arrays_are_zero_padded_and_constants_folded() -> None:
    checked = check(
        "const N = 2 + 3;\nconst BIG = 0x7FFFFFFF + 1;\nconst NEG = -N * 4 / 3;\n"
        "var a[N] = {N, -1, 'A'};\nvar b[N * 2];\n"
    )
    assert [(c.name, c.value) for c in checked.constants] == [
        ("N", 5), ("BIG", INT_MIN), ("NEG", -6),
    ]
    (a, b) = checked.arrays
    assert (a.name, a.size, a.initial) == ("a", 5, (5, -1, 65, 0, 0))
    assert (b.name, b.size, b.initial) == ("b", 10, (0,) * 10)


def test_local_parameter_two_dimensional_and_string_arrays() -> None:
    checked = check(
        'var s[] = "ab\\0";\nvar g[2][3] = {1, 2, 3, 4};\nvar n[] = {7, 8};\n'
        "func f(a[], m[][3], k) { var b[2] = {2 + 3};     var t[2][2]; return a[k]; }\n"
        "{ var q[3]; q[0] = f(s, g, 1); }\n"
    )
    s, g, n = checked.arrays
    assert (s.size, s.initial, s.kind, s.columns) == (3, (97, 98, 0), "global", 0)
    assert (g.size, g.initial, g.columns, g.length) == (6, (1, 2, 3, 4, 0, 0), 3, 2)
    assert (n.size, n.initial) == (2, (7, 8))
    (f,) = checked.functions
    a, m, k = f.params
    assert isinstance(a, ArraySymbol) and (a.kind, a.columns, a.function) == ("param", 0, "f")
    assert isinstance(m, ArraySymbol) and (m.kind, m.columns, m.shape()) == ("param", 3,
                                                                             "m[][3]")
    assert isinstance(k, VarSymbol) and f.arity == 3
    b, t = f.arrays
    assert (b.kind, b.function, b.initial) == ("local", "f", (5, 0))
    assert (t.size, t.columns) == (4, 2)
    (q,) = checked.main_arrays
    assert (q.kind, q.function, q.size) == ("local", None, 3)
    assert checked.symbols[SourcePos(5, 22)] is s  # the arguments name the arrays
    assert checked.symbols[SourcePos(5, 25)] is g


def test_every_use_maps_to_its_declaration() -> None:
    text = (
        "var x = 1;\n"  # line 1: global x
        "{ var x = 2; x = x + 1; }\n"  # line 2: a top-level local shadows it
        "x = 3;\n"  # line 3: the global again
        "func f(x) { { var x = x; return x; } }\n"  # line 4: param, then a local
    )
    checked = check(text)
    at = checked.symbols
    global_x = at[SourcePos(1, 5)]
    local_x = at[SourcePos(2, 7)]
    param_x = at[SourcePos(4, 8)]
    inner_x = at[SourcePos(4, 19)]
    assert isinstance(global_x, VarSymbol) and global_x.kind == "global"
    assert isinstance(local_x, VarSymbol) and (local_x.kind, local_x.function) == ("local", None)
    assert isinstance(param_x, VarSymbol) and (param_x.kind, param_x.function) == ("param", "f")
    assert isinstance(inner_x, VarSymbol) and (inner_x.kind, inner_x.function) == ("local", "f")
    assert len({global_x.uid, local_x.uid, param_x.uid, inner_x.uid}) == 4
    assert at[SourcePos(2, 14)] is local_x and at[SourcePos(2, 18)] is local_x
    assert at[SourcePos(3, 1)] is global_x
    assert at[SourcePos(4, 23)] is param_x  # the initialiser reads the outer x
    assert at[SourcePos(4, 33)] is inner_x
    assert checked.main_locals == (local_x,)


def test_function_symbols_params_locals_and_calls() -> None:
    checked = check(
        "output r;\n"
        "r = g(1) + f(2, 3);\n"  # calls before the definitions
        "func f(a, b) { var t = a; for (var i = 0; i < b; i += 1) { var u; t += i; } "
        "return t; }\n"
        "func g(n) { return f(n, n); }\n"
    )
    f, g = checked.functions
    assert isinstance(f, FunctionSymbol) and isinstance(g, FunctionSymbol)
    assert (f.name, f.arity, [p.name for p in f.params]) == ("f", 2, ["a", "b"])
    assert [v.name for v in f.locals] == ["t", "i", "u"]
    assert all(v.kind == "local" and v.function == "f" for v in f.locals)
    assert (g.name, g.arity, g.locals) == ("g", 1, ())
    assert checked.symbols[SourcePos(2, 5)] is g
    assert checked.symbols[SourcePos(2, 12)] is f
    assert checked.symbols[SourcePos(4, 20)] is f
    assert checked.function("g") is g
    assert f.definition.name == "f" and f.pos == SourcePos(3, 6)


def test_symbol_lookup_by_node() -> None:
    checked = check("const K = 3;\nvar a[K];\noutput o;\no = a[K];\n")
    (stmt,) = [s for s in checked.program.items if isinstance(s, ast.Assign)]
    assert isinstance(stmt.target, ast.Name) and isinstance(stmt.value, ast.Index)
    assert checked.symbol(stmt.target) is checked.outputs[0]
    assert isinstance(checked.symbol(stmt.value), ArraySymbol)
    assert isinstance(checked.symbol(stmt.value.index), ConstSymbol)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "text",
    [
        "func f(a) { { var a; } }",  # an inner block may shadow a parameter
        "for (var i = 0; i < 2; i += 1) { var i = 5; }",  # the body is a scope of its own
        "var x; func f() { var x; return x; }",  # a local may shadow a global
        "func f() { return 0; } func g() { var f = 1; return f() + f; }",  # calls find functions
        "{ var t; } { var t; }",  # sibling blocks
        "var x = -2147483648;",
        "var x = -(2147483648);",
        "var x = 0xFFFFFFFF + 0x80000000;",
        "func f() { while (1) { if (1) { break; } else { continue; } } }",
        "func f() { return; }",
    ],
)
def test_valid_programs(text: str) -> None:
    check(text)


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_every_shared_case_checks(case) -> None:
    checked = check_program(parse_program(case.source, "c.tl"), case.word_bits)
    assert checked.input_names == tuple(name for name, _ in case.inputs)
    assert checked.output_names == tuple(name for name, _ in case.outputs)


# --- errors ------------------------------------------------------------------------------

CHECK_ERRORS = [
    # undeclared names and scoping
    ("x = 1;", "t.tl:1:1: error: undeclared name 'x'\nx = 1;\n^"),
    ("output y;\ny = x + 1;", "t.tl:2:5: error: undeclared name 'x'\ny = x + 1;\n    ^"),
    ("write(a[0]);", "t.tl:1:7: error: undeclared name 'a'\nwrite(a[0]);\n      ^"),
    ("{ var t = 1; }\nwrite(t);", "t.tl:2:7: error: undeclared name 't'\nwrite(t);\n      ^"),
    ("for (var i = 0; i < 3; i += 1) { }\nwrite(i);",
     "t.tl:2:7: error: undeclared name 'i'\nwrite(i);\n      ^"),
    ("func f() { return g; }\nvar g;",
     "t.tl:1:19: error: undeclared name 'g'\nfunc f() { return g; }\n                  ^"),
    ("func f() { return y; }\nfunc g() { var y; return f(); }",
     "t.tl:1:19: error: undeclared name 'y'\nfunc f() { return y; }\n                  ^"),
    ("var y;\x0cy = x;", "t.tl:1:12: error: undeclared name 'x'\nvar y; y = x;\n"
                        "           ^"),
    ("var x = x;", "t.tl:1:9: error: undeclared name 'x'\nvar x = x;\n        ^"),
    # redeclarations
    ("var x;\nvar x;", "t.tl:2:5: error: redeclaration of 'x' (first declared at line 1)\n"
                       "var x;\n    ^"),
    ("input a, b;\ninput a;", "t.tl:2:7: error: redeclaration of 'a' (first declared at "
                              "line 1)\ninput a;\n      ^"),
    ("input a;\noutput a;", "t.tl:2:8: error: redeclaration of 'a' (first declared at "
                            "line 1)\noutput a;\n       ^"),
    ("const N = 1;\nvar N;", "t.tl:2:5: error: redeclaration of 'N' (first declared at "
                             "line 1)\nvar N;\n    ^"),
    ("func f(a, a) { }", "t.tl:1:11: error: redeclaration of 'a' (first declared at line 1)"
                         "\nfunc f(a, a) { }\n          ^"),
    ("func f(a) {\n  var a;\n}", "t.tl:2:7: error: redeclaration of 'a' (first declared at "
                                 "line 1)\n  var a;\n      ^"),
    ("{ var t; var t; }", "t.tl:1:14: error: redeclaration of 't' (first declared at line 1)"
                          "\n{ var t; var t; }\n             ^"),
    ("func f() { }\nfunc f() { }", "t.tl:2:6: error: redefinition of function 'f' (first "
                                   "defined at line 1)\nfunc f() { }\n     ^"),
    ("func f() { }\nvar f;", "t.tl:2:5: error: 'f' is already the name of a function "
                             "(line 1)\nvar f;\n    ^"),
    ("input f;\nfunc f() { }", "t.tl:1:7: error: 'f' is already the name of a function "
                               "(line 2)\ninput f;\n      ^"),
    # assignments
    ("const N = 1;\nN = 2;", "t.tl:2:1: error: cannot assign to constant 'N'\nN = 2;\n^"),
    ("const N = 1;\nN += 2;", "t.tl:2:1: error: cannot assign to constant 'N'\nN += 2;\n^"),
    ("var a[3];\na = 1;", "t.tl:2:1: error: cannot assign to array 'a' (assign to its "
                          "elements)\na = 1;\n^"),
    ("func f() { }\nf = 1;", "t.tl:2:1: error: cannot assign to function 'f'\nf = 1;\n^"),
    ("func f() { }\nf[0] = 1;", "t.tl:2:1: error: cannot assign to function 'f'\nf[0] = 1;\n"
                                "^"),
    ("var x;\nx[0] = 1;", "t.tl:2:1: error: 'x' is not an array\nx[0] = 1;\n^"),
    ("const N = 3;\nwrite(N[0]);", "t.tl:2:7: error: 'N' is not an array\nwrite(N[0]);\n"
                                   "      ^"),
    ("var a[2];\nvar x = a;", "t.tl:2:9: error: array 'a' used as a value (index it: a[i])\n"
                              "var x = a;\n        ^"),
    ("var a[2];\nfunc f(p) { }\nf(a);", "t.tl:3:3: error: argument 1 of 'f' is the array 'a', "
                                        "but parameter 'p' is not an array (declare it "
                                        "'p[]')\nf(a);\n  ^"),
    # calls
    ("g();", "t.tl:1:1: error: call to undeclared function 'g'\ng();\n^"),
    ("var x;\nx();", "t.tl:2:1: error: 'x' is not a function\nx();\n^"),
    ("func f(a) { }\nf(1, 2);", "t.tl:2:1: error: function 'f' takes 1 argument, but 2 were "
                                "given\nf(1, 2);\n^"),
    ("func f(a, b) { }\nf(1);", "t.tl:2:1: error: function 'f' takes 2 arguments, but 1 was "
                                "given\nf(1);\n^"),
    ("func f() { }\nwrite(f(0));", "t.tl:2:7: error: function 'f' takes 0 arguments, but 1 "
                                   "was given\nwrite(f(0));\n      ^"),
    ("func f() { }\nvar x = f;", "t.tl:2:9: error: function 'f' used as a value (call it: "
                                 "f(...))\nvar x = f;\n        ^"),
    # built-in functions
    ("var x = ult(1);", "t.tl:1:9: error: built-in function 'ult' takes 2 arguments, but 1 "
                        "was given\nvar x = ult(1);\n        ^"),
    ("putc(1, 2);", "t.tl:1:1: error: built-in function 'putc' takes 1 argument, but 2 were "
                    "given\nputc(1, 2);\n^"),
    ("var x = 1 + putc(65);", "t.tl:1:13: error: 'putc' has no value (call it as a statement:"
                              " putc(x);)\nvar x = 1 + putc(65);\n            ^"),
    ("func udiv(a, b) { return a; }", "t.tl:1:6: error: 'udiv' is a built-in name\n"
                                      "func udiv(a, b) { return a; }\n     ^"),
    ("var x = eof(1);", "t.tl:1:9: error: built-in function 'eof' takes 0 arguments, but 1 "
                        "was given\nvar x = eof(1);\n        ^"),
    ("while (eof(0, 1)) { }", "t.tl:1:8: error: built-in function 'eof' takes 0 arguments, "
                              "but 2 were given\nwhile (eof(0, 1)) { }\n       ^"),
    ("func eof() { return 1; }", "t.tl:1:6: error: 'eof' is a built-in name"
                                 "\nfunc eof() { return 1; }\n     ^"),
    ("const E = eof();", "t.tl:1:11: error: value of constant 'E' must be a constant "
                         "expression ('eof()' reads the input tape)\nconst E = eof();\n"
                         "          ^"),
    ("var a[eof() + 1];", "t.tl:1:7: error: array size must be a constant expression "
                          "('eof()' reads the input tape)\nvar a[eof() + 1];\n      ^"),
    ("var x = eof;", "t.tl:1:9: error: undeclared name 'eof'\nvar x = eof;\n        ^"),
    ("const C = umod(5, 0);", "t.tl:1:11: error: division by zero in a constant expression\n"
                              "const C = umod(5, 0);\n          ^"),
    ("var x;\nvar a[x ? 1 : 2];", "t.tl:2:7: error: array size must be a constant expression "
                                 "('x' is a variable)\nvar a[x ? 1 : 2];\n      ^"),
    ("var x = y ? 1 : 2;", "t.tl:1:9: error: undeclared name 'y'\nvar x = y ? 1 : 2;\n"
                           "        ^"),
    # array sizes and initialisers
    ("var n = 3;\nvar a[n];", "t.tl:2:7: error: array size must be a constant expression "
                              "('n' is a variable)\nvar a[n];\n      ^"),
    ("var a[read()];", "t.tl:1:7: error: array size must be a constant expression ('read()' "
                       "reads the input tape)\nvar a[read()];\n      ^"),
    ("func f() { return 1; }\nvar a[2 + f()];",
     "t.tl:2:11: error: array size must be a constant expression ('f(...)' is a function "
     "call)\nvar a[2 + f()];\n          ^"),
    ("var a[1];\nvar b[a[0]];", "t.tl:2:7: error: array size must be a constant expression "
                                "('a[...]' is an array element)\nvar b[a[0]];\n      ^"),
    ("var a[0];", "t.tl:1:7: error: array size must be positive, not 0\nvar a[0];\n      ^"),
    ("const N = 2;\nvar a[N - 5];", "t.tl:2:7: error: array size must be positive, not -3\n"
                                    "var a[N - 5];\n      ^"),
    ("var a[2000000];", f"t.tl:1:7: error: array size 2000000 is too large (at most "
                        f"{MAX_ARRAY_SIZE})\nvar a[2000000];\n      ^"),
    ("var a[8 / (2 - 2)];", "t.tl:1:9: error: division by zero in a constant expression\n"
                            "var a[8 / (2 - 2)];\n        ^"),
    ("var a[2] = {1, 2, 3};", "t.tl:1:19: error: too many initialisers for 'a' (2 elements, "
                              "3 given)\nvar a[2] = {1, 2, 3};\n                  ^"),
    ("var x = 1;\nvar a[2] = {x};", "t.tl:2:13: error: array initialiser must be a constant "
                                    "expression ('x' is a variable)\nvar a[2] = {x};\n"
                                    "            ^"),
    ("var x;\nconst C = x + 1;", "t.tl:2:11: error: value of constant 'C' must be a constant "
                                 "expression ('x' is a variable)\nconst C = x + 1;\n"
                                 "          ^"),
    ("const C = 1 % 0;", "t.tl:1:13: error: division by zero in a constant expression\n"
                         "const C = 1 % 0;\n            ^"),
    # loops and functions
    ("break;", "t.tl:1:1: error: 'break' outside a loop\nbreak;\n^"),
    ("while (1) { }\ncontinue;", "t.tl:2:1: error: 'continue' outside a loop\ncontinue;\n^"),
    ("while (1) {\n  func f() { break; }\n}",
     "t.tl:2:3: error: function 'f' must be defined at the top level\n  func f() { break; }\n"
     "  ^\nt.tl:2:14: error: 'break' outside a loop\n  func f() { break; }\n"
     "             ^"),
    ("func f() {\n  break;\n}\nwhile (1) { f(); }",
     "t.tl:2:3: error: 'break' outside a loop\n  break;\n  ^"),
    ("return 1;", "t.tl:1:1: error: 'return' outside a function (use 'halt;' to stop)\n"
                  "return 1;\n^"),
    ("if (1) { return; }", "t.tl:1:10: error: 'return' outside a function (use 'halt;' to "
                           "stop)\nif (1) { return; }\n         ^"),
    # where declarations may appear
    ("{ input x; }", "t.tl:1:3: error: 'input' declarations must be at the top level\n"
                     "{ input x; }\n  ^"),
    ("func f() { output y; }", "t.tl:1:12: error: 'output' declarations must be at the top "
                               "level\nfunc f() { output y; }\n           ^"),
    # arrays: local, by reference, two-dimensional, from strings
    ("func f() { var a[2] = {y, 1}; }",
     "t.tl:1:24: error: undeclared name 'y'\nfunc f() { var a[2] = {y, 1}; }\n"
     "                       ^"),
    ("func f() { var a[2] = {1, 2, f()}; }",
     "t.tl:1:30: error: too many initialisers for 'a' (2 elements, 3 given)\n"
     "func f() { var a[2] = {1, 2, f()}; }\n                             ^"),
    ('func f(a[], n) { return a[0]; }\nf(3, 1);',
     "t.tl:2:3: error: argument 1 of 'f' must be an array (parameter 'a[]' is passed by r"
     'eference)\nf(3, 1);\n  ^'),
    ('func f(a[], n) { return a[0]; }\nvar x;\nf(x, 1);',
     "t.tl:3:3: error: argument 1 of 'f' must be an array (parameter 'a[]' is passed by r"
     'eference)\nf(x, 1);\n  ^'),
    ('func f(a[], n) { return a[0]; }\nvar b[2];\nf(b[0], 1);',
     "t.tl:3:3: error: argument 1 of 'f' must be an array (parameter 'a[]' is passed by r"
     'eference)\nf(b[0], 1);\n  ^'),
    ('func f(a[], n) { return a[0]; }\nf(q, 1);',
     "t.tl:2:3: error: undeclared name 'q'\nf(q, 1);\n  ^"),
    ('func f(a[]) { return a; }',
     "t.tl:1:22: error: array 'a' used as a value (index it: a[i])\nfunc f(a[]) { return "
     'a; }\n                     ^'),
    ('func f(a[]) { a = 1; }',
     "t.tl:1:15: error: cannot assign to array 'a' (assign to its elements)\nfunc f(a[]) "
     '{ a = 1; }\n              ^'),
    ('func f(g[][3]) { return g[0][0]; }\nvar b[3];\nf(b);',
     "t.tl:3:3: error: argument 1 of 'f': 'b' is a one-dimensional array, but parameter '"
     "g' takes a two-dimensional one\nf(b);\n  ^"),
    ('func f(a[]) { return a[0]; }\nvar g[2][3];\nf(g);',
     "t.tl:3:3: error: argument 1 of 'f': 'g' is a two-dimensional array, but parameter '"
     "a' takes a one-dimensional one\nf(g);\n  ^"),
    ('func f(g[][3]) { return g[0][0]; }\nvar m[3][2];\nf(m);',
     "t.tl:3:3: error: argument 1 of 'f': 'm' has 2 columns, but parameter 'g[][3]' has 3"
     '\nf(m);\n  ^'),
    ('var n = 2;\nfunc f(g[][n]) { }',
     "t.tl:2:12: error: array column count must be a constant expression ('n' is a variab"
     'le)\nfunc f(g[][n]) { }\n           ^'),
    ('func f(g[][0]) { }',
     't.tl:1:12: error: array column count must be positive, not 0\nfunc f(g[][0]) { }\n '
     '          ^'),
    ('var g[2][3];\nwrite(g[1]);',
     "t.tl:2:7: error: 'g' is a two-dimensional array (index it: g[i][j])\nwrite(g[1]);\n"
     '      ^'),
    ('var a[3];\nwrite(a[1][2]);',
     "t.tl:2:7: error: 'a' is a one-dimensional array (index it: a[i])\nwrite(a[1][2]);\n"
     '      ^'),
    ('var g[2][0];',
     't.tl:1:10: error: array column count must be positive, not 0\nvar g[2][0];\n       '
     '  ^'),
    ('var s[];',
     "t.tl:1:5: error: array 's' needs a size or an initialiser\nvar s[];\n    ^"),
    ('var s[] = {};',
     "t.tl:1:5: error: array 's' has no elements\nvar s[] = {};\n    ^"),
    ('var s[2] = "abc";',
     "t.tl:1:12: error: too many initialisers for 's' (2 elements, 3 given)\nvar s[2] = "
     '"abc";\n           ^'),
    ('func f() { var s[] = "ok"; var t[1] = "no"; }',
     "t.tl:1:39: error: too many initialisers for 't' (1 element, 2 given)\nfunc f() { va"
     'r s[] = "ok"; var t[1] = "no"; }\n                                      ^'),
    ('var g[2][2] = {1, 2, 3, 4, 5};',
     "t.tl:1:28: error: too many initialisers for 'g' (4 elements, 5 given)\nvar g[2][2] "
     '= {1, 2, 3, 4, 5};\n                           ^'),
    ('var s[] = "x";\nvar x = s;',
     "t.tl:2:9: error: array 's' used as a value (index it: s[i])\nvar x = s;\n        ^"),

    # literal ranges
    ("var x = 2147483648;", "t.tl:1:9: error: integer literal 2147483648 is out of range for "
                            "32-bit words\nvar x = 2147483648;\n        ^"),
    ("var x = -2147483649;", "t.tl:1:10: error: integer literal 2147483649 is out of range "
                             "for 32-bit words\nvar x = -2147483649;\n         ^"),
    ("var x = 1 - 2147483648;", "t.tl:1:13: error: integer literal 2147483648 is out of range "
                                "for 32-bit words\nvar x = 1 - 2147483648;\n            ^"),
    ("var x = 0x100000000;", "t.tl:1:9: error: integer literal 0x100000000 is out of range "
                             "for 32-bit words\nvar x = 0x100000000;\n        ^"),
    ("const N = 99999999999;", "t.tl:1:11: error: integer literal 99999999999 is out of range "
                               "for 32-bit words\nconst N = 99999999999;\n          ^"),
]


@pytest.mark.parametrize(("text", "rendered"), CHECK_ERRORS, ids=[t for t, _ in CHECK_ERRORS])
def test_check_error_messages(text: str, rendered: str) -> None:
    assert check_error(text) == rendered


# Every position that declares a name, with `@` for the name.
DECLARING_POSITIONS = {
    "var": "var x, @ = 1;",
    "array": "var @[3];",
    "two-dimensional array": "var @[2][2];",
    "string array": 'var @[] = "ab";',
    "local var": "func f() { var @; }",
    "for var": "for (var @ = 0; 0; ) { }",
    "input": "input a, @;",
    "output": "output @;",
    "const": "const @ = 1;",
    "func": "func @(p) { }",
    "parameter": "func f(p, @) { }",
    "array parameter": "func f(@[]) { }",
    "two-dimensional parameter": "func f(@[][2]) { }",
}


@pytest.mark.parametrize("name", sorted(ast.BUILTIN_NAMES))
@pytest.mark.parametrize("where", DECLARING_POSITIONS)
def test_a_built_in_name_is_refused_wherever_a_name_is_declared(where: str, name: str) -> None:
    """`var putc`, `output eof` were once accepted and `var read` a syntax error: every
    built-in name, keyword or not, gets the same message at the declared name."""
    template = DECLARING_POSITIONS[where]
    text, col = template.replace("@", name), template.index("@") + 1
    assert check_error(text) == (f"t.tl:1:{col}: error: '{name}' is a built-in name\n{text}\n"
                                 f"{' ' * (col - 1)}^")


def test_a_refused_built_in_name_is_reported_once() -> None:
    """The refused declaration still declares the name: its uses are not errors too."""
    text = "var udiv = 7;\nvar q = udiv(udiv, 2);\noutput eof;\neof = eof + 1;"
    assert check_error(text) == (
        "t.tl:1:5: error: 'udiv' is a built-in name\nvar udiv = 7;\n    ^\n"
        "t.tl:3:8: error: 'eof' is a built-in name\noutput eof;\n       ^")


W16_ERRORS = [
    ("var x = 32768;", "t.tl:1:9: error: integer literal 32768 is out of range for 16-bit "
                       "words\nvar x = 32768;\n        ^"),
    ("var x = 0x10000;", "t.tl:1:9: error: integer literal 0x10000 is out of range for 16-bit "
                         "words\nvar x = 0x10000;\n        ^"),
    ("var x = '\U0001F600';", "t.tl:1:9: error: integer literal '\U0001F600' is out of range "
                              "for 16-bit words\nvar x = '\U0001F600';\n        ^"),
    ('print("ok\U0001F600");', "t.tl:1:10: error: character U+1F600 does not fit in a 16-bit "
                               "word\nprint(\"ok\U0001F600\");\n         ^"),
]


@pytest.mark.parametrize(("text", "rendered"), W16_ERRORS, ids=[t for t, _ in W16_ERRORS])
def test_16_bit_range_errors(text: str, rendered: str) -> None:
    assert check_error(text, word_bits=16) == rendered


def test_16_bit_extremes_are_accepted() -> None:
    checked = check("const A = -32768;\nconst B = 0xFFFF;\nconst C = 32767;\n", word_bits=16)
    assert [c.value for c in checked.constants] == [-32768, -1, 32767]


MANY_ERRORS = """\
input a;
var x = y + 1;
x = x + z;
const C = a;
var buf[C];
buf[0] = C;
if (q) { x = 1 / w; }
func f(p, p) { break; }
f(1, 2, 3);
func f() { }
"""


def test_every_error_is_reported_once_in_source_order() -> None:
    with pytest.raises(CheckErrors) as info:
        check(MANY_ERRORS)
    assert info.value.render() == "\n".join([
        "t.tl:2:9: error: undeclared name 'y'", "var x = y + 1;", "        ^",
        "t.tl:3:9: error: undeclared name 'z'", "x = x + z;", "        ^",
        "t.tl:4:11: error: value of constant 'C' must be a constant expression ('a' is a "
        "variable)", "const C = a;", "          ^",
        "t.tl:7:5: error: undeclared name 'q'", "if (q) { x = 1 / w; }", "    ^",
        "t.tl:7:18: error: undeclared name 'w'", "if (q) { x = 1 / w; }", "                 ^",
        "t.tl:8:11: error: redeclaration of 'p' (first declared at line 8)",
        "func f(p, p) { break; }", "          ^",
        "t.tl:8:16: error: 'break' outside a loop", "func f(p, p) { break; }",
        "               ^",
        "t.tl:9:1: error: function 'f' takes 2 arguments, but 3 were given", "f(1, 2, 3);",
        "^",
        "t.tl:10:6: error: redefinition of function 'f' (first defined at line 8)",
        "func f() { }", "     ^",
    ])
    assert (info.value.pos, info.value.message) == (SourcePos(2, 9), "undeclared name 'y'")


def lines_of(errors: list[tuple[int, int, str]], text: str) -> str:
    """The rendering of `(line, col, message)` errors in `text`."""
    lines = text.splitlines()
    return "\n".join(f"t.tl:{line}:{col}: error: {message}\n{lines[line - 1]}\n"
                     f"{' ' * (col - 1)}^" for line, col, message in errors)


@pytest.mark.parametrize(("text", "names"), [
    ("var q;\nq = 1 + b + c;", [(2, 9, "b"), (2, 13, "c")]),
    ("var q = b * (c - d);", [(1, 9, "b"), (1, 14, "c"), (1, 18, "d")]),
    ("var q = b ? c : d;", [(1, 9, "b"), (1, 13, "c"), (1, 17, "d")]),
    ("var q = a[i] + m[j][k];", [(1, 9, "a"), (1, 11, "i"), (1, 16, "m"), (1, 18, "j"),
                                 (1, 21, "k")]),
    ("var a[2];\nvar q = a[i + j];", [(2, 11, "i"), (2, 15, "j")]),
    ('print(b, " and ", c);', [(1, 7, "b"), (1, 19, "c")]),
    ("write(udiv(b, c));", [(1, 12, "b"), (1, 15, "c")]),
    ("func f(x, y) { return x; }\nvar q = f(b, c);", [(2, 11, "b"), (2, 14, "c")]),
    ("func f(a[], n) { return n; }\nvar q = f(b, c);", [(2, 11, "b"), (2, 14, "c")]),
    ("const C = b + c;", [(1, 11, "b"), (1, 15, "c")]),
    ("var q = b + b;", [(1, 9, "b"), (1, 13, "b")]),
])
def test_every_undeclared_name_of_a_statement_is_reported(text: str,
                                                          names: list[tuple[int, int, str]]
                                                          ) -> None:
    """Once each, in source order, and nothing else (no `must be a constant expression`)."""
    expected = [(line, col, f"undeclared name '{name}'") for line, col, name in names]
    assert check_error(text) == lines_of(expected, text)


def test_a_wrong_call_reports_its_arguments_too() -> None:
    text = "var xs[2];\nvar q = g(b, xs);\nfunc f(x) { return x; }\nq = f(c, d);"
    assert check_error(text) == lines_of([
        (2, 9, "call to undeclared function 'g'"), (2, 11, "undeclared name 'b'"),
        (4, 5, "function 'f' takes 1 argument, but 2 were given"),
        (4, 7, "undeclared name 'c'"), (4, 10, "undeclared name 'd'"),
    ], text)


def test_errors_stop_at_the_limit() -> None:
    text = "".join(f"x{k} = 1;\n" for k in range(MAX_ERRORS + 5))
    with pytest.raises(CheckErrors) as info:
        check(text)
    lines = info.value.render().splitlines()
    assert len(info.value.errors) == MAX_ERRORS
    assert lines[0] == "t.tl:1:1: error: undeclared name 'x0'"
    assert lines[-4] == f"t.tl:{MAX_ERRORS}:1: error: undeclared name 'x{MAX_ERRORS - 1}'"
    assert lines[-1] == f"t.tl: error: too many errors (the first {MAX_ERRORS} are shown)"


def test_errors_of_one_statement_stop_at_the_limit() -> None:
    text = "var q = " + " + ".join(f"x{k}" for k in range(MAX_ERRORS + 5)) + ";"
    with pytest.raises(CheckErrors) as info:
        check(text)
    assert [err.message for err in info.value.errors] == [
        f"undeclared name 'x{k}'" for k in range(MAX_ERRORS)]
    assert info.value.truncated


def test_constants_fold_new_operators_and_builtins() -> None:
    checked = check(
        "const A = -8 >>> 1;\nconst B = udiv(-1, 10) + umod(-1, 10);\n"
        "const C = ult(1, -1) ? 7 : 1 / 0 + 9;\nconst D = 1 ? 5 : 1 / 0;\n"
        "const E = ule(3, 3) << 4;\n"
    )
    assert [(c.name, c.value) for c in checked.constants] == [
        ("A", 2147483644), ("B", 429496734), ("C", 7), ("D", 5), ("E", 16),
    ]


def test_constant_folding_short_circuits() -> None:
    checked = check("var x;\nconst A = 0 && 1 / 0;\nconst B = 2 || x;\nconst C = 1 && 7;\n")
    assert [c.value for c in checked.constants] == [0, 1, 1]
    assert check_error("var x;\nconst D = 1 && x;\n") == (
        "t.tl:2:16: error: value of constant 'D' must be a constant expression ('x' is a "
        "variable)\nconst D = 1 && x;\n               ^"
    )


def test_32_bit_extremes_fold() -> None:
    checked = check("const A = -2147483648;\nconst B = 0x80000000;\nconst C = 2147483647;\n")
    assert [c.value for c in checked.constants] == [INT_MIN, INT_MIN, INT_MAX]


def test_dispatch_tables_cover_every_node_type() -> None:
    # a node type added to tl_ast without its check fails here, not on the first program
    # that uses it
    assert set(_CHECK_STATEMENT) == set(get_args(ast.Stmt))
    assert set(_CHECK_EXPR) == set(_FOLD) == set(get_args(ast.Expr))
