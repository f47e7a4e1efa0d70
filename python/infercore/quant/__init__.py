"""Quantization formats: fp8 (E4M3/E5M2) codes, symmetric int8, group-wise int4, ggml/GGUF
blocks, and QuantizedWeight for ops.linear."""

from __future__ import annotations

from .fp8 import fp8_e4m3_from_float, fp8_e4m3_to_float, fp8_e5m2_from_float, fp8_e5m2_to_float
from .gguf import GGML_TYPES, dequantize_gguf
from .int8 import dequantize_int8, quantize_int8
from .weight import KINDS, QuantizedWeight, quantize_weight, to_device

__all__ = [
    "GGML_TYPES",
    "KINDS",
    "QuantizedWeight",
    "dequantize_gguf",
    "dequantize_int8",
    "fp8_e4m3_from_float",
    "fp8_e4m3_to_float",
    "fp8_e5m2_from_float",
    "fp8_e5m2_to_float",
    "quantize_int8",
    "quantize_weight",
    "to_device",
]
