"""Generation engine: sampling, scheduling and the LLM front end."""

from .sampler import SampleResult, sample_row
from .sampling_params import SamplingParams

__all__ = ["SampleResult", "SamplingParams", "sample_row"]
