"""Prompt-injection / jailbreak rail: pattern rules over the normalized views of normalize.py.

Each rule has a weight in (0, 1]; the score is 1 - prod(1 - w) over distinct rules that fired, and
the text is blocked when score >= threshold. Strong rules (override previous instructions, reveal
the system prompt) block alone; weak signals ("developer mode", "jailbreak") need company.
Patterns use only bounded gaps ({0,n}) and no nested quantifiers, so matching is linear.

Optional second layer: `classifier`: "fast" (ngram_classifier.NgramClassifier: hashed character and
word n-grams, no model, well under a millisecond), "accurate" or True (classifier.EmbeddingClassifier:
MiniLM embedding + character n-grams, tens of ms on CPU), a weights path (either kind), or a loaded
classifier. It runs only when the patterns did not block, and blocks when its probability (maximum
over the detection views and sentence pieces) reaches its calibrated threshold: either layer blocks.
"""

from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass
from typing import Any

from .._fileio import check_path
from .normalize import Normalizer, search_word
from .types import RailDecision, Violation

# Word-wise gaps over the folded view (single spaces): finish the current token, then up to n
# whole words. Possessive \S++ never backtracks into a word, so each try costs O(n) words.
_GAP = r"\S*+(?: \S++){0,6}? "
_SHORT = r"\S*+(?: \S++){0,3}? "

# English, over the spaced views (folded, leetspeak, decoded).
_EN: list[tuple[str, float, str]] = [
    ("override_instructions", 1.0,
     r"\b(?:ignore|disregard|forget|override|bypass|skip|drop|abandon|discard|neglect|throw out|set aside)\b"
     + _GAP + r"\b(?:previous|prior|above|earlier|preceding|initial|original|system|developer|all|any|your|every"
     r"|foregoing|old|existing)\b" + _SHORT
     + r"\b(?:instructions?|rules|directions?|prompts?|guidelines|guidance|constraints|commands?|polic(?:y|ies)"
     r"|restrictions|directives?|programming|orders|context|messages?)\b"),
    ("override_instructions", 0.9,
     r"\b(?:do not|don't|stop) (?:follow|obey|listen to|adhere to)(?:ing)?\b" + _SHORT
     + r"\b(?:instructions?|rules|guidelines|system prompt|polic(?:y|ies)|your programming)\b"),
    ("prompt_exfiltration", 1.0,
     r"\b(?:reveal|show|print|repeat|output|display|tell me|leak|dump|give me|share|disclose|expose|write out"
     r"|spell out|recite|paste)\b" + _GAP
     + r"\b(?:your|the|its|my|this)\s(?:(?:full|entire|exact|complete|whole)\s)?(?:(?:system|initial|hidden|original"
     r"|secret|internal|confidential|developer|pre-?prompt)\s?){1,2}(?:prompt|instructions|message|rules|configuration)"),
    ("prompt_exfiltration", 0.9,
     r"\b(?:repeat|print|output|copy)\b" + _SHORT + r"\b(?:words|text|everything|all)\b" + _SHORT
     + r"\b(?:above|before this|so far|preceding)\b"),
    ("prompt_exfiltration", 0.8,
     r"\bwhat (?:were|are|was|is) (?:your|the) (?:initial|original|system|hidden|first|secret) "
     r"(?:instructions|prompt|rules|message)\b"),
    ("roleplay_unrestricted", 1.0,
     r"\b(?:you are|you're|act as|acting as|pretend (?:to be|you are|you're)|roleplay as|play the role of"
     r"|behave as|become|you will be|you'll be|respond as|simulate)\b" + _GAP
     + r"(?:\bdan\b|do anything now|jailbroken|unfiltered|uncensored|unrestricted|unbound|amoral|unethical"
     r"|no (?:restrictions|rules|limits|limitations|filters|guidelines|boundaries|morals|ethics)"
     r"|without (?:any )?(?:restrictions|rules|limits|limitations|filters|guidelines|censorship|morals|ethics))"),
    ("roleplay_unrestricted", 0.9,
     r"\b(?:no longer|not) (?:bound|restricted|limited|constrained) by\b" + _SHORT
     + r"\b(?:rules|guidelines|policies|polic(?:y|ies)|restrictions|openai|anthropic"
     r"|your (?:creators|developers|training))"),
    ("roleplay_unrestricted", 0.9, r"\bdo anything now\b"),
    ("roleplay_unrestricted", 0.8,
     r"\b(?:free|freed|liberated|released) from\b" + _SHORT + r"\b(?:restrictions|rules|guidelines|filters|censorship"
     r"|limitations|constraints)\b"),
    ("safety_bypass", 0.9,
     r"\b(?:bypass|disable|turn off|switch off|deactivate|remove|circumvent|evade|get around|ignore)\b" + _SHORT
     + r"\byour\b" + _SHORT + r"\b(?:safety|content|ethical|moral)?\s?(?:filters?|guardrails|safeguards|restrictions"
     r"|censorship|alignment|ethics|morals|guidelines|safety)\b"),
    ("safety_bypass", 0.5,
     r"\b(?:bypass|disable|circumvent|evade)\b" + _SHORT
     + r"\b(?:safety|content) (?:filters?|guardrails|polic(?:y|ies))\b"),
    # "New instructions:" / "Updated system prompt:" announce a replacement for the model's instructions.
    ("new_instructions", 0.8,
     r"\b(?:new|updated|real|actual|true|override|secret) (?:instructions?|system prompt|directives?)\s?:"),
    # "New rules:" / "New task:" also head ordinary notices ("The new rules: lunch is at noon"): strong
    # only when what follows speaks to the assistant within a few words, else a weak signal.
    ("new_instructions", 0.8,
     r"\b(?:new|updated|real|actual|true|override|secret) (?:tasks?|rules)\s?: (?:\S++ ){0,4}?"
     r"(?:you|your|yourself|ignore|disregard|forget|reveal|print|output|say|reply|respond|answer|repeat|act"
     r"|pretend|assistant|ai|model|chatbot)\b"),
    ("new_task_heading", 0.4, r"\b(?:new|updated|real|actual|true|override|secret) (?:tasks?|rules)\s?:"),
    ("new_instructions", 0.7,
     r"(?:<\|im_start\|>\s?system|\[\s?/?(?:system|inst|sys)\s?\]|<<\s?sys\s?>>|###\s?system\b)"),
    ("new_instructions", 0.6, r"(?:^|\n|\s)system\s?:\s?(?:you are|you're|from now on|ignore|new)\b"),
    ("mode_switch", 0.8,
     r"\b(?:enable|enter|activate|switch to|turn on|you are (?:now )?in|now in|unlock)\b" + _SHORT
     + r"\b(?:god|jailbreak|dan|unrestricted|evil|unfiltered|uncensored) mode\b"),
    ("mode_switch", 0.3, r"\b(?:developer|god|jailbreak|dan|unrestricted|evil) mode\b"),
    ("jailbreak_term", 0.4, r"\bjailbr(?:eak|oken)\b"),
    ("from_now_on", 0.4, r"\b(?:from now on|for the rest of this conversation|starting now)\b" + _GAP
     + r"\b(?:you|your)\b"),
    ("stay_in_character", 0.5, r"\b(?:stay|remain) in character\b"),
]

# Japanese, over the compact view (no spaces, no punctuation).
_ANY_ALL = r"(?:すべて|全て|全部|一切|みんな)?の?"
# "do not ignore the rules" is not an attack
_JA_NOT = r"(?!しないで|しては|せず|できな|できま|しません|するな|しちゃ|すること(?:は|が)?(?:でき|許され|禁止))"
# ignoring as the subject of a sentence, a condition or a past event, not a request: "ignoring your
# boss's instructions is bad, right?" (無視するのは良くない), "what happens if I ignore them"
# (無視すると/したら), "I forgot the instructions" (忘れてしまった): every verb form here is followed by
# a nominalizer, a conditional or a perfective ending, which a command to the model never needs
_JA_TOPIC = (r"(?!(?:する|した|しない|される|されない|る|た|ない)"
             r"(?:のは|のが|のも|のって|ことは|ことが|ことも|ことに|と|なら|人|者|場合|とき|時|べき|だろう|でしょう)"
             r"|[しすさ]?(?:たら|れば)|し?がち|なければ|なきゃ|なくては"
             r"|(?:し)?(?:てしまった|てしまいました|ちゃった|ていた|ていました|てた))")
_JA: list[tuple[str, float, str]] = [
    ("override_instructions", 1.0,
     r"(?:これまで|今まで|以前|前|上記|上|先ほど|先程|最初|元|既存|システム|開発者|あなた)の" + _ANY_ALL
     + r"(?:指示|命令|指令|ルール|設定|制約|制限|プロンプト|ガイドライン|規則)(?:を|は|に)?"
     r"(?:すべて|全て|全部|一切)?"
     r"(?:無視|忘れ|破棄|取り消|リセット|従わ|守ら|無効)" + _JA_NOT + _JA_TOPIC),
    ("override_instructions", 0.9,
     r"(?:指示|命令|ルール|制約|制限|ガイドライン|規則|プロンプト)(?:を|は)?(?:すべて|全て|全部|一切)?"
     r"(?:無視|忘れ(?=て)|破棄)" + _JA_NOT + _JA_TOPIC),
    ("prompt_exfiltration", 1.0,
     r"(?:システムプロンプト|初期プロンプト|隠された(?:指示|プロンプト)|秘密の(?:指示|プロンプト)|内部(?:の)?(?:指示|プロンプト)"
     r"|最初の指示|元の指示|設定された指示)(?:を|の内容を|の全文を|の中身を)?(?:すべて|全て|そのまま)?"
     r"(?:表示|教え|見せ|出力|開示|公開|書き出|繰り返|貼り付け)"),
    ("roleplay_unrestricted", 1.0,
     r"(?:制限|制約|ルール|フィルター|フィルタ|検閲|倫理|規制)(?:の|が)?(?:一切)?(?:ない|なし|無い|無し)(?:AI|ai|アシスタント|モデル|存在|状態"
     r"|キャラクター|人格|チャットボット|ボット)"),
    ("safety_bypass", 0.9,
     r"(?:制限|制約|安全(?:機能|対策)?|フィルター|フィルタ|検閲|セーフティ|ガードレール)(?:を|は)?(?:すべて|全て|一切)?"
     r"(?:解除|外し|無効化|無効に|回避|オフに|取り払)"),
    ("roleplay_unrestricted", 0.5, r"(?:あなたは今から|これからあなたは|今からあなたは|以降あなたは|君は今から)"),
    ("mode_switch", 0.5, r"(?:開発者モード|デベロッパーモード|ゴッドモード|脱獄モード|danモード)"),
    ("jailbreak_term", 0.4, r"(?:脱獄|ジェイルブレイク)"),
    ("new_instructions", 0.8, r"(?:新しい|本当の|真の|追加の)(?:指示|命令|システムプロンプト)(?:は|です|:)"),
]

# Spaced English phrases that survive as substrings of the compact view: catches split and
# separator-laden words ("i.g.n.o.r.e a-l-l p r e v i o u s ...").
_COMPACT_EN: list[tuple[str, float, str]] = [
    ("override_instructions", 1.0,
     r"(?:ignore|disregard|forget|override|bypass)(?:all|any|the|your)?(?:previous|prior|above|earlier|system|initial"
     r"|original)(?:instructions?|rules|prompts?|guidelines|directions)"),
    ("override_instructions", 1.0, r"(?:ignore|disregard|forget)(?:all|your|every)(?:instructions|rules|guidelines)"),
    ("prompt_exfiltration", 1.0,
     r"(?:reveal|show|print|repeat|output|display|tellme|leak|dump)(?:me)?(?:your|the)(?:system|initial|hidden|secret)"
     r"(?:prompt|instructions)"),
    ("roleplay_unrestricted", 0.9, r"(?:doanythingnow|jailbrokenmode|developermodeenabled|youarenowdan)"),
]


def _compile(rules: list[tuple[str, float, str]]) -> list[tuple[str, float, re.Pattern[str]]]:
    # a leading \b is checked by search_word instead (keeps sre's fast first-character scan)
    return [(name, w, re.compile(p[2:] if p.startswith(r"\b") else p)) for name, w, p in rules]


@dataclass
class InjectionRail:
    """Blocks prompt injection and jailbreak attempts (English and Japanese)."""

    name: str = "injection"
    threshold: float = 0.75
    decode: bool = True
    normalizer: Normalizer | None = None  # share one with other rails of a Guard to normalize once
    can_modify: bool = False
    classifier: Any = None  # None/False: patterns only; "fast"; "accurate"/True; a weights path; or a classifier
    judge: Any = None  # an LLMJudge (judge.py), asked last when neither layer blocked

    def __post_init__(self) -> None:
        self.classifier = _resolve_classifier(self.classifier)
        if self.judge is not None and not callable(getattr(self.judge, "judge", None)):
            raise TypeError(f"judge: expected an LLMJudge (with judge()), got {type(self.judge).__name__}")
        if self.normalizer is None:
            self.normalizer = Normalizer(decode=self.decode)
        if (isinstance(self.threshold, bool) or not isinstance(self.threshold, (int, float))
                or not 0.0 < float(self.threshold) <= 1.0):  # fmt: skip
            raise ValueError(f"threshold: expected a number in (0, 1], got {self.threshold!r}")
        self._en = _compile(_EN)
        self._ja = _compile(_JA)
        self._compact = _compile(_COMPACT_EN)

    def score(self, text: str) -> tuple[float, list[Violation]]:
        v = self.normalizer.views(text)
        hits: dict[str, tuple[float, str]] = {}  # rule name -> (strongest weight, view)

        def hit(key: str, w: float, where: str) -> None:
            if key not in hits or hits[key][0] < w:
                hits[key] = (w, where)

        for where, s in v.spaced():
            for name, w, pat in self._en:
                if search_word(pat, s):
                    hit(name, w, where)
        for name, w, pat in self._ja:
            if pat.search(v.compact):
                hit(name, w, "compact")
        for name, w, pat in self._compact:
            if pat.search(v.compact):
                hit(name, w, "compact")
        for how, s in v.decoded:  # Japanese hidden inside base64
            if how == "base64":
                c = "".join(ch for ch in s if ch.isalnum())
                for name, w, pat in self._ja:
                    if pat.search(c):
                        hit(name, w, how)
        keep = 1.0
        for w, _ in hits.values():
            keep *= 1.0 - w
        score = 1.0 - keep
        viol = [Violation(self.name, f"{k} ({where})", None, w) for k, (w, where) in hits.items()]
        return score, viol

    def check(self, text: str, context: Any = None) -> RailDecision:
        score, viol = self.score(text)
        if score >= self.threshold:
            return RailDecision("blocked", text, viol)
        if self.classifier is not None and text.strip():
            p, where = self.classifier.score(text, self.normalizer)
            if p >= self.classifier.threshold:
                return RailDecision("blocked", text, [*viol, Violation(self.name, f"classifier ({where})", None, p)])
        if self.judge is not None and text.strip():
            verdict = self.judge.judge(text)
            if verdict is True:
                return RailDecision("blocked", text, [*viol, Violation(self.name, "llm_judge", None, 1.0)])
        return RailDecision("passed", text, viol)


CLASSIFIER_MODES: tuple[str, ...] = ("fast", "accurate")


def load_classifier(c: Any) -> Any:
    """None/False -> None; "fast" -> the shipped NgramClassifier; "accurate"/True -> the shipped
    EmbeddingClassifier (needs MiniLM); a path -> whichever kind its weights file says; a loaded
    classifier (an object with score(text, normalizer) and threshold) -> itself."""
    if c is None or c is False:
        return None
    from .classifier import EmbeddingClassifier
    from .ngram_classifier import NgramClassifier, read_weights

    if c is True or c == "accurate":
        return EmbeddingClassifier.load()
    if c == "fast":
        return NgramClassifier.load()
    if isinstance(c, (str, os.PathLike)):
        from pathlib import Path

        p = Path(check_path(c, "classifier"))
        if not p.is_file() and p.suffix != ".npz":
            raise ValueError(f"classifier: expected 'fast', 'accurate' or a weights file (.npz), got {str(c)!r}")
        if p.is_file() and read_weights(p)[3]["features"].get("kind") == "ngram":
            return NgramClassifier.load(p)
        return EmbeddingClassifier.load(p)
    if callable(getattr(c, "score", None)) and isinstance(getattr(c, "threshold", None), (int, float)):
        if not math.isfinite(c.threshold):  # NaN would never block
            raise ValueError(f"classifier.threshold: expected a finite number, got {c.threshold!r}")
        return c
    raise TypeError(f"classifier: expected None, a bool, 'fast', 'accurate', a weights path or a loaded classifier, "
                    f"got {type(c).__name__}")


_resolve_classifier = load_classifier
