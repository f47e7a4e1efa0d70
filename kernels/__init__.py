"""Triton kernels (installed as infercore.kernels): one file per op, kernel plus launcher.

They take torch tensors: CUDA tensors on a GPU, CPU tensors under TRITON_INTERPRET=1 (tests).
Importing this package imports torch and triton, so the ops layer imports it only on demand.
"""
