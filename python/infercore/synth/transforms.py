"""Text transforms offered to spec templates as Jinja2 filters (obfuscations and edge cases).

Deterministic ones (b64, rot13, fullwidth, spaced, luhn) are pure functions; `obfuscate(name)`
applies the transform a slot names ("plain" = none); the random ones (leet,
zero_width, confusable, mixed_case, typos) draw from the example's own generator, so an example
renders the same under the same spec seed and index whatever else is generated.
"""

from __future__ import annotations

import base64
import codecs
import random
from collections.abc import Callable
from typing import Any

_CYR = {"a": "а", "e": "е", "o": "о", "p": "р", "c": "с", "x": "х", "y": "у", "i": "і"}
_LEET = {"a": "4", "e": "3", "i": "1", "o": "0", "s": "5", "t": "7"}


def b64(s: str) -> str:
    return base64.b64encode(str(s).encode("utf-8")).decode("ascii")


def rot13(s: str) -> str:
    return codecs.encode(str(s), "rot13")


def fullwidth(s: str) -> str:
    return "".join(chr(ord(c) + 0xFEE0) if "!" <= c <= "~" else ("\u3000" if c == " " else c) for c in str(s))


def spaced(s: str) -> str:
    """Every character separated by a space (a split-words obfuscation that also works for Japanese)."""
    return " ".join(str(s))


def random_filters(rng_of: Callable[[], random.Random]) -> dict[str, Callable[..., str]]:
    """Filters that draw from `rng_of()` (the generator of the example being rendered)."""

    def leet(s: str, p: float = 0.7) -> str:
        rng = rng_of()
        return "".join(_LEET[c.lower()] if c.lower() in _LEET and rng.random() < p else c for c in str(s))

    def zero_width(s: str, p: float = 0.5) -> str:
        rng = rng_of()
        return "".join(c + ("\u200b" if not c.isspace() and rng.random() < p else "") for c in str(s))

    def confusable(s: str, p: float = 0.6) -> str:
        rng = rng_of()
        return "".join(_CYR[c] if c in _CYR and rng.random() < p else c for c in str(s))

    def mixed_case(s: str) -> str:
        rng = rng_of()
        return "".join(c.upper() if rng.random() < 0.5 else c.lower() for c in str(s))

    def typos(s: str, p: float = 0.05) -> str:
        """Drop, double or swap characters with probability p each (an edge case for robustness sets)."""
        rng = rng_of()
        out: list[str] = []
        chars = list(str(s))
        i = 0
        while i < len(chars):
            r = rng.random()
            if r < p / 3:
                pass  # drop
            elif r < 2 * p / 3:
                out += [chars[i], chars[i]]
            elif r < p and i + 1 < len(chars):
                out += [chars[i + 1], chars[i]]
                i += 1
            else:
                out.append(chars[i])
            i += 1
        return "".join(out)

    return {"leet": leet, "zero_width": zero_width, "confusable": confusable, "mixed_case": mixed_case,
            "typos": typos}


def luhn(digits: Any) -> str:
    """`digits` with a Luhn check digit appended (card-like numbers that pass validation)."""
    body = str(digits)
    if not body.isdigit():
        raise ValueError(f"luhn: expected a string of digits, got {body!r}")
    total = 0
    for i, ch in enumerate(reversed(body)):
        n = int(ch)
        if i % 2 == 0:  # these positions are doubled once the check digit is appended
            n = n * 2 - 9 if n > 4 else n * 2
        total += n
    return body + str((10 - total % 10) % 10)


def all_filters(rng_of: Callable[[], random.Random]) -> dict[str, Any]:
    plain: dict[str, Callable[..., str]] = {"b64": b64, "rot13": rot13, "fullwidth": fullwidth, "spaced": spaced}
    rand = random_filters(rng_of)
    names = {"plain": lambda s: str(s), "base64": b64, **plain, **rand}

    def obfuscate(s: Any, name: str) -> str:
        """Apply the transform called `name` ("plain" leaves the text as is): lets a slot pick it."""
        if name not in names:
            raise ValueError(f"obfuscate: unknown transform {name!r}; expected one of {sorted(names)}")
        return names[name](s)

    return {**plain, **rand, "luhn": luhn, "obfuscate": obfuscate}
