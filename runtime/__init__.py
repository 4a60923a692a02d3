"""Executors: the SUBLEQ machine, the reference interpreter, numpy and onnxruntime engines."""
