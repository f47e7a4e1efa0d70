"""Structured output: JSON-schema and regex constrained decoding.

A schema compiles to a byte grammar (`json_schema`), then to a DFA (`fsm`); at each decoding
step the sampler keeps only the tokens whose bytes keep the DFA alive (`vocab.TokenMasker`), and
EOS only once the output is complete. Used through `SamplingParams(json_schema=...)` and
`SamplingParams(regex=...)` (`regex.py`: the whole output matches the pattern).
"""

from .fsm import DFA, compile_dfa
from .guide import Guide, GuideCache, canonical_schema
from .json_schema import schema_to_grammar
from .regex import regex_to_grammar
from .vocab import TokenMasker, VocabMatrix, token_bytes

__all__ = ["DFA", "Guide", "GuideCache", "TokenMasker", "VocabMatrix", "canonical_schema", "compile_dfa",
           "regex_to_grammar", "schema_to_grammar", "token_bytes"]
