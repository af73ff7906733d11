"""``speech.decode``: greedy CTC, prefix beam search against an exhaustive sum over all CTC paths,
grammar scoring, grammar files and top-k."""
from __future__ import annotations

import itertools
import math

import pytest
import torch

from speech.decode import ctc_greedy_decode, ctc_prefix_beam_search, ctc_score_phrases, load_grammar, top_k

torch.set_num_threads(1)


def log_probs_from(rows: list[list[float]]) -> torch.Tensor:
    probs = torch.tensor(rows, dtype=torch.float64)
    assert torch.allclose(probs.sum(-1), torch.ones(len(rows), dtype=torch.float64))
    return probs.log().float()


def collapse(path: tuple[int, ...], blank: int = 0) -> tuple[int, ...]:
    out, previous = [], None
    for s in path:
        if s != previous and s != blank:
            out.append(s)
        previous = s
    return tuple(out)


def brute_force(log_probs: torch.Tensor) -> dict[tuple[int, ...], float]:
    """Exact CTC: log p(labeling) by summing the probability of every frame path that collapses to it."""
    lp = log_probs.double()
    frames, symbols = lp.shape
    totals: dict[tuple[int, ...], float] = {}
    for path in itertools.product(range(symbols), repeat=frames):
        p = math.exp(sum(float(lp[t, s]) for t, s in enumerate(path)))
        key = collapse(path)
        totals[key] = totals.get(key, 0.0) + p
    return {k: math.log(v) for k, v in totals.items()}


def random_log_probs(frames: int, symbols: int, seed: int, sharpness: float = 2.0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.log_softmax(torch.randn(frames, symbols, generator=g) * sharpness, -1)


# --------------------------------------------------------------------------- greedy


def test_greedy_merges_repeats_and_drops_blanks():
    # best path: a a _ b b _ _ c  ->  a b c
    ids = [1, 1, 0, 2, 2, 0, 0, 3]
    lp = torch.full((len(ids), 4), math.log(0.1))
    for t, i in enumerate(ids):
        lp[t, i] = math.log(0.7)
    tokens, score = ctc_greedy_decode(lp)
    assert tokens == [1, 2, 3]
    assert score == pytest.approx(len(ids) * math.log(0.7), abs=1e-5)


def test_greedy_blank_between_repeats_keeps_both():
    lp = torch.log(torch.tensor([[0.1, 0.9], [0.8, 0.2], [0.1, 0.9], [0.1, 0.9]]))
    assert ctc_greedy_decode(lp)[0] == [1, 1]  # a _ a a -> a a
    lp = torch.log(torch.tensor([[0.1, 0.9], [0.1, 0.9], [0.1, 0.9]]))
    assert ctc_greedy_decode(lp)[0] == [1]  # a a a -> a


def test_greedy_all_blank_and_other_blank_index():
    lp = torch.log(torch.tensor([[0.9, 0.1], [0.6, 0.4]]))
    assert ctc_greedy_decode(lp)[0] == []
    # blank = last index
    lp = torch.log(torch.tensor([[0.7, 0.1, 0.2], [0.1, 0.1, 0.8], [0.7, 0.2, 0.1]]))
    assert ctc_greedy_decode(lp, blank=2)[0] == [0, 0]


# --------------------------------------------------------------------------- prefix beam search


def test_beam_finds_the_labeling_greedy_misses():
    """Two frames, p(blank) = 0.6 and p(a) = 0.4 each. Best path is "_ _" (0.36) so greedy says "", but
    p("a") = p(a a) + p(a _) + p(_ a) = 0.16 + 0.24 + 0.24 = 0.64 > p("") = 0.36."""
    lp = log_probs_from([[0.6, 0.4], [0.6, 0.4]])
    tokens, path_score = ctc_greedy_decode(lp)
    assert tokens == [] and path_score == pytest.approx(math.log(0.36), abs=1e-6)
    beams = ctc_prefix_beam_search(lp, beam_size=4)
    assert beams[0][0] == [1] and beams[0][1] == pytest.approx(math.log(0.64), abs=1e-6)
    assert beams[1][0] == [] and beams[1][1] == pytest.approx(math.log(0.36), abs=1e-6)
    assert len(beams) == 2  # "a a" needs 3 frames: impossible, not listed
    exact = ctc_score_phrases(lp, [beams[0][0]])
    assert beams[0][1] == pytest.approx(float(exact[0]), abs=1e-4)


def test_beam_beats_greedy_on_a_longer_example():
    """Three symbols over four frames where the single best path spells "b" but the labeling "a" gathers
    more probability over its many paths."""
    lp = log_probs_from([
        [0.45, 0.30, 0.25],
        [0.45, 0.30, 0.25],
        [0.20, 0.30, 0.50],
        [0.45, 0.35, 0.20],
    ])
    greedy, _ = ctc_greedy_decode(lp)
    exact = brute_force(lp)
    best = max(exact, key=exact.get)
    assert list(best) != greedy  # the example is what it claims
    beams = ctc_prefix_beam_search(lp, beam_size=16, prune=-math.inf)
    assert beams[0][0] == list(best)
    assert beams[0][1] == pytest.approx(exact[best], abs=1e-4)
    assert beams[0][1] == pytest.approx(float(ctc_score_phrases(lp, [beams[0][0]])[0]), abs=1e-4)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_beam_scores_are_exact_ctc_probabilities(seed):
    """With a beam wide enough to keep every prefix, each hypothesis' score is the exact log-probability
    of its labeling (checked against enumerating all 3^6 frame paths and against ``ctc_score_phrases``),
    the ranking is the exact one, and the probabilities of all labelings sum to 1."""
    lp = random_log_probs(6, 3, seed)
    exact = brute_force(lp)
    beams = ctc_prefix_beam_search(lp, beam_size=10_000, prune=-math.inf)
    assert {tuple(t) for t, _ in beams} == set(exact)
    for tokens, score in beams:
        assert score == pytest.approx(exact[tuple(tokens)], abs=1e-4)
    scores = [s for _, s in beams]
    assert scores == sorted(scores, reverse=True)
    assert sum(math.exp(s) for s in scores) == pytest.approx(1.0, abs=1e-4)
    phrases = [t for t, _ in beams[:20]]
    torch.testing.assert_close(ctc_score_phrases(lp, phrases).double(), torch.tensor(scores[:20], dtype=torch.float64),
                               rtol=0, atol=1e-4)


def test_beam_top_hypothesis_on_peaky_output_matches_greedy():
    """On confident (peaky) output, beam search and greedy agree. A narrow beam drops the paths through
    pruned prefixes, so its score is a lower bound of the exact one; a wide beam gives the exact score."""
    ids = [0, 3, 3, 0, 1, 0, 0, 1, 2, 2, 0]
    lp = torch.full((len(ids), 5), math.log(0.01))
    for t, i in enumerate(ids):
        lp[t, i] = math.log(0.96)
    greedy, _ = ctc_greedy_decode(lp)
    beams = ctc_prefix_beam_search(lp, beam_size=8)
    assert greedy == [3, 1, 1, 2] and beams[0][0] == greedy
    assert len(beams) <= 8
    exact = float(ctc_score_phrases(lp, [greedy])[0])
    assert exact - 0.05 < beams[0][1] <= exact + 1e-6
    wide = ctc_prefix_beam_search(lp, beam_size=2000, prune=-math.inf)
    assert wide[0][0] == greedy and wide[0][1] == pytest.approx(exact, abs=1e-4)


# --------------------------------------------------------------------------- grammar scoring


def test_score_phrases_equals_brute_force_and_ctc_loss():
    lp = random_log_probs(5, 4, seed=3, sharpness=1.0)
    exact = brute_force(lp)
    phrases = [[1], [2, 3], [1, 1], [3, 2, 1], [], [2, 2, 2]]
    scores = ctc_score_phrases(lp, phrases)
    assert scores.shape == (len(phrases),)
    for phrase, score in zip(phrases, scores.tolist()):
        assert score == pytest.approx(exact[tuple(phrase)], abs=1e-4)
    # -ctc_loss, phrase by phrase
    for phrase, score in zip(phrases, scores.tolist()):
        loss = torch.nn.functional.ctc_loss(lp[:, None], torch.tensor([phrase], dtype=torch.long),
                                            torch.tensor([5]), torch.tensor([len(phrase)]), reduction="sum")
        assert score == pytest.approx(-float(loss), abs=1e-5)


def test_score_phrases_ranks_and_rejects_what_cannot_fit():
    # frames spell "1 2" clearly
    ids = [1, 1, 0, 2, 0]
    lp = torch.full((5, 4), math.log(0.02))
    for t, i in enumerate(ids):
        lp[t, i] = math.log(0.94)
    phrases = [[2, 1], [1, 2], [1], [1, 2, 3], [1, 1, 1], [3, 3, 3]]
    scores = ctc_score_phrases(lp, phrases)
    assert int(scores.argmax()) == 1
    assert scores[1] > max(scores[0], scores[2], scores[3]) + 2  # clearly ahead of the near misses
    assert math.isfinite(float(scores[5]))  # 3 _ 3 _ 3: five frames are just enough
    assert float(ctc_score_phrases(lp[:4], [[3, 3, 3]])[0]) == -math.inf  # four are not


def test_score_phrases_impossible_length_is_minus_infinity():
    lp = random_log_probs(3, 3, seed=4)
    scores = ctc_score_phrases(lp, [[1, 1], [1, 2, 1], [1, 2, 1, 2], [1, 1, 1]])
    assert math.isfinite(float(scores[0])) and math.isfinite(float(scores[1]))  # a _ a; a b a
    assert scores[2] == -math.inf and scores[3] == -math.inf  # 4 tokens; a _ a _ a needs 5 frames


# --------------------------------------------------------------------------- grammar files and top-k


def test_load_grammar(tmp_path):
    path = tmp_path / "grammar.txt"
    path.write_text("# commands\n\nturn on the light\n  stop  \n# another comment\ngo left # inline\n\n")
    assert load_grammar(str(path)) == ["turn on the light", "stop", "go left"]


def test_load_grammar_errors(tmp_path):
    with pytest.raises(ValueError, match="no such grammar file"):
        load_grammar(str(tmp_path / "missing.txt"))
    with pytest.raises(ValueError, match="no such grammar file"):
        load_grammar(str(tmp_path))
    empty = tmp_path / "empty.txt"
    empty.write_text("")
    with pytest.raises(ValueError, match="grammar file has no phrases"):
        load_grammar(str(empty))
    comments = tmp_path / "comments.txt"
    comments.write_text("# only\n   \n#comments\n")
    with pytest.raises(ValueError) as err:
        load_grammar(str(comments))
    assert str(err.value) == f"{comments}: grammar file has no phrases"


def test_top_k():
    logits = torch.tensor([[1.0, 3.0, 2.0, 0.0], [0.0, 0.0, 0.0, 5.0]])
    result = top_k(logits, 2)
    probs = torch.softmax(logits, -1)
    assert [i for i, _ in result[0]] == [1, 2] and result[1][0][0] == 3 and len(result[1]) == 2
    assert result[0][0][1] == pytest.approx(float(probs[0, 1])) and result[0][1][1] == pytest.approx(float(probs[0, 2]))
    assert result[1][0] == (3, pytest.approx(float(probs[1, 3])))
    everything = top_k(logits, 10)  # k larger than the number of classes
    assert [len(r) for r in everything] == [4, 4]
    assert sum(p for _, p in everything[0]) == pytest.approx(1.0)
    assert [p for _, p in everything[0]] == sorted((p for _, p in everything[0]), reverse=True)
