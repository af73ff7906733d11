"""``speech.data.dataset``: the decoded-audio cache (memmap reuse, bad files), fixed-length clips,
collation, the bucketing batch sampler (determinism, coverage, DDP shares) and connected digit strings."""
from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf
import torch

from speech.audio import load_audio
from speech.data.dataset import (
    AudioDataset, BucketingBatchSampler, DecodedAudioCache, DigitStringsDataset, collate, fit_to_length,
)
from speech.data.fsdd import DIGIT_WORDS
from speech.data.manifest import Utterance
from speech.text import Vocabulary

torch.set_num_threads(1)

RATE = 16000


def write_wav(path, data, rate=RATE, subtype="PCM_16"):
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), np.asarray(data, dtype=np.float64), rate, subtype=subtype)
    return path


def utt(path, label="x", text=None, speaker=None, offset=0.0, duration=1.0) -> Utterance:
    return Utterance(str(path), duration, label=label, text=text, speaker=speaker, offset=offset)


@pytest.fixture(scope="module")
def fsdd_rows(shared_dataset) -> list[Utterance]:
    """Twelve real FSDD clips: digits 0-5 of two speakers (8 kHz files)."""
    folder = shared_dataset("fsdd") / "recordings"
    rows = []
    for speaker in ("jackson", "nicolas"):
        for digit in range(6):
            path = folder / f"{digit}_{speaker}_3.wav"
            info = sf.info(str(path))
            rows.append(Utterance(str(path), info.frames / info.samplerate, label=DIGIT_WORDS[digit],
                                  text=DIGIT_WORDS[digit], speaker=speaker))
    return rows


# --------------------------------------------------------------------------- decoded audio cache


def test_cache_holds_the_decoded_clips(fsdd_rows):
    cache = DecodedAudioCache(fsdd_rows, RATE)
    assert len(cache) == 12 and cache.kept == list(range(12))
    for i in (0, 5, 11):
        ref = load_audio(fsdd_rows[i].audio_filepath, RATE)
        got = cache[i]
        assert got.dtype == torch.float32 and cache.length(i) == len(ref) == len(got)
        assert float((got - ref.clamp(-1, 1)).abs().max()) <= 1 / 32768 + 1e-6  # int16 storage


def test_cache_dir_is_reused_without_decoding(tmp_path, fsdd_rows, capsys):
    """The second construction maps the cache file written by the first (same samples, no new cache
    file, nothing decoded: the bad files are not reported again); a changed source file makes a new cache."""
    clips = tmp_path / "clips"
    rows = []
    for i, row in enumerate(fsdd_rows[:6]):
        data, rate = sf.read(row.audio_filepath)
        rows.append(utt(write_wav(clips / f"{i}.wav", data, rate), row.label))
    bad_text = tmp_path / "clips" / "bad.wav"
    bad_text.write_text("not audio")
    rows.insert(2, utt(bad_text))
    rows.append(utt(tmp_path / "clips" / "missing.wav"))
    cache_dir = tmp_path / "cache"

    first = DecodedAudioCache(rows, RATE, cache_dir=str(cache_dir))
    err = capsys.readouterr().err.splitlines()
    assert err == [f"skipping {bad_text}: not an audio file (format not recognised)",
                   f"skipping {tmp_path / 'clips' / 'missing.wav'}: no such file"]
    assert first.kept == [0, 1, 3, 4, 5, 6]
    assert isinstance(first.samples, np.memmap)
    assert sorted(p.suffix for p in cache_dir.iterdir()) == [".int16", ".json"]  # no temp files left

    second = DecodedAudioCache(rows, RATE, cache_dir=str(cache_dir))
    assert capsys.readouterr().err == ""
    assert isinstance(second.samples, np.memmap)
    assert len(list(cache_dir.glob("*.int16"))) == 1
    assert second.kept == first.kept and np.array_equal(second.offsets, first.offsets)
    for i in range(len(first)):
        assert torch.equal(second[i], first[i])

    # a source file that changed (size/modification time) is decoded again into a new cache
    data, rate = sf.read(fsdd_rows[7].audio_filepath)
    write_wav(clips / "0.wav", data, rate)
    third = DecodedAudioCache(rows, RATE, cache_dir=str(cache_dir))
    assert len(list(cache_dir.glob("*.int16"))) == 2
    assert abs(third.length(0) - len(data) * RATE / rate) <= 1
    assert capsys.readouterr().err.count("skipping") == 2  # decoded again: the bad files are reported again

    # another clip list or rate is another cache
    other = DecodedAudioCache(rows[:1], 8000, cache_dir=str(cache_dir))
    assert len(other) == 1 and len(list(cache_dir.glob("*.int16"))) == 3


def test_cache_reads_offset_and_duration(tmp_path):
    ramp = np.linspace(-0.5, 0.5, RATE)
    path = write_wav(tmp_path / "ramp.wav", ramp, subtype="FLOAT")
    cache = DecodedAudioCache([utt(path, offset=0.25, duration=0.5), utt(path)], RATE)
    assert cache.length(0) == 8000 and cache.length(1) == RATE
    assert np.allclose(cache[0].numpy(), ramp[4000:12000], atol=1 / 32768 + 1e-6)


@pytest.mark.parametrize("with_cache_dir", [False, True])
def test_no_clip_decodes(tmp_path, capsys, with_cache_dir):
    """Every clip bad: an empty cache (with a cache folder, too: an empty file cannot be memory-mapped)."""
    cache_dir = str(tmp_path / "cache") if with_cache_dir else None
    for _ in range(2):  # the second time from the cache folder
        cache = DecodedAudioCache([utt(tmp_path / "none.wav")], RATE, cache_dir=cache_dir)
        assert len(cache) == 0 and cache.kept == [] and cache.offsets.tolist() == [0]
    assert "skipping" in capsys.readouterr().err


# --------------------------------------------------------------------------- datasets and collation


def test_fit_to_length_centres_and_crops():
    x = torch.arange(1, 6, dtype=torch.float32)
    assert fit_to_length(x, 9).tolist() == [0, 0, 1, 2, 3, 4, 5, 0, 0]
    assert fit_to_length(x, 8).tolist() == [0, 1, 2, 3, 4, 5, 0, 0]
    assert fit_to_length(x, 3).tolist() == [2, 3, 4]
    assert fit_to_length(x, 2).tolist() == [2, 3]
    assert fit_to_length(x, 5) is x


def test_audio_dataset_clip_seconds_centres_every_clip(tmp_path):
    short = write_wav(tmp_path / "short.wav", np.full(4000, 0.25))
    long = write_wav(tmp_path / "long.wav", np.linspace(-0.9, 0.9, 24000), subtype="FLOAT")
    rows = [utt(short, "a"), utt(long, "b")]
    labels = ["a", "b"]
    dataset = AudioDataset(rows, RATE, lambda u: labels.index(u.label), clip_seconds=1.0)
    assert len(dataset) == 2 and dataset.lengths() == [RATE, RATE]
    wave, target = dataset[0]
    assert target == 0 and wave.shape == (RATE,)
    assert torch.all(wave[:6000] == 0) and torch.all(wave[10000:] == 0)
    assert torch.allclose(wave[6000:10000], torch.full((4000,), 0.25), atol=1e-4)
    wave, target = dataset[1]
    full = load_audio(long, RATE)
    assert target == 1 and torch.allclose(wave, full[4000:20000], atol=1 / 32768 + 1e-6)  # the centre second
    # without clip_seconds: natural lengths
    natural = AudioDataset(rows, RATE, lambda u: labels.index(u.label))
    assert natural.lengths() == [4000, 24000] and len(natural[1][0]) == 24000


def test_audio_dataset_skips_bad_rows_and_keeps_targets_aligned(tmp_path, capsys):
    good = [write_wav(tmp_path / f"{i}.wav", np.full(1000 * (i + 1), 0.1)) for i in range(3)]
    rows = [utt(good[0], "zero"), utt(tmp_path / "gone.wav", "bad"), utt(good[1], "one"), utt(good[2], "two")]
    dataset = AudioDataset(rows, RATE, lambda u: ["zero", "one", "two"].index(u.label))
    assert [u.label for u in dataset.utterances] == ["zero", "one", "two"]
    assert [dataset[i][1] for i in range(3)] == [0, 1, 2]
    assert [len(dataset[i][0]) for i in range(3)] == [1000, 2000, 3000]
    assert "gone.wav: no such file" in capsys.readouterr().err


def test_collate_class_targets():
    batch = [(torch.ones(5), 2), (torch.full((3,), 0.5), 0), (torch.ones(7), 1)]
    out = collate(batch)
    assert out["waveform"].shape == (3, 7) and out["lengths"].tolist() == [5, 3, 7]
    assert out["targets"].tolist() == [2, 0, 1] and "target_lengths" not in out
    assert out["waveform"][1].tolist() == [0.5, 0.5, 0.5, 0, 0, 0, 0]
    assert torch.all(out["waveform"][0, 5:] == 0)


def test_collate_token_targets_in_ctc_layout():
    batch = [(torch.ones(4), [3, 1, 4]), (torch.ones(6), [1]), (torch.ones(2), [5, 9])]
    out = collate(batch)
    assert out["waveform"].shape == (3, 6)
    assert out["targets"].tolist() == [3, 1, 4, 1, 5, 9] and out["targets"].dtype == torch.long
    assert out["target_lengths"].tolist() == [3, 1, 2]
    # the layout ctc_loss takes
    log_probs = torch.randn(8, 3, 10).log_softmax(-1)
    loss = torch.nn.functional.ctc_loss(log_probs, out["targets"], torch.full((3,), 8), out["target_lengths"])
    assert torch.isfinite(loss)


# --------------------------------------------------------------------------- bucketing sampler


LENGTHS = [int(x) for x in np.random.default_rng(0).integers(1000, 50000, size=103)]


def batches(sampler: BucketingBatchSampler, epoch: int) -> list[list[int]]:
    sampler.set_epoch(epoch)
    return [list(b) for b in sampler]


def test_sampler_is_deterministic_per_seed_and_epoch():
    a = BucketingBatchSampler(LENGTHS, 8, seed=3, bucket_size=4)
    b = BucketingBatchSampler(LENGTHS, 8, seed=3, bucket_size=4)
    assert batches(a, 0) == batches(b, 0)
    assert batches(a, 5) == batches(b, 5)
    assert batches(a, 1) == batches(a, 1)  # iterating again gives the same
    assert batches(a, 0) != batches(a, 1)  # a new order every epoch
    assert batches(a, 0) != batches(BucketingBatchSampler(LENGTHS, 8, seed=4, bucket_size=4), 0)


@pytest.mark.parametrize("shuffle", [True, False])
def test_sampler_covers_every_index_once(shuffle):
    sampler = BucketingBatchSampler(LENGTHS, 8, shuffle=shuffle, seed=1, bucket_size=4)
    for epoch in range(3):
        got = batches(sampler, epoch)
        assert len(got) == len(sampler) == 13
        flat = [i for b in got for i in b]
        assert sorted(flat) == list(range(len(LENGTHS)))
        assert all(len(b) == 8 for b in got if len(b) != 103 % 8) and sum(len(b) != 8 for b in got) == 1


def test_sampler_groups_similar_lengths():
    """Within a bucket the batches are sorted by length, so padding is far below a random batching's."""
    sampler = BucketingBatchSampler(LENGTHS, 8, seed=0, bucket_size=50)
    got = batches(sampler, 0)
    waste = sum(max(LENGTHS[i] for i in b) * len(b) - sum(LENGTHS[i] for i in b) for b in got)
    rng = np.random.default_rng(1)
    order = rng.permutation(len(LENGTHS)).tolist()
    random_batches = [order[s : s + 8] for s in range(0, len(order), 8)]
    random_waste = sum(max(LENGTHS[i] for i in b) * len(b) - sum(LENGTHS[i] for i in b) for b in random_batches)
    assert waste < 0.3 * random_waste
    ordered = batches(BucketingBatchSampler(LENGTHS, 8, shuffle=False), 0)
    flat = [LENGTHS[i] for b in ordered for i in b]
    assert flat == sorted(LENGTHS)


@pytest.mark.parametrize("n", [103, 96, 5])
def test_sampler_ddp_shares(n):
    lengths = LENGTHS[:n]
    ranks = [BucketingBatchSampler(lengths, 8, seed=2, num_replicas=2, rank=r, bucket_size=4) for r in range(2)]
    for epoch in (0, 1):
        got = [batches(s, epoch) for s in ranks]
        assert len(got[0]) == len(got[1]) == len(ranks[0]) == len(ranks[1])  # the same number of steps
        flat = [i for share in got for b in share for i in b]
        assert set(flat) == set(range(n))  # the union covers everything
        total_batches = -(-n // 8)
        assert len(got[0]) + len(got[1]) == total_batches + total_batches % 2  # at most one batch repeated
        if total_batches % 2 == 0:
            assert sorted(flat) == list(range(n))  # no repeats when the batches split evenly
        # both ranks split the same global order: together they equal the single-process batches
        single = batches(BucketingBatchSampler(lengths, 8, seed=2, bucket_size=4), epoch)
        assert {tuple(b) for share in got for b in share} == {tuple(b) for b in single}


# --------------------------------------------------------------------------- digit strings


@pytest.fixture
def coded_words(tmp_path) -> AudioDataset:
    """Synthetic 'digit' clips whose audio encodes who says what: digit d lasts 1000 + 100*d samples,
    speaker a's clips are positive constants and speaker b's negative."""
    rows = []
    for speaker, sign in (("a", 1.0), ("b", -1.0)):
        for d, word in enumerate(DIGIT_WORDS):
            path = write_wav(tmp_path / f"{d}_{speaker}.wav", np.full(1000 + 100 * d, 0.2 * sign))
            rows.append(utt(path, label=str(d), text=word, speaker=speaker))
    return AudioDataset(rows, RATE, lambda u: 0)


def nonzero_runs(x: torch.Tensor) -> list[tuple[int, float]]:
    """(length, sign) of every run of non-zero samples."""
    nz = (x != 0).int()
    edges = torch.diff(torch.cat([torch.zeros(1, dtype=torch.int), nz, torch.zeros(1, dtype=torch.int)]))
    starts, stops = torch.nonzero(edges == 1).flatten(), torch.nonzero(edges == -1).flatten()
    return [(int(b - a), float(torch.sign(x[a]))) for a, b in zip(starts, stops)]


@pytest.mark.parametrize("unit", ["char", "word"])
def test_digit_strings_text_matches_audio(coded_words, unit):
    vocabulary = Vocabulary.characters() if unit == "char" else Vocabulary.words_from(list(DIGIT_WORDS))
    strings = DigitStringsDataset(coded_words, vocabulary, size=20, seed=7, min_digits=2, max_digits=5)
    counts = strings.lengths()
    for i in range(len(strings)):
        wave, tokens = strings[i]
        text = strings.text(i)
        assert vocabulary.encode(text) == tokens
        words = text.split()
        assert 2 <= len(words) <= 5 and len(words) == counts[i]
        runs = nonzero_runs(wave)
        assert [DIGIT_WORDS[(n - 1000) // 100] for n, _ in runs] == words  # the audio says the text
        assert len({s for _, s in runs}) == 1  # one speaker per string
        gaps = len(wave) - sum(n for n, _ in runs)
        assert (len(words) + 1) * 800 <= gaps <= (len(words) + 1) * 6400  # 50..400 ms gaps at 16 kHz
        levels = [float(wave[wave != 0].abs().max()), float(wave[wave != 0].abs().min())]
        assert 0.2 * 10 ** (-6 / 20) - 1e-3 <= levels[1] <= levels[0] <= 0.2 * 10 ** (6 / 20) + 1e-3


def test_digit_strings_are_a_function_of_seed_epoch_index(coded_words):
    vocabulary = Vocabulary.characters()
    a = DigitStringsDataset(coded_words, vocabulary, size=10, seed=1)
    b = DigitStringsDataset(coded_words, vocabulary, size=10, seed=1)
    for i in (0, 3, 9):
        wa, ta = a[i]
        wb, tb = b[i]
        assert torch.equal(wa, wb) and ta == tb
        assert torch.equal(a[i][0], wa)  # the same item twice
    texts0 = [a.text(i) for i in range(10)]
    a.set_epoch(1)
    texts1 = [a.text(i) for i in range(10)]
    assert texts0 != texts1  # training sees new strings each epoch
    b.set_epoch(1)
    assert texts1 == [b.text(i) for i in range(10)]
    c = DigitStringsDataset(coded_words, vocabulary, size=10, seed=2)
    assert texts0 != [c.text(i) for i in range(10)]
    assert len(a) == 10


def test_digit_strings_from_real_fsdd_clips(fsdd_rows):
    words = AudioDataset(fsdd_rows, RATE, lambda u: 0)
    vocabulary = Vocabulary.characters()
    strings = DigitStringsDataset(words, vocabulary, size=6, seed=0, min_digits=3, max_digits=3)
    again = DigitStringsDataset(words, vocabulary, size=6, seed=0, min_digits=3, max_digits=3)
    assert strings.speakers == ["jackson", "nicolas"] and strings.sample_rate == RATE
    for i in range(6):
        wave, tokens = strings[i]
        assert torch.equal(wave, again[i][0])
        text = strings.text(i)
        assert len(text.split()) == 3 and all(w in DIGIT_WORDS[:6] for w in text.split())
        assert wave.dtype == torch.float32 and 3 * 2000 < len(wave) < 3 * 16000 + 4 * 6400
    batch = collate([strings[i] for i in range(6)])
    assert batch["target_lengths"].tolist() == [len(strings[i][1]) for i in range(6)]
