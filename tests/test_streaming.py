"""Streaming building blocks: ring buffer, block resampler, RecognizeCommands smoothing, the energy VAD,
the block queue, and true streaming (a unidirectional model chunk by chunk equals the whole clip)."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from speech.audio import resample
from speech.features import FeatureConfig
from speech.models import ModelConfig, SpeechModel
from speech.recognizer import DecodeOptions, Recognizer
from speech.streaming import (
    END, BlockQueue, EnergyVAD, RecognizeCommands, RingBuffer, SmoothingConfig, StreamingModel,
    StreamPipeline, StreamResampler, UtteranceTranscriber, VADConfig, Detection,
)
from speech.bench.streaming import WordEvent, score_detections
from speech.text import CHARACTERS


def chunks(n: int, seed: int, largest: int = 3000):
    """Random chunk boundaries ``[(a, b), ...]`` covering ``range(n)`` (sizes 1..largest)."""
    rng = np.random.default_rng(seed)
    out, a = [], 0
    while a < n:
        b = min(n, a + int(rng.integers(1, largest)))
        out.append((a, b))
        a = b
    return out


# ------------------------------------------------------------------------------------- RingBuffer
def test_ring_buffer_reads_by_absolute_index_with_zeros_before_the_start():
    ring = RingBuffer(10)
    data = np.arange(1, 26, dtype=np.float32)
    for a, b in [(0, 3), (3, 4), (4, 17), (17, 25)]:
        ring.write(data[a:b])
    assert ring.total == 25
    np.testing.assert_array_equal(ring.read(15, 25), data[15:25])
    np.testing.assert_array_equal(ring.latest(4), data[21:25])
    with pytest.raises(IndexError):
        ring.read(14, 20)  # overwritten
    with pytest.raises(IndexError):
        ring.read(20, 26)  # not written yet
    fresh = RingBuffer(8)
    fresh.write(np.ones(3, np.float32))
    np.testing.assert_array_equal(fresh.read(-2, 3), [0, 0, 1, 1, 1])


# -------------------------------------------------------------------------------- StreamResampler
@pytest.mark.parametrize("orig,new", [(44100, 16000), (48000, 16000), (8000, 16000), (16000, 16000)])
def test_stream_resampler_equals_whole_signal_resampling(orig, new):
    x = torch.randn(int(orig * 1.3) + 7) * 0.3
    expected = resample(x, orig, new).numpy()
    r = StreamResampler(orig, new)
    pieces = [r.process(x[a:b].numpy()) for a, b in chunks(len(x), seed=orig)]
    got = np.concatenate(pieces + [r.flush()])
    assert len(got) == len(expected)
    np.testing.assert_allclose(got, expected, atol=1e-4)


# ------------------------------------------------------------------------------ RecognizeCommands
LABELS = ["yes", "no", "_silence_", "_unknown_"]


def one_hot(label: str, p: float = 0.9) -> np.ndarray:
    v = np.full(len(LABELS), (1 - p) / (len(LABELS) - 1))
    v[LABELS.index(label)] = p
    return v


def feed(smoother: RecognizeCommands, sequence: list[str], hop: float = 0.1, start: float = 0.0):
    hits = []
    for i, label in enumerate(sequence):
        t = start + (i + 1) * hop
        hit = smoother.process(t, one_hot(label))
        if hit:
            hits.append((round(t, 2), hit[0]))
    return hits


def test_recognize_commands_fires_once_per_word_and_never_for_silence_or_unknown():
    smoother = RecognizeCommands(LABELS, SmoothingConfig(average_window_ms=300, detection_threshold=0.6,
                                                         suppression_ms=500, minimum_count=3))
    seq = ["_silence_"] * 10 + ["yes"] * 8 + ["_silence_"] * 10 + ["_unknown_"] * 10 + ["no"] * 6 + ["_silence_"] * 5
    hits = feed(smoother, seq)
    assert [label for _, label in hits] == ["yes", "no"]
    # "yes" needs its average over the 300 ms window (3 hops) to pass 0.6: the 2nd "yes" window at 1.2 s
    assert hits[0][0] == pytest.approx(1.2)


def test_recognize_commands_repeats_a_word_only_after_it_faded_and_the_suppression_time():
    cfg = SmoothingConfig(average_window_ms=300, detection_threshold=0.6, suppression_ms=1000, minimum_count=3)
    smoother = RecognizeCommands(LABELS, cfg)
    # "yes yes" with a short gap: the second one is inside the suppression time -> one detection
    assert [label for _, label in feed(smoother, ["yes"] * 4 + ["_silence_"] * 3 + ["yes"] * 4)] == ["yes"]
    # the same word held for 3 s fires once (it never faded)
    smoother = RecognizeCommands(LABELS, cfg)
    assert len(feed(smoother, ["yes"] * 30)) == 1
    # after fading and past the suppression time it fires again
    smoother = RecognizeCommands(LABELS, cfg)
    assert [label for _, label in feed(smoother, ["yes"] * 4 + ["_silence_"] * 12 + ["yes"] * 4)] == ["yes", "yes"]


def test_recognize_commands_needs_the_minimum_count_and_the_threshold():
    smoother = RecognizeCommands(LABELS, SmoothingConfig(average_window_ms=1000, detection_threshold=0.6,
                                                         suppression_ms=0, minimum_count=5))
    assert feed(smoother, ["yes"] * 4) == []  # only 4 windows so far
    assert [label for _, label in feed(smoother, ["yes"], start=0.4)] == ["yes"]
    low = RecognizeCommands(LABELS, SmoothingConfig(detection_threshold=0.95, minimum_count=1))
    assert feed(low, ["yes"] * 10) == []  # 0.9 < 0.95


# ------------------------------------------------------------------------------------- EnergyVAD
def bursts(rate: int, spans: list[tuple[float, float]], seconds: float, noise_db: float = -55.0,
           seed: int = 0, noise_ramp: tuple[float, float] | None = None) -> np.ndarray:
    """Noise at ``noise_db`` with 300 Hz tone bursts (-20 dBFS) over ``spans`` (seconds)."""
    rng = np.random.default_rng(seed)
    n = int(seconds * rate)
    noise = rng.standard_normal(n) * 10 ** (noise_db / 20)
    if noise_ramp is not None:  # noise level steps up at noise_ramp[0] s to noise_ramp[1] dBFS
        k = int(noise_ramp[0] * rate)
        noise[k:] *= 10 ** ((noise_ramp[1] - noise_db) / 20)
    t = np.arange(n) / rate
    for a, b in spans:
        m = (t >= a) & (t < b)
        noise[m] += 0.1 * np.sqrt(2) * np.sin(2 * np.pi * 300 * t[m])
    return noise.astype(np.float32)


def run_vad(vad: EnergyVAD, audio: np.ndarray, rate: int) -> list[tuple[float, float]]:
    events = []
    for a, b in chunks(len(audio), seed=3, largest=1000):
        events += vad.process(audio[a:b])
    events += vad.flush()
    starts = [s / rate for kind, s in events if kind == "start"]
    ends = [s / rate for kind, s in events if kind == "end"]
    return list(zip(starts, ends))


def test_energy_vad_finds_utterances_with_hangover():
    rate = 16000
    # two bursts 0.15 s apart are one utterance (hangover 0.3 s); the third is separate
    audio = bursts(rate, [(1.0, 1.4), (1.55, 1.9), (3.0, 3.5)], 5.0)
    found = run_vad(EnergyVAD(rate, VADConfig(hangover_ms=300)), audio, rate)
    assert len(found) == 2
    (s1, e1), (s2, e2) = found
    assert s1 == pytest.approx(1.0, abs=0.03) and e1 == pytest.approx(1.9 + 0.3, abs=0.05)
    assert s2 == pytest.approx(3.0, abs=0.03) and e2 == pytest.approx(3.5 + 0.3, abs=0.05)


def test_energy_vad_noise_floor_adapts_to_louder_noise():
    rate = 16000
    # the noise steps up by 25 dB at 1 s and stays: at most one (forced-short) utterance, then the
    # floor has caught up and a burst above the new noise is still found
    audio = bursts(rate, [(12.0, 12.5)], 14.0, noise_db=-60, noise_ramp=(1.0, -35.0))
    found = run_vad(EnergyVAD(rate, VADConfig(max_utterance_s=8.0)), audio, rate)
    assert len(found) <= 2
    assert found[-1][0] == pytest.approx(12.0, abs=0.05)


def test_energy_vad_ignores_clicks_blips_and_silence():
    rate = 16000
    audio = bursts(rate, [(1.0, 1.03)], 3.0)  # 30 ms click, shorter than min_speech_ms
    assert run_vad(EnergyVAD(rate, VADConfig(min_speech_ms=60)), audio, rate) == []
    blip = bursts(rate, [(1.0, 1.1)], 3.0)  # 100 ms: starts, then is cancelled (min_utterance_ms 150)
    vad = EnergyVAD(rate, VADConfig(min_speech_ms=60, min_utterance_ms=150))
    assert [kind for kind, _ in vad.process(blip)] == ["start", "cancel"]
    assert run_vad(EnergyVAD(rate), np.zeros(rate * 2, np.float32), rate) == []


# ------------------------------------------------------------------------------------- BlockQueue
class Flags:
    input_overflow = True

    def __bool__(self):
        return True


def test_block_queue_callback_never_blocks_and_counts_overflows_and_drops():
    q = BlockQueue(max_blocks=2)
    block = np.zeros((160, 1), np.float32)
    for _ in range(5):
        q.callback(block, 160, None, None)
    q.callback(block, 160, None, Flags())
    assert q.dropped == 4 and q.overflows == 1
    q.close("device gone")  # room is made for the end marker
    got = [q.get(0.1) for _ in range(2)]
    assert got[-1] is END and q.error == "device gone"


# ------------------------------------------------------------------------------- true streaming
def random_model(head: str, subsampling: str = "stack", factor: int = 2, seed: int = 0) -> SpeechModel:
    torch.manual_seed(seed)
    labels = CHARACTERS if head == "ctc" else ["yes", "no", "_silence_", "_unknown_"]
    model = SpeechModel(
        ModelConfig(head=head, hidden_size=24, num_layers=2, bidirectional=False, subsampling=subsampling,
                    subsampling_factor=factor, dropout=0.0),
        FeatureConfig(n_mels=20), labels).eval()
    model.front_end.set_statistics(torch.randn(20) * 3 - 40, torch.rand(20) * 5 + 5)
    return model


@pytest.mark.parametrize("subsampling,factor", [("stack", 2), ("conv", 3), ("conv2d", 2), ("none", 1)])
def test_streaming_ctc_outputs_equal_whole_clip_outputs(subsampling, factor):
    model = random_model("ctc", subsampling, factor)
    x = torch.randn(16000 + 1234) * 0.1
    with torch.no_grad():
        whole, lengths = model(x[None], torch.tensor([len(x)]))
    stream = StreamingModel(model)
    outs = [stream.push(x[a:b].numpy()) for a, b in chunks(len(x), seed=factor)]
    outs.append(stream.finish())
    got = torch.cat(outs)
    assert got.shape == whole[0].shape == (int(lengths[0]), len(CHARACTERS) + 1)
    torch.testing.assert_close(got, whole[0], atol=1e-5, rtol=1e-5)
    # reset() starts a new stream: one push of everything gives the same again
    stream.reset()
    again = torch.cat([stream.push(x.numpy()), stream.finish()])
    torch.testing.assert_close(again, whole[0], atol=1e-5, rtol=1e-5)


def test_streaming_classifier_pools_like_the_whole_clip():
    model = random_model("classification")
    x = torch.randn(12000) * 0.1
    with torch.no_grad():
        whole, _ = model(x[None], torch.tensor([len(x)]))
    stream = StreamingModel(model)
    for a, b in chunks(len(x), seed=7):
        stream.push(x[a:b].numpy())
    torch.testing.assert_close(stream.finish(), whole[0], atol=1e-5, rtol=1e-5)


def test_streaming_refuses_bidirectional_models():
    model = SpeechModel(ModelConfig(hidden_size=8, num_layers=1), FeatureConfig(n_mels=20), ["a", "b"])
    with pytest.raises(ValueError, match="bidirectional=false"):
        StreamingModel(model)


def test_streaming_transcriber_decodes_like_the_whole_utterance():
    """The CTC stage with ``streaming=True`` (GRU run as audio arrives) gives the same answers and scores
    as decoding each whole utterance."""
    recognizer = Recognizer(random_model("ctc", seed=1))
    options = DecodeOptions(top_k=1, grammar=["yes", "no", "up", "down"])
    audio = bursts(16000, [(0.5, 0.9), (2.0, 2.6)], 3.5)

    def run(streaming: bool):
        pipeline = StreamPipeline(UtteranceTranscriber(recognizer, options, streaming=streaming), 16000, 16000)
        found = []
        for a, b in chunks(len(audio), seed=5, largest=1600):
            found += pipeline.push(audio[a:b])
        return found + pipeline.finish()

    whole, streamed = run(False), run(True)
    assert len(whole) == 2
    assert [(d.label, d.start, d.end) for d in streamed] == [(d.label, d.start, d.end) for d in whole]
    np.testing.assert_allclose([d.score for d in streamed], [d.score for d in whole], atol=1e-4)


# ---------------------------------------------------------------------------------------- scoring
def test_score_detections_matches_each_word_once_within_the_tolerance():
    events = [WordEvent("yes", 1.0, 1.5), WordEvent("no", 4.0, 4.4)]
    dets = [Detection(1.7, "yes", 0.9, 0, 0), Detection(1.9, "yes", 0.8, 0, 0),  # the 2nd is a false accept
            Detection(4.3, "yes", 0.7, 0, 0), Detection(6.5, "no", 0.9, 0, 0)]  # wrong label; too late
    hits, false, latencies = score_detections(dets, events, tolerance=1.5)
    assert (hits, false) == (1, 3)
    assert latencies == [pytest.approx(0.2)]


def word_stream(shared_dataset, gaps: tuple[float, ...] = (2.5,), words: tuple[str, ...] = ("yes", "stop", "left"),
                per_word: int = 2, seed: int = 3) -> np.ndarray:
    """Real words of the shared Speech Commands clips (``per_word`` speakers each, in turn) with the pauses
    ``gaps`` (seconds, cycled) before each, in a room's quiet noise, 16 kHz ``(samples,)``."""
    from speech.audio import load_audio

    rng = np.random.default_rng(seed)
    folder = shared_dataset("speech_commands_v2_test_dev")
    clips = [load_audio(p, 16000).numpy() for w in words for p in sorted((folder / w).glob("*.wav"))[:per_word]]
    parts = []
    for i, clip in enumerate(clips):
        parts += [np.zeros(int(gaps[i % len(gaps)] * 16000), np.float32), clip]
    audio = np.concatenate(parts + [np.zeros(40000, np.float32)])
    return audio + 0.003 * rng.standard_normal(len(audio)).astype(np.float32)  # a room's noise under everything


def spot(recognizer, audio: np.ndarray, blocks, **spotter) -> tuple[list[tuple[str, float]], object, list[float]]:
    """Detections ``[(label, time)]`` of a :class:`CommandSpotter` fed ``audio`` in ``blocks`` ``[(a, b)]``, the
    spotter, and the times of the hops its smoother saw, in the order it saw them."""
    from speech.streaming import CommandSpotter

    class Seen(RecognizeCommands):
        """The spotter's smoothing, keeping the times it is given."""

        def __init__(self, *args):
            super().__init__(*args)
            self.times: list[float] = []

        def process(self, time_s, probabilities):
            self.times.append(time_s)
            return super().process(time_s, probabilities)

    spotter = CommandSpotter(recognizer, 0.1, SmoothingConfig(), **spotter)
    spotter.smoother = Seen(recognizer.labels, spotter.smoother.config)
    pipeline = StreamPipeline(spotter, 16000, 16000)
    found = [d for a, b in blocks for d in pipeline.push(audio[a:b])] + pipeline.finish()
    return [(d.label, round(d.time, 1)) for d in found], spotter, spotter.smoother.times


def test_energy_gate_skips_quiet_windows_and_changes_no_detection(shared_dataset):
    """The command spotter's gate: on a real stream (real words of unseen speakers in quiet noise with
    pauses, the bundled model) the model is skipped on the windows that hold nothing to hear, and the
    detections are those of the ungated spotter (the smoothing may move one by a hop)."""
    audio = word_stream(shared_dataset)
    recognizer = Recognizer("commands")
    blocks = [(a, a + 800) for a in range(0, len(audio), 800)]
    results = {gate: spot(recognizer, audio, blocks, gate_db=gate, skipping="off") for gate in (None, 10.0)}
    ungated, gated = results[None][1], results[10.0][1]
    assert ungated.gated == 0 and ungated.compute.calls == len(audio) // 1600
    assert gated.gated > 0.3 * ungated.compute.calls  # a third of the windows or more hold only the quiet noise
    assert gated.gated + gated.compute.calls == ungated.compute.calls
    plain, with_gate = results[None][0], results[10.0][0]
    assert len(plain) >= 4 and [label for label, _ in with_gate] == [label for label, _ in plain]
    assert all(abs(a - b) <= 0.15 for (_, a), (_, b) in zip(with_gate, plain))  # at most a hop apart
    # the gate's frame levels are kept as the audio comes: any block sizes give the same decisions
    odd = spot(recognizer, audio, chunks(len(audio), seed=5, largest=5000), gate_db=10.0, skipping="off")
    assert odd[0] == with_gate and odd[1].gated == gated.gated


def test_hop_skipping_gives_the_detections_of_every_hop_with_fewer_model_calls(shared_dataset):
    """Hop skipping on a real stream (the bundled model; pauses of 0.5-2.5 s, so some words follow each
    other closely and a command repeats within 1.5 s): ``quiet`` and ``suppressed`` give exactly the
    detections of scoring every hop the gate lets through, with fewer model calls; every hop reaches the
    smoother once, in order, and is scored, gated or held."""
    audio = word_stream(shared_dataset, gaps=(2.5, 0.5, 1.0, 2.0), words=("yes", "yes", "stop", "left", "no"), per_word=2)
    recognizer = Recognizer("commands")
    blocks = [(a, a + 800) for a in range(0, len(audio), 800)]
    hops = len(audio) // 1600
    every, every_spotter, _ = spot(recognizer, audio, blocks, gate_db=10.0, skipping="off")
    labels = [label for label, _ in every]
    assert len(every) >= 6 and any(a == b for a, b in zip(labels, labels[1:]))  # a repeated command fires twice
    calls = {}
    for mode in ("quiet", "suppressed"):
        found, spotter, seen = spot(recognizer, audio, blocks, gate_db=10.0, skipping=mode)
        assert found == every, mode
        assert seen == sorted(seen) and len(seen) == len(set(seen)) == hops
        assert spotter.scored + spotter.gated + spotter.held == hops and spotter.held > 0
        assert spotter.compute.calls == spotter.scored and spotter.compute.cpu_seconds > 0
        calls[mode] = spotter.compute.calls
    assert calls["suppressed"] < calls["quiet"] < every_spotter.compute.calls
    with pytest.raises(ValueError, match="hop skipping"):
        spot(recognizer, audio[:1600], [(0, 1600)], skipping="sometimes")


def test_live_threshold_is_the_option_else_the_operating_point_else_the_default():
    """The threshold every live entry point (``Model.stream``, both benchmarks) uses."""
    from speech.streaming import SmoothingConfig, live_threshold

    assert live_threshold({"threshold": 0.75}, 0.6) == 0.6
    assert live_threshold({"threshold": 0.75}) == 0.75
    assert live_threshold({}) == SmoothingConfig.detection_threshold == 0.5
    assert live_threshold({"threshold": 0.0}) == 0.5  # a point of 0 means none
