"""Tokenizer built with the `tokenizers` library from GGUF metadata or an HF tokenizer.json.

GGUF stores the vocabulary under llama.cpp's keys; we rebuild the pipeline llama.cpp uses:
- "gpt2": byte-level BPE over `tokenizer.ggml.merges`, split by the regex that `tokenizer.ggml.pre` names;
- "llama": SentencePiece-style BPE whose merges follow the token scores, with byte fallback.
Control tokens (token_type 3) become special added tokens so `<|im_start|>` stays one token.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Sequence
from typing import Any

from .._text import raise_if_not_unicode
from .gguf import GGUFFile

# llama.cpp token types (llama_token_type)
TOKEN_TYPE_NORMAL = 1
TOKEN_TYPE_UNKNOWN = 2
TOKEN_TYPE_CONTROL = 3
TOKEN_TYPE_USER_DEFINED = 4
TOKEN_TYPE_UNUSED = 5
TOKEN_TYPE_BYTE = 6

# The GPT-2 split; llama.cpp's "smollm"/"starcoder"/"refact" first isolate every \p{N} character.
_GPT2_SPLIT = r"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"
_LLAMA3_SPLIT = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}"
    r"| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
)
_QWEN2_SPLIT = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}"
    r"| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
)
# pre name -> (isolate each digit first, split regex)
_PRE_TOKENIZERS: dict[str, tuple[bool, str]] = {
    "default": (False, _GPT2_SPLIT),
    "gpt2": (False, _GPT2_SPLIT),
    "gpt-2": (False, _GPT2_SPLIT),
    "smollm": (True, _GPT2_SPLIT),
    "starcoder": (True, _GPT2_SPLIT),
    "refact": (True, _GPT2_SPLIT),
    "llama3": (False, _LLAMA3_SPLIT),
    "llama-bpe": (False, _LLAMA3_SPLIT),
    "llama-v3": (False, _LLAMA3_SPLIT),
    "qwen2": (False, _QWEN2_SPLIT),
}


def _byte_alphabet() -> dict[int, str]:
    """GPT-2's reversible byte -> printable character map (printable bytes map to themselves)."""
    keep = list(range(ord("!"), ord("~") + 1)) + list(range(0xA1, 0xAD)) + list(range(0xAE, 0x100))
    out, extra = {}, 0
    for b in range(256):
        if b in keep:
            out[b] = chr(b)
        else:
            out[b] = chr(256 + extra)
            extra += 1
    return out


def _tokenizers() -> Any:
    try:
        import tokenizers
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise ImportError("infercore.models.tokenizer needs the 'tokenizers' package: pip install tokenizers") from e
    return tokenizers


class Tokenizer:
    """encode/decode over a `tokenizers.Tokenizer`, with the model's special token ids."""

    def __init__(
        self,
        backend: Any,
        *,
        bos_token_id: int | None = None,
        eos_token_id: int | None = None,
        pad_token_id: int | None = None,
        chat_template: str | None = None,
        source: str = "<memory>",
    ) -> None:
        tk = _tokenizers()
        if not isinstance(backend, tk.Tokenizer):
            raise TypeError(f"backend: expected a tokenizers.Tokenizer, got {type(backend).__name__}")
        self.backend = backend
        self.source = source
        self.vocab_size = backend.get_vocab_size(with_added_tokens=True)
        for name, v in (("bos_token_id", bos_token_id), ("eos_token_id", eos_token_id), ("pad_token_id", pad_token_id)):
            if v is not None and (not isinstance(v, int) or not 0 <= v < self.vocab_size):
                raise ValueError(f"{source}: {name} {v!r} is not a token id in [0, {self.vocab_size})")
        self.bos_token_id = bos_token_id
        self.eos_token_id = eos_token_id
        self.pad_token_id = pad_token_id
        self.chat_template = chat_template
        self.special_token_ids = frozenset(i for i, t in backend.get_added_tokens_decoder().items() if t.special)

    # ---- encode / decode ----

    def encode(self, text: str, add_special_tokens: bool = True) -> list[int]:
        if not isinstance(text, str):
            raise TypeError(f"text: expected a str, got {type(text).__name__}")
        try:
            return self.backend.encode(text, add_special_tokens=add_special_tokens).ids
        except TypeError:
            raise_if_not_unicode([text], "text")
            raise

    def encode_batch(self, texts: Sequence[str], add_special_tokens: bool = True) -> list[list[int]]:
        if isinstance(texts, str) or not all(isinstance(t, str) for t in texts):
            raise TypeError("texts: expected a sequence of str")
        try:
            return [e.ids for e in self.backend.encode_batch(list(texts), add_special_tokens=add_special_tokens)]
        except TypeError:
            raise_if_not_unicode(list(texts), "texts")
            raise

    def decode(self, ids: Iterable[int], skip_special_tokens: bool = False) -> str:
        ids = self._check_ids(ids)
        return self.backend.decode(ids, skip_special_tokens=skip_special_tokens)

    def _check_ids(self, ids: Iterable[int]) -> list[int]:
        out = [int(i) for i in ids]
        for i in out:
            if not 0 <= i < self.vocab_size:
                raise ValueError(f"ids: token id {i} is out of range [0, {self.vocab_size})")
        return out

    def token_to_id(self, token: str) -> int | None:
        return self.backend.token_to_id(token)

    def id_to_token(self, token_id: int) -> str | None:
        return self.backend.id_to_token(int(token_id))

    def incremental_decoder(self, skip_special_tokens: bool = False) -> IncrementalDecoder:
        return IncrementalDecoder(self, skip_special_tokens=skip_special_tokens)

    def __repr__(self) -> str:
        return f"Tokenizer({self.source!r}, vocab_size={self.vocab_size})"

    # ---- constructors ----

    @classmethod
    def from_gguf(cls, gguf: GGUFFile | str | os.PathLike[str]) -> Tokenizer:
        f = gguf if isinstance(gguf, GGUFFile) else GGUFFile(gguf)
        md = f.metadata
        kind = md.get("tokenizer.ggml.model")
        tokens = md.get("tokenizer.ggml.tokens")
        if not isinstance(tokens, list) or not tokens or not all(isinstance(t, str) for t in tokens):
            raise ValueError(f"{f.path}: key 'tokenizer.ggml.tokens' is missing or not a list of strings")
        types = md.get("tokenizer.ggml.token_type") or [TOKEN_TYPE_NORMAL] * len(tokens)
        if len(types) != len(tokens):
            raise ValueError(f"{f.path}: 'tokenizer.ggml.token_type' has {len(types)} entries for {len(tokens)} tokens")
        if kind == "gpt2":
            backend = _byte_level_bpe(f, tokens, types)
        elif kind == "llama":
            backend = _sentencepiece_bpe(f, tokens, types)
        else:
            raise ValueError(f"{f.path}: tokenizer.ggml.model {kind!r} is not supported (supported: gpt2, llama)")
        ids = {}
        for name, key in (("bos", "bos_token_id"), ("eos", "eos_token_id"), ("pad", "padding_token_id")):
            v = md.get(f"tokenizer.ggml.{key}")
            if v is not None and (not isinstance(v, int) or not 0 <= v < len(tokens)):
                raise ValueError(f"{f.path}: 'tokenizer.ggml.{key}' = {v!r} is not a token id")
            ids[name] = v
        add_bos = bool(md.get("tokenizer.ggml.add_bos_token", kind == "llama"))
        add_eos = bool(md.get("tokenizer.ggml.add_eos_token", False))
        _set_template(backend, tokens, ids["bos"] if add_bos else None, ids["eos"] if add_eos else None)
        template = md.get("tokenizer.chat_template")
        return cls(
            backend,
            bos_token_id=ids["bos"],
            eos_token_id=ids["eos"],
            pad_token_id=ids["pad"],
            chat_template=template if isinstance(template, str) else None,
            source=f.path,
        )

    @classmethod
    def from_file(cls, path: str | os.PathLike[str]) -> Tokenizer:
        """From an HF tokenizer.json, or a directory holding it (and tokenizer_config.json / config.json)."""
        tk = _tokenizers()
        path = os.fspath(path)
        d = path if os.path.isdir(path) else os.path.dirname(path)
        tj = os.path.join(path, "tokenizer.json") if os.path.isdir(path) else path
        if not os.path.isfile(tj):
            raise ValueError(f"{tj}: tokenizer file not found")
        try:
            backend = tk.Tokenizer.from_file(tj)
        except Exception as e:  # tokenizers raises plain Exception on a malformed file
            raise ValueError(f"{tj}: cannot load tokenizer: {e}") from None
        cfg = _read_json(os.path.join(d, "tokenizer_config.json"))
        model_cfg = _read_json(os.path.join(d, "config.json"))

        def special_id(name: str) -> int | None:
            tok = cfg.get(name)
            if isinstance(tok, dict):
                tok = tok.get("content")
            if isinstance(tok, str) and backend.token_to_id(tok) is not None:
                return backend.token_to_id(tok)
            v = model_cfg.get(f"{name}_id")
            if isinstance(v, list):
                v = v[0] if v else None
            return v if isinstance(v, int) else None

        template = cfg.get("chat_template")
        if isinstance(template, list):  # a list of named templates: take "default"
            template = next((t.get("template") for t in template if t.get("name") == "default"), None)
        return cls(
            backend,
            bos_token_id=special_id("bos_token"),
            eos_token_id=special_id("eos_token"),
            pad_token_id=special_id("pad_token"),
            chat_template=template if isinstance(template, str) else None,
            source=tj,
        )


def _read_json(path: str) -> dict[str, Any]:
    if not os.path.exists(path):
        return {}
    try:
        with open(path, encoding="utf-8") as fh:
            v = json.load(fh)
    except (OSError, json.JSONDecodeError) as e:
        raise ValueError(f"{path}: cannot read JSON: {e}") from None
    return v if isinstance(v, dict) else {}


def _add_special(backend: Any, tokens: list[str], types: list[int], respell: Any = None) -> None:
    tk = _tokenizers()
    vocab = backend.get_vocab(with_added_tokens=False)
    special = [
        tk.AddedToken(t, special=True, normalized=False)
        for t, ty in zip(tokens, types, strict=True)
        if ty == TOKEN_TYPE_CONTROL and t in vocab
    ]
    user = [
        tk.AddedToken(t, special=False, normalized=False)
        for t, ty in zip(tokens, types, strict=True)
        if ty == TOKEN_TYPE_USER_DEFINED and t in vocab
    ]
    if special:
        backend.add_special_tokens(special)
    if user:
        backend.add_tokens(user)


def _set_template(backend: Any, tokens: list[str], bos: int | None, eos: int | None) -> None:
    if bos is None and eos is None:
        return
    tk = _tokenizers()
    single, pair, specials = "$A", "$A $B:1", []
    if bos is not None:
        single, pair = f"{tokens[bos]} {single}", f"{tokens[bos]} $A {tokens[bos]}:1 $B:1"
        specials.append((tokens[bos], bos))
    if eos is not None:
        single, pair = f"{single} {tokens[eos]}", f"{pair} {tokens[eos]}:1"
        if eos != bos:
            specials.append((tokens[eos], eos))
    backend.post_processor = tk.processors.TemplateProcessing(single=single, pair=pair, special_tokens=specials)


def _byte_level_bpe(f: GGUFFile, tokens: list[str], types: list[int]) -> Any:
    tk = _tokenizers()
    merges_raw = f.metadata.get("tokenizer.ggml.merges")
    if not isinstance(merges_raw, list) or not all(isinstance(m, str) for m in merges_raw):
        raise ValueError(f"{f.path}: key 'tokenizer.ggml.merges' is missing or not a list of strings")
    alphabet = _byte_alphabet()
    letters = set(alphabet.values())
    vocab: dict[str, int] = {}
    for i, t in enumerate(tokens):
        # a token spelled outside the byte alphabet (rare, mislabelled) is respelled from its UTF-8 bytes
        key = t if set(t) <= letters else "".join(alphabet[b] for b in t.encode("utf-8"))
        vocab.setdefault(key, i)
    merges = []
    for k, m in enumerate(merges_raw):
        parts = m.split(" ")
        if len(parts) != 2:
            raise ValueError(f"{f.path}: merge #{k} {m!r} is not two space-separated tokens")
        # the tokenizers library panics (does not raise) on a merge outside the vocabulary
        if parts[0] not in vocab or parts[1] not in vocab or parts[0] + parts[1] not in vocab:
            raise ValueError(f"{f.path}: merge #{k} {m!r} uses or makes a token that is not in the vocabulary")
        merges.append((parts[0], parts[1]))
    model = tk.models.BPE(vocab=vocab, merges=merges, fuse_unk=False, ignore_merges=False)
    backend = tk.Tokenizer(model)
    pre = f.metadata.get("tokenizer.ggml.pre", "default")
    if pre not in _PRE_TOKENIZERS:
        raise ValueError(
            f"{f.path}: tokenizer.ggml.pre {pre!r} is not supported (supported: {', '.join(sorted(_PRE_TOKENIZERS))})"
        )
    digits, split = _PRE_TOKENIZERS[pre]
    steps = [tk.pre_tokenizers.Split(tk.Regex(r"\p{N}"), behavior="isolated")] if digits else []
    steps += [
        tk.pre_tokenizers.Split(tk.Regex(split), behavior="isolated"),
        tk.pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
    ]
    backend.pre_tokenizer = tk.pre_tokenizers.Sequence(steps)
    backend.decoder = tk.decoders.ByteLevel()
    _add_special(backend, tokens, types)
    return backend


def _sentencepiece_bpe(f: GGUFFile, tokens: list[str], types: list[int]) -> Any:
    tk = _tokenizers()
    scores = f.metadata.get("tokenizer.ggml.scores")
    if not isinstance(scores, list) or len(scores) != len(tokens):
        raise ValueError(f"{f.path}: key 'tokenizer.ggml.scores' is missing or does not match the token count")
    vocab: dict[str, int] = {}
    for i, t in enumerate(tokens):
        vocab.setdefault(t, i)
    merges_raw = f.metadata.get("tokenizer.ggml.merges")
    if isinstance(merges_raw, list):
        merges = []
        for k, m in enumerate(merges_raw):
            parts = m.split(" ") if isinstance(m, str) else []
            if len(parts) != 2 or parts[0] not in vocab or parts[1] not in vocab or parts[0] + parts[1] not in vocab:
                raise ValueError(f"{f.path}: merge #{k} {m!r} is not two vocabulary tokens that merge into one")
            merges.append((parts[0], parts[1]))
    else:
        merges = _merges_from_scores(tokens, types, scores, vocab)
    unk = f.metadata.get("tokenizer.ggml.unknown_token_id", 0)
    model = tk.models.BPE(
        vocab=vocab,
        merges=merges,
        unk_token=tokens[unk] if isinstance(unk, int) and 0 <= unk < len(tokens) else None,
        fuse_unk=True,
        byte_fallback=True,
    )
    backend = tk.Tokenizer(model)
    add_space = bool(f.metadata.get("tokenizer.ggml.add_space_prefix", True))
    # like transformers' LlamaTokenizer (legacy=False): the "▁" prefix goes only before the first
    # piece of the text, and not when the text already starts with a space
    backend.pre_tokenizer = tk.pre_tokenizers.Metaspace(
        replacement="▁", prepend_scheme="first" if add_space else "never", split=False
    )
    dec = [tk.decoders.Replace("\u2581", " "), tk.decoders.ByteFallback(), tk.decoders.Fuse()]
    if add_space:
        dec.append(tk.decoders.Strip(content=" ", left=1, right=0))
    backend.decoder = tk.decoders.Sequence(dec)
    _add_special(backend, tokens, types)
    return backend


def _merges_from_scores(
    tokens: list[str], types: list[int], scores: list[float], vocab: dict[str, int]
) -> list[tuple[str, str]]:
    """SentencePiece BPE merges: every split of a normal token into two vocab pieces, best score first."""
    ranked = []
    for i, t in enumerate(tokens):
        if types[i] not in (TOKEN_TYPE_NORMAL, TOKEN_TYPE_USER_DEFINED) or len(t) < 2:
            continue
        for k in range(1, len(t)):
            a, b = t[:k], t[k:]
            if a in vocab and b in vocab:
                ranked.append((-scores[i], vocab[a], vocab[b], a, b))
    ranked.sort()
    return [(a, b) for *_, a, b in ranked]


class IncrementalDecoder:
    """Turns a growing list of token ids into text deltas; never emits half a UTF-8 character.

    Decodes a short window (from `prefix` to the end) and emits what it adds beyond the text of the
    window's already-emitted part, so decoder rules that look at neighbours (spaces) stay right.
    """

    def __init__(self, tokenizer: Tokenizer, skip_special_tokens: bool = False) -> None:
        self.tokenizer = tokenizer
        self.skip_special_tokens = skip_special_tokens
        self.ids: list[int] = []
        self._prefix = 0  # start of the window
        self._read = 0  # ids before this are already emitted

    def _decode(self, ids: list[int]) -> str:
        return self.tokenizer.decode(ids, skip_special_tokens=self.skip_special_tokens)

    def step(self, token_ids: int | Iterable[int]) -> str:
        """Add one id (or several) and return the new text ('' while a character is incomplete)."""
        new = [token_ids] if isinstance(token_ids, int) else list(token_ids)
        self.ids.extend(self.tokenizer._check_ids(new))
        prefix_text = self._decode(self.ids[self._prefix : self._read])
        text = self._decode(self.ids[self._prefix :])
        if len(text) > len(prefix_text) and not text.endswith("\ufffd"):
            delta = text[len(prefix_text) :]
            self._prefix, self._read = self._read, len(self.ids)
            return delta
        return ""

    def flush(self) -> str:
        """Emit whatever is held back (at the end of generation: a lone invalid byte shows as U+FFFD)."""
        prefix_text = self._decode(self.ids[self._prefix : self._read])
        text = self._decode(self.ids[self._prefix :])
        self._prefix = self._read = len(self.ids)
        return text[len(prefix_text) :]
