"""Text for CTC: normalization and the token vocabulary (characters by default, words as an option)."""
from __future__ import annotations

import re

CHARACTERS = list(" abcdefghijklmnopqrstuvwxyz'")
BLANK = "<blank>"


def normalize_text(text: str) -> str:
    """Lower-case, keep letters, apostrophes and single spaces: ``"Turn  ON!"`` -> ``"turn on"``."""
    text = re.sub(r"[^a-z' ]+", " ", text.lower().replace("_", " "))
    return " ".join(text.split())


class Vocabulary:
    """Tokens of a CTC model. Index 0 is the blank; token ``i`` of ``tokens`` has index ``i + 1``.

    ``unit="char"`` spells text letter by letter (so any phrase can be decoded); ``unit="word"`` treats
    each whitespace-separated word as a token.
    """

    def __init__(self, tokens: list[str], unit: str = "char"):
        if unit not in ("char", "word"):
            raise ValueError(f"vocabulary unit must be char or word, got {unit!r}")
        self.tokens = list(tokens)
        self.unit = unit
        self.index = {t: i + 1 for i, t in enumerate(self.tokens)}

    @classmethod
    def characters(cls) -> "Vocabulary":
        return cls(CHARACTERS, "char")

    @classmethod
    def words_from(cls, texts: list[str]) -> "Vocabulary":
        return cls(sorted({w for t in texts for w in normalize_text(t).split()}), "word")

    def __len__(self) -> int:
        return len(self.tokens)

    def split(self, text: str) -> list[str]:
        text = normalize_text(text)
        return list(text) if self.unit == "char" else text.split()

    def encode(self, text: str) -> list[int]:
        """Token indices (1-based) of ``text``; unknown tokens raise ``ValueError``."""
        pieces = self.split(text)
        missing = [p for p in pieces if p not in self.index]
        if missing:
            raise ValueError(f"text {text!r} has tokens outside the vocabulary: {sorted(set(missing))}")
        return [self.index[p] for p in pieces]

    def decode(self, ids: list[int]) -> str:
        pieces = [self.tokens[i - 1] for i in ids if i > 0]
        return ("" if self.unit == "char" else " ").join(pieces).strip()
