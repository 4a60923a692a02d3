"""The compiler passes: source -> AST -> SUBLEQ image -> network layers -> ONNX."""
