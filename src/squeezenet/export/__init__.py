"""Deployment: ONNX (fp32 and int8), a dependency-free C99 source file, and the network plan both share.

Importing this package imports nothing heavy: `graph` is torch-free so the NumPy runtime can use it.
"""
