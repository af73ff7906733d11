"""``speech.data.windows``: stream windows for training, labelled by what the window holds, on real
Speech Commands clips; and one real training run that uses them."""
from __future__ import annotations

import random

import numpy as np
import pytest
import soundfile as sf
import torch

from speech.data.dataset import AudioDataset
from speech.data.manifest import Utterance
from speech.data.streams import active_span
from speech.data.windows import IGNORE, Placed, StreamWindowsDataset, window_label

torch.set_num_threads(1)
LABELS = ["yes", "no", "go", "_unknown_", "_silence_"]
UNKNOWN = LABELS.index("_unknown_")


@pytest.fixture(scope="module")
def clips(shared_dataset) -> AudioDataset:
    """Real 1 s clips: 4 each of yes, no, go and of other words (_unknown_), 2 of _silence_."""
    root = shared_dataset("speech_commands_v2_test_dev")
    rows = []
    for folder, label, n in (("yes", "yes", 4), ("no", "no", 4), ("go", "go", 4), ("_unknown_", "_unknown_", 4),
                             ("_silence_", "_silence_", 2)):
        for path in sorted((root / folder).glob("*.wav"))[:n]:
            rows.append(Utterance(str(path), sf.info(str(path)).duration, label=label, speaker=path.name.split("_")[0]))
    index = {l: i for i, l in enumerate(LABELS)}
    return AudioDataset(rows, 16000, lambda u: index[u.label], clip_seconds=1.0)


def test_window_label_rules():
    yes, no = LABELS.index("yes"), LABELS.index("no")
    assert window_label([Placed(yes, True, 1.0)], UNKNOWN) == yes
    # a whole command wins over cut neighbours and other speech
    assert window_label([Placed(yes, True, 0.95), Placed(no, True, 0.4), Placed(UNKNOWN, False, 1.0)], UNKNOWN) == yes
    assert window_label([Placed(yes, True, 1.0), Placed(no, True, 0.92)], UNKNOWN) == IGNORE  # two commands
    assert window_label([Placed(yes, True, 0.5)], UNKNOWN) == UNKNOWN  # a part of a command is not it
    assert window_label([Placed(yes, True, 0.5)], UNKNOWN, "ignore") == IGNORE
    assert window_label([Placed(yes, True, 0.05), Placed(UNKNOWN, False, 1.0)], UNKNOWN) == UNKNOWN  # a sliver
    assert window_label([Placed(UNKNOWN, False, 0.3)], UNKNOWN) == UNKNOWN


def test_probability_zero_gives_the_plain_clips(clips):
    ds = StreamWindowsDataset(clips, LABELS, probability=0.0)
    for i in range(len(clips)):
        wave, target = ds[i]
        ref_wave, ref_target = clips[i]
        assert target == ref_target and torch.equal(wave, ref_wave)


def test_windows_are_labelled_by_what_they_hold(clips):
    ds = StreamWindowsDataset(clips, LABELS, probability=1.0, partial_share=0.0, neighbours=0.0)
    silence = LABELS.index("_silence_")
    for i in range(len(clips)):
        wave, target = ds[i]
        assert wave.shape == (16000,) and float(wave.abs().max()) <= 1.0
        # alone and whole in the window: the clip's own class (silence clips stay plain)
        assert target == clips.targets[i]
        if clips.targets[i] != silence:
            a, b = active_span(wave.numpy(), 16000)
            assert b - a > 1600  # the spoken part is in the window
    cut = StreamWindowsDataset(clips, LABELS, probability=1.0, partial_share=1.0, neighbours=0.0)
    assert {cut[i][1] for i in range(len(clips)) if clips.targets[i] != silence} == {UNKNOWN}
    ignored = StreamWindowsDataset(clips, LABELS, probability=1.0, partial_share=1.0, neighbours=0.0,
                                   partial_label="ignore")
    commands = [i for i in range(len(clips)) if clips.targets[i] in (0, 1, 2)]
    assert {ignored[i][1] for i in commands} == {IGNORE}


def test_windows_are_deterministic_per_epoch_and_vary_between_epochs(clips):
    ds = StreamWindowsDataset(clips, LABELS, probability=1.0, seed=3)
    first = [ds[i] for i in range(len(clips))]
    again = [ds[i] for i in range(len(clips))]
    assert all(torch.equal(a[0], b[0]) and a[1] == b[1] for a, b in zip(first, again))
    ds.set_epoch(1)
    assert any(not torch.equal(a[0], ds[i][0]) for i, a in enumerate(first))
    # with neighbours the windows hold more than one spoken part, and labels stay in the label set or IGNORE
    labels = {ds[i][1] for i in range(len(clips))}
    assert labels <= set(range(len(LABELS))) | {IGNORE}


def test_stream_windows_need_a_window_and_an_unknown_class(clips):
    plain = AudioDataset([Utterance(clips.utterances[0].audio_filepath, 1.0, label="yes")], 16000, lambda u: 0)
    with pytest.raises(ValueError, match="clip_seconds"):
        StreamWindowsDataset(plain, LABELS, 0.5)
    with pytest.raises(ValueError, match="_unknown_"):
        StreamWindowsDataset(clips, ["yes", "no", "go"], 0.5)
    with pytest.raises(ValueError, match="partial_command"):
        StreamWindowsDataset(clips, LABELS, 0.5, partial_label="maybe")
