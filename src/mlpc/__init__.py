"""mlpc: compile programs into looped ReLU-MLPs and run them in onnxruntime."""

__version__ = "0.1.0"
