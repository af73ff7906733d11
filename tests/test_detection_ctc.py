"""The rejection of out-of-grammar speech (``DecodeOptions.reject``, ``speech listen --reject``) and the
detection benchmark of a CTC model's live path (``speech bench detection --model commands-ctc``).

Real clips from the shared data (commands of speakers the bundled models never trained on, FSDD digits,
``_unknown_`` words) and the bundled ``commands-ctc`` model in PyTorch, one thread.
"""
from __future__ import annotations

import itertools
import json
import math

import pytest
import torch

from speech.bench import detection_ctc
from speech.bench.detection_ctc import Utterance
from speech.bench.measure import COMMANDS
from speech.data.streams import Clip, StreamEvent, build_stream
from speech.decode import ctc_phrase_probability, ctc_score_phrases
from speech.recognizer import DecodeOptions
from conftest import bundled_recognizer, run_speech

torch.set_num_threads(1)
RATE = 16000
# commands of unseen speakers (105a0eea, 1acc97de: DEV and TEST halves) the model gets right
COMMAND_CLIPS = ["yes/105a0eea_nohash_0", "no/1acc97de_nohash_0", "go/1acc97de_nohash_0", "up/1acc97de_nohash_1",
                 "on/105a0eea_nohash_0"]
# other speech the forced choice of the grammar turns into a command: _unknown_ words and FSDD digits
OTHER_CLIPS = ["_unknown_/bed_0ea0e2f4_nohash_1", "_unknown_/cat_105a0eea_nohash_0", "_unknown_/eight_67961766_nohash_0",
               "fsdd:1_theo_0", "fsdd:9_theo_0"]


@pytest.fixture(scope="module")
def ctc():
    return bundled_recognizer("commands-ctc")


@pytest.fixture(scope="module")
def clips(shared_dataset) -> dict[str, list[Clip]]:
    from speech.audio import load_audio

    v2, fsdd = shared_dataset("speech_commands_v2_test_dev"), shared_dataset("fsdd") / "recordings"
    out = {"commands": [], "other": []}
    for name in COMMAND_CLIPS:
        word, stem = name.split("/")
        out["commands"].append(Clip(load_audio(v2 / word / f"{stem}.wav", RATE).numpy(), word, True, stem[:8], "sc_v2_commands"))
    for name in OTHER_CLIPS:
        path = fsdd / f"{name[5:]}.wav" if name.startswith("fsdd:") else v2 / f"{name}.wav"
        word = path.stem.split("_")[0]
        out["other"].append(Clip(load_audio(path, RATE).numpy(), word, False, "x", "fsdd" if name.startswith("fsdd:") else "sc_v2_unknown"))
    return out


# ------------------------------------------------------------------------------------------ the score
def test_phrase_probability_is_the_phrase_share_of_every_sequence():
    """Brute force over every alignment of 4 frames and 2 tokens: exp(CTC log-likelihood) of each label
    sequence is the sum of its paths' probabilities, and the sequences' probabilities add up to 1."""
    log_probs = torch.log_softmax(torch.randn(4, 3, generator=torch.Generator().manual_seed(0)), -1)
    totals: dict[tuple, float] = {}
    for path in itertools.product(range(3), repeat=4):
        labels = tuple(k for k, _ in itertools.groupby(path) if k != 0)
        totals[labels] = totals.get(labels, 0.0) + math.exp(sum(float(log_probs[t, k]) for t, k in enumerate(path)))
    sequences = [list(s) for s in totals if s]
    probability = [ctc_phrase_probability(x) for x in ctc_score_phrases(log_probs, sequences)]
    assert probability == pytest.approx([totals[tuple(s)] for s in sequences], rel=1e-4)
    assert sum(totals.values()) == pytest.approx(1.0)
    assert ctc_phrase_probability(float("-inf")) == 0.0 and ctc_phrase_probability(0.0) == 1.0


def test_rejection_ranks_commands_above_other_speech_that_the_grammar_forces(ctc, clips):
    from speech.live import DEFAULT_REJECT as LISTEN_DEFAULT
    from speech.streaming import DEFAULT_REJECT

    assert LISTEN_DEFAULT == DEFAULT_REJECT  # written twice (speech.live must not import torch)

    waves = [torch.from_numpy(c.audio) for c in clips["commands"] + clips["other"]]
    forced = ctc.recognize(waves, DecodeOptions(top_k=3, grammar=list(COMMANDS)))
    scored = ctc.recognize(waves, DecodeOptions(top_k=3, grammar=list(COMMANDS), reject=DEFAULT_REJECT))
    n = len(clips["commands"])
    # without a rejection (as before): every clip is a command, the other speech with most of the posterior
    assert [r.text for r in forced[:n]] == [c.word for c in clips["commands"]]
    assert all(r.text in COMMANDS and r.score > 0.5 and r.confidence is None for r in forced[n:])
    # with it: the same answers and posteriors, and the probability tells the two apart
    for f, s in zip(forced, scored):
        assert s.score == f.score and s.alternatives == f.alternatives and 0.0 <= s.confidence <= 1.0
    assert min(r.confidence for r in scored[:n]) > max(r.confidence for r in scored[n:])
    assert [r.text for r in scored[:n]] == [c.word for c in clips["commands"]]
    assert [r.text for r in scored[n:]] == ["_unknown_"] * len(clips["other"])


# ------------------------------------------------------------------------------------------ the live path and its sweep
def event(start, end, word, is_command, source="sc_v2_commands"):
    return StreamEvent(start, end, word, is_command, "s", source, 0, start, 1.0, 10.0)


def test_accepted_and_sweep_follow_the_rejection():
    utterances = [Utterance(1.0, 1.6, "yes", 0.9, 1.0), Utterance(3.0, 3.5, "on", 0.1, 0.99),
                  Utterance(5.0, 5.6, "no", 0.4, 0.97), Utterance(7.0, 7.4, "go", 0.0, 0.6)]
    events = [event(1.1, 1.3, "yes", True), event(3.1, 3.3, "one", False, "fsdd"), event(5.1, 5.3, "no", True),
              event(7.1, 7.2, "cat", False, "sc_v2_unknown")]
    assert [f.label for f in detection_ctc.accepted(utterances, 0.0)] == ["yes", "on", "no", "go"]
    assert [f.label for f in detection_ctc.accepted(utterances, 0.35)] == ["yes", "no"]
    assert detection_ctc.accepted(utterances, 0.35)[0].time == 1.6  # at the utterance's end
    rows = detection_ctc.sweep_rejection(utterances, events, 9.0, [0.0, 0.35, 0.95])
    assert [(r["threshold"], r["hits"], r["false_accepts_on_speech"]) for r in rows] == [(0.0, 2, 2), (0.35, 2, 0), (0.95, 0, 0)]
    assert rows[0]["latencies"] == [pytest.approx(0.3), pytest.approx(0.3)]


def test_live_path_on_a_real_stream_rejects_other_speech_and_replays_exactly(ctc, clips, shared_dataset):
    """The ten clips in pink noise (a steady floor: this is about the rejection, not the gate) through the
    pipeline of speech listen: the forced choice fires on the other speech, the default rejection keeps
    its hits and drops those false accepts, and the run's detections are its replay."""
    from speech.audio import load_audio
    from speech.bench.detection import score_stream
    from speech.streaming import DEFAULT_REJECT

    noise = [load_audio(shared_dataset("background_noise") / "pink_noise.wav", RATE, max_duration=None).numpy()]
    audio, events = build_stream(clips["commands"] + clips["other"], noise, sample_rate=RATE, seed=4, snr_db=20.0,
                                 gap=(1.0, 1.5))
    run = detection_ctc.stream_utterances(ctc, audio, list(COMMANDS), DEFAULT_REJECT)
    assert len(run.utterances) >= 6 and run.model_calls == len(run.utterances)
    assert all(u.text in COMMANDS and 0.0 <= u.confidence <= 1.0 for u in run.utterances)
    assert run.detections == detection_ctc.accepted(run.utterances, DEFAULT_REJECT)  # the run is its replay
    seconds = len(audio) / RATE
    forced = score_stream(detection_ctc.accepted(run.utterances, 0.0), events, seconds)
    rejecting = score_stream(run.detections, events, seconds)
    assert forced["false_accepts_on_speech"] >= 3 and rejecting["false_accepts_on_speech"] == 0
    assert rejecting["hits"] == forced["hits"] >= 3 and all(0 <= x <= 1.0 for x in rejecting["latencies"])


def test_the_ctc_benchmark_scores_the_classifier_s_commands():
    """With the default grammar the commands (and so every stream) are the classifier's: its labels but
    _silence_ / _unknown_ are the ten commands."""
    from speech.checkpoint import ModelFileError
    from speech.streaming import NEVER_FIRE
    from speech.transcribe import load_recognizer

    try:
        classifier = load_recognizer("commands", "cpu", engine="torch", threads=1)
    except ModelFileError as err:
        pytest.skip(str(err))
    assert set(classifier.labels) - set(NEVER_FIRE) == set(COMMANDS)


# ------------------------------------------------------------------------------------------ command line
def test_ctc_detection_benchmark_command_line_smoke(tmp_path, capsys, shared_data, ctc):
    argv = ["bench", "detection", "--model", "commands-ctc", "--engine", "torch", "--minutes", 0.5, "--halves", "dev",
            "--thresholds", 0, 0.5, "--cache", tmp_path / "cache", "--out", tmp_path / "det.json", "--out", tmp_path / "det.md"]
    rc, out, err = run_speech(capsys, *argv)
    assert rc == 0, err
    assert "| DEV, real speech |" in out and "by rejection" in out and "| 0.35 * |" in out
    report = json.loads((tmp_path / "det.json").read_text())
    (stream,) = report["streams"]
    assert [r["threshold"] for r in stream["sweep"]] == [0.0, 0.35, 0.5] and report["config"]["reject"] == 0.35
    assert report["config"]["grammar"] == list(COMMANDS) and report["checks"]["replay_equals_direct_run"] is True
    assert stream["sweep"][0]["false_accepts_on_speech"] >= stream["sweep"][1]["false_accepts_on_speech"]
    assert stream["sweep"][0]["hits"] >= stream["sweep"][1]["hits"] >= stream["sweep"][2]["hits"]
    rc, out2, err = run_speech(capsys, *argv)  # again: the utterances come from the cache
    assert rc == 0, err
    again = json.loads((tmp_path / "det.json").read_text())
    assert again["streams"][0]["cached"] and again["streams"][0]["sweep"] == stream["sweep"]
    for bad, word in ((["--reject", 1.0], "--reject"), (["--thresholds", -0.1], "--thresholds")):
        rc, _, err = run_speech(capsys, "bench", "detection", "--model", "commands-ctc", *bad)
        assert rc == 2 and word in err and len(err.strip().splitlines()) == 1
    rc, _, err = run_speech(capsys, "bench", "detection", "--model", "commands", "--grammar", tmp_path / "g.txt")
    assert rc == 2 and "CTC" in err and len(err.strip().splitlines()) == 1
    # two stream seeds: one report, its counts the sums of the two runs (seed 0's from the cache above)
    rc, out, err = run_speech(capsys, *argv[:-4], "--seed", 0, 1, "--out", tmp_path / "pooled.json")
    assert rc == 0, err
    assert "stream seeds 0 1, pooled" in out and "| - seed 1 |" in out
    (pooled,) = json.loads((tmp_path / "pooled.json").read_text())["streams"]
    assert [s["seed"] for s in pooled["seeds"]] == [0, 1]
    assert [{k: r[k] for k in ("hits", "false_accepts_on_speech")} for r in pooled["seeds"][0]["sweep"]] == \
        [{k: r[k] for k in ("hits", "false_accepts_on_speech")} for r in stream["sweep"]]
    for i, row in enumerate(pooled["sweep"]):
        assert row["hits"] == sum(s["sweep"][i]["hits"] for s in pooled["seeds"])
        assert row["commands"] == sum(s["sweep"][i]["commands"] for s in pooled["seeds"])
    assert pooled["utterances"] >= stream["utterances"]
