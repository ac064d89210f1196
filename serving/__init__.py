"""Inference server: onnxruntime behind the Open Inference Protocol (python -m serving)."""
