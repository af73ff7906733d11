"""Decoding: top-k for classifiers; CTC greedy, prefix beam search, and grammar scoring for CTC.

All CTC functions take one utterance's log-probabilities ``(frames, vocab + 1)`` with blank = 0.
"""
from __future__ import annotations

import math
from collections import defaultdict

import torch


def top_k(logits: torch.Tensor, k: int) -> list[list[tuple[int, float]]]:
    """``(batch, classes)`` logits -> per row the ``k`` best ``(class index, probability)``."""
    probs = torch.softmax(logits.float(), dim=-1)
    values, indices = probs.topk(min(k, probs.shape[-1]), dim=-1)
    return [list(zip(i.tolist(), v.tolist())) for i, v in zip(indices, values)]


def ctc_greedy_decode(log_probs: torch.Tensor, blank: int = 0) -> tuple[list[int], float]:
    """Best path: argmax per frame, merge repeats, drop blanks. Returns ``(token ids, path log-prob)``."""
    best, ids = log_probs.max(dim=-1)
    tokens, previous = [], blank
    for i in ids.tolist():
        if i != previous and i != blank:
            tokens.append(i)
        previous = i
    return tokens, float(best.sum())


def _logaddexp(a: float, b: float) -> float:
    if a == -math.inf:
        return b
    if b == -math.inf:
        return a
    m = max(a, b)
    return m + math.log(math.exp(a - m) + math.exp(b - m))


def ctc_prefix_beam_search(
    log_probs: torch.Tensor, beam_size: int = 8, blank: int = 0, prune: float = -12.0
) -> list[tuple[list[int], float]]:
    """CTC prefix beam search. Returns up to ``beam_size`` ``(token ids, log-probability)``, best first.

    Each prefix keeps two scores (ending in blank / in its last token) so repeats are merged exactly as
    CTC defines; tokens with frame log-probability below ``prune`` are skipped.
    """
    lp = log_probs.float().cpu()
    beams: dict[tuple[int, ...], tuple[float, float]] = {(): (0.0, -math.inf)}
    for t in range(lp.shape[0]):
        frame = lp[t]
        candidates = [int(i) for i in torch.nonzero(frame > prune).flatten()]
        if blank not in candidates:
            candidates.append(blank)
        frame = frame.tolist()
        new: dict[tuple[int, ...], list[float]] = defaultdict(lambda: [-math.inf, -math.inf])
        for prefix, (p_blank, p_token) in beams.items():
            total = _logaddexp(p_blank, p_token)
            for c in candidates:
                p = frame[c]
                if c == blank:
                    entry = new[prefix]
                    entry[0] = _logaddexp(entry[0], total + p)
                    continue
                extended = prefix + (c,)
                entry = new[extended]
                if prefix and prefix[-1] == c:
                    entry[1] = _logaddexp(entry[1], p_blank + p)  # a repeat needs a blank between
                    same = new[prefix]
                    same[1] = _logaddexp(same[1], p_token + p)
                else:
                    entry[1] = _logaddexp(entry[1], total + p)
        ranked = sorted(new.items(), key=lambda kv: _logaddexp(*kv[1]), reverse=True)[:beam_size]
        beams = {k: (v[0], v[1]) for k, v in ranked}
    result = [(list(k), _logaddexp(*v)) for k, v in beams.items() if _logaddexp(*v) > -math.inf]  # drop impossible
    return sorted(result, key=lambda kv: kv[1], reverse=True)


def ctc_score_phrases(log_probs: torch.Tensor, phrases: list[list[int]], blank: int = 0) -> torch.Tensor:
    """Exact log-likelihood ``log p(phrase | audio)`` of each token sequence under CTC.

    ``log_probs (frames, vocab + 1)``; returns ``(len(phrases),)``; a phrase that cannot fit in the
    frames gets ``-inf``. This is grammar decoding: the best phrase of a closed list, with a score for
    each, so new commands need no retraining.
    """
    n = len(phrases)
    frames = log_probs.shape[0]
    lp = log_probs.float().unsqueeze(1).expand(frames, n, log_probs.shape[-1])
    target_lengths = torch.tensor([len(p) for p in phrases], dtype=torch.long)
    targets = torch.tensor([i for p in phrases for i in p], dtype=torch.long)
    input_lengths = torch.full((n,), frames, dtype=torch.long)
    nll = torch.nn.functional.ctc_loss(
        lp.cpu(), targets, input_lengths, target_lengths, blank=blank, reduction="none", zero_infinity=False
    )
    return -nll


def ctc_phrase_probability(log_likelihood: torch.Tensor | float) -> float:
    """The rejection score of grammar decoding: ``p(phrase | audio)`` under CTC, the exp of a
    :func:`ctc_score_phrases` value, in [0, 1].

    The grammar's posterior (a softmax over the grammar's phrases) is near 1 for the closest phrase
    whatever was said; this probability is the phrase's share of *every* character sequence the model
    could emit, so all the other sequences act as a garbage alternative: speech outside the grammar
    (another word, a digit) leaves the best phrase a small share. Chosen over the ratio to the greedy or
    Viterbi best path, per frame or in total, by the DET on the DEV half of ``speech bench detection``
    (docs/live.md)."""
    return float(math.exp(min(float(log_likelihood), 0.0)))


def load_grammar(path: str) -> list[str]:
    """Phrases of a grammar file: one command per line; blank lines and ``#`` comments are skipped."""
    from pathlib import Path

    p = Path(path)
    if not p.is_file():
        raise ValueError(f"{path}: no such grammar file")
    phrases = [line.split("#", 1)[0].strip() for line in p.read_text(encoding="utf-8").splitlines()]
    phrases = [ph for ph in phrases if ph]
    if not phrases:
        raise ValueError(f"{path}: grammar file has no phrases")
    return phrases
