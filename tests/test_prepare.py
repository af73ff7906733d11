"""``speech prepare``: FSDD, Speech Commands (real shared data and a small built fixture), own folders,
and the download/extraction helpers (on local files only; no test downloads anything)."""
from __future__ import annotations

import hashlib
import io
import json
import random
import re
import tarfile
import zipfile
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from speech.cli import main
from speech.data import fsdd, speech_commands
from speech.data.manifest import SPLITS, read_manifest
from speech.data.prepare import PrepareError, download, extract_archive

COMMANDS_12 = set(speech_commands.COMMANDS) | {"_silence_", "_unknown_"}


def prepare(*argv: str) -> int:
    return main(["prepare", *map(str, argv)])


def read_splits(out: Path) -> dict:
    return {split: read_manifest(out / f"{split}.jsonl") for split in SPLITS}


def write_wav(path: Path, seconds: float = 0.25, rate: int = 16000, seed: int = 0) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * rate)) / rate
    sf.write(path, 0.3 * np.sin(2 * np.pi * 440 * t) + 0.01 * rng.standard_normal(len(t)), rate, subtype="PCM_16")
    return path


def total_row(stdout: str) -> list[int]:
    """The counts of the table's ``total`` row (train, valid, test)."""
    line = next(line for line in stdout.splitlines() if line.startswith("total "))
    return [int(n) for n in line.split()[1:]]


# --------------------------------------------------------------------------- FSDD (real data)


@pytest.fixture(scope="module")
def fsdd_root(shared_dataset):
    return shared_dataset("fsdd")


def test_fsdd_default_split_holds_out_theo_with_seeded_valid(fsdd_root, tmp_path, capsys):
    assert prepare("fsdd", "--root", fsdd_root, "--out", tmp_path / "a") == 0
    stdout = capsys.readouterr().out
    splits = read_splits(tmp_path / "a")
    assert {u.speaker for u in splits["test"]} == {"theo"}
    assert len(splits["test"]) == 500
    others = {u.speaker for u in splits["train"] + splits["valid"]}
    assert others == {"jackson", "lucas", "nicolas", "yweweler"}
    # 10 % of each (speaker, digit) group of 50 takes: 5 x 10 digits x 4 speakers
    assert len(splits["valid"]) == 200 and len(splits["train"]) == 1800
    assert total_row(stdout) == [1800, 200, 500]
    rows = [u for split in splits.values() for u in split]
    assert {u.label for u in rows} == set(fsdd.DIGIT_WORDS)
    assert all(u.text == u.label for u in rows)
    first = splits["test"][0]
    assert Path(first.audio_filepath).is_absolute() and Path(first.audio_filepath).is_file()
    info = sf.info(first.audio_filepath)
    assert first.duration == pytest.approx(info.frames / info.samplerate)
    assert first.label == fsdd.DIGIT_WORDS[int(Path(first.audio_filepath).name[0])]

    # the valid sample is seeded: same seed, same files; another seed, other files
    assert prepare("fsdd", "--root", fsdd_root, "--out", tmp_path / "b") == 0
    assert prepare("fsdd", "--root", fsdd_root, "--out", tmp_path / "c", "--seed", "1") == 0
    valid_of = lambda out: [u.audio_filepath for u in read_manifest(out / "valid.jsonl")]  # noqa: E731
    assert valid_of(tmp_path / "a") == valid_of(tmp_path / "b")
    assert valid_of(tmp_path / "a") != valid_of(tmp_path / "c")


def test_fsdd_valid_speaker(fsdd_root, tmp_path):
    assert prepare("fsdd", "--root", fsdd_root, "--out", tmp_path, "--holdout-speaker", "jackson",
                   "--valid-speaker", "lucas") == 0
    splits = read_splits(tmp_path)
    assert {u.speaker for u in splits["test"]} == {"jackson"}
    assert {u.speaker for u in splits["valid"]} == {"lucas"}
    assert {u.speaker for u in splits["train"]} == {"nicolas", "theo", "yweweler"}


def test_fsdd_loso_writes_one_fold_per_speaker(fsdd_root, tmp_path, capsys):
    assert prepare("fsdd", "--root", fsdd_root, "--out", tmp_path, "--split", "loso") == 0
    folds = sorted(p.name for p in tmp_path.iterdir())
    assert folds == ["fold_jackson", "fold_lucas", "fold_nicolas", "fold_theo", "fold_yweweler"]
    for fold in folds:
        splits = read_splits(tmp_path / fold)
        speaker = fold.removeprefix("fold_")
        assert {u.speaker for u in splits["test"]} == {speaker}
        assert speaker not in {u.speaker for u in splits["train"] + splits["valid"]}
        assert (len(splits["train"]), len(splits["valid"]), len(splits["test"])) == (1800, 200, 500)
    assert "fold_theo: train 1800, valid 200, test 500" in capsys.readouterr().out


def test_fsdd_upstream_split_uses_takes(fsdd_root, tmp_path):
    assert prepare("fsdd", "--root", fsdd_root, "--out", tmp_path, "--split", "upstream") == 0
    splits = read_splits(tmp_path)
    take = lambda u: int(Path(u.audio_filepath).stem.split("_")[2])  # noqa: E731
    assert {take(u) for u in splits["test"]} == set(range(5))
    assert {take(u) for u in splits["valid"]} == set(range(5, 10))
    assert min(take(u) for u in splits["train"]) == 10
    assert [len(splits[s]) for s in SPLITS] == [2000, 250, 250]


def test_fsdd_unknown_speaker_and_missing_root_are_one_line_errors(fsdd_root, tmp_path, capsys):
    assert prepare("fsdd", "--root", fsdd_root, "--out", tmp_path, "--holdout-speaker", "nobody") == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "'nobody'" in err and "theo" in err
    assert prepare("fsdd", "--root", tmp_path / "missing", "--out", tmp_path) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "missing: no such folder" in err and "Traceback" not in err


def test_fsdd_bad_files_are_reported_and_skipped(tmp_path, capsys):
    rec = tmp_path / "fsdd" / "recordings"
    for speaker in ("ann", "bob"):
        for digit in range(3):
            write_wav(rec / f"{digit}_{speaker}_0.wav", rate=8000)
    (rec / "4_ann_0.wav").write_bytes(b"RIFF not really a wav")
    write_wav(rec / "noise.wav", rate=8000)
    assert prepare("fsdd", "--root", tmp_path / "fsdd", "--out", tmp_path / "out", "--holdout-speaker", "bob") == 1
    captured = capsys.readouterr()
    skipped = [line for line in captured.err.splitlines() if line.startswith("skipped:")]
    assert len(skipped) == 2
    assert any("4_ann_0.wav" in line for line in skipped) and any("noise.wav: not an FSDD file name" in line for line in skipped)
    splits = read_splits(tmp_path / "out")
    assert len(splits["test"]) == 3 and len(splits["train"]) + len(splits["valid"]) == 3


def test_fsdd_download_checks_the_recording_count(tmp_path, monkeypatch):
    """The download path is exercised on a local zip: a wrong recording count is refused."""
    inner = f"free-spoken-digit-dataset-{fsdd.FSDD_COMMIT}/recordings/"
    archive = tmp_path / "fsdd.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for name in ("0_ann_0.wav", "1_ann_0.wav"):
            zf.writestr(inner + name, b"x")
    monkeypatch.setattr(fsdd, "download", lambda url, dest, **kw: archive)
    with pytest.raises(PrepareError, match="holds 2 recordings, expected 3000"):
        fsdd.download_fsdd(tmp_path / "cache")


# --------------------------------------------------------------------------- Speech Commands fixture

SPEAKERS = [f"a{n:07x}" for n in range(1, 7)]  # a0000001 .. a0000006
FIXTURE_COMMANDS = ("yes", "no", "up")
FIXTURE_OTHERS = ("bed", "cat", "dog")


def build_speech_commands(root: Path, *, lists: bool = True, noise: bool = True) -> Path:
    """A tiny Speech Commands tree: 3 commands and 3 other words x 6 speakers, 3 s of noise, lists.

    valid = speaker 5 of yes/no/up/bed/cat; test = speaker 6 of every word plus one absent file;
    train = the rest (12 command clips and 13 other-word clips).
    """
    for n, word in enumerate(FIXTURE_COMMANDS + FIXTURE_OTHERS):
        for k, speaker in enumerate(SPEAKERS):
            write_wav(root / word / f"{speaker}_nohash_0.wav", seed=10 * n + k)
    if noise:
        rng = np.random.default_rng(0)
        (root / "_background_noise_").mkdir()
        sf.write(root / "_background_noise_" / "white.wav", 0.1 * rng.standard_normal(48000), 16000, subtype="PCM_16")
        (root / "_background_noise_" / "README.md").write_text("noise")
    if lists:
        valid = [f"{w}/{SPEAKERS[4]}_nohash_0.wav" for w in ("yes", "no", "up", "bed", "cat")]
        test = [f"{w}/{SPEAKERS[5]}_nohash_0.wav" for w in FIXTURE_COMMANDS + FIXTURE_OTHERS]
        test.append("yes/ffffffff_nohash_0.wav")  # listed, absent
        (root / "validation_list.txt").write_text("\n".join(valid) + "\n")
        (root / "testing_list.txt").write_text("\n".join(test) + "\n")
    return root


def test_speech_commands_fixture_12_classes(tmp_path, capsys):
    root = build_speech_commands(tmp_path / "sc")
    out = tmp_path / "out"
    assert prepare("speech-commands", "--root", root, "--out", out) == 0
    stdout = capsys.readouterr().out
    assert "testing_list.txt: 1 of 7 listed files are absent" in stdout
    splits = read_splits(out)

    def files(split, label):
        return sorted(Path(u.audio_filepath).relative_to(root).as_posix() for u in splits[split] if u.label == label)

    # commands follow the lists; everything else is train
    assert files("valid", "yes") == [f"yes/{SPEAKERS[4]}_nohash_0.wav"]
    assert files("test", "up") == [f"up/{SPEAKERS[5]}_nohash_0.wav"]
    assert files("train", "no") == [f"no/{s}_nohash_0.wav" for s in SPEAKERS[:4]]
    # _unknown_: as many as an average command class per split (train 12/3, valid 3/3, test 3/3)
    unknown = {split: [u for u in splits[split] if u.label == "_unknown_"] for split in SPLITS}
    assert [len(unknown[s]) for s in SPLITS] == [4, 1, 1]
    for split in SPLITS:
        for u in unknown[split]:
            word, name = Path(u.audio_filepath).parts[-2:]
            assert u.text == word and word in FIXTURE_OTHERS and u.speaker == name.split("_")[0]
    assert {Path(u.audio_filepath).name for u in unknown["valid"]} == {f"{SPEAKERS[4]}_nohash_0.wav"}
    # _silence_: the same counts, 1 s clips written into OUT/silence
    silence = {split: [u for u in splits[split] if u.label == "_silence_"] for split in SPLITS}
    assert [len(silence[s]) for s in SPLITS] == [4, 1, 1]
    clips = sorted((out / "silence").glob("*.wav"))
    assert len(clips) == 6
    for u in sum(silence.values(), []):
        assert u.text is None and u.speaker is None and u.duration == 1.0
        assert Path(u.audio_filepath).parent == out / "silence"
        data, rate = sf.read(u.audio_filepath)
        assert rate == 16000 and len(data) == 16000 and 0 < np.abs(data).max() < 1
    assert total_row(stdout) == [12 + 8, 3 + 2, 3 + 2]

    # seeded: a second run gives the same manifests
    assert prepare("speech-commands", "--root", root, "--out", tmp_path / "again") == 0
    again = read_splits(tmp_path / "again")
    for split in SPLITS:
        strip = lambda rows: [(u.label, u.text, u.speaker) if u.label == "_silence_" else u.to_json() for u in rows]  # noqa: E731
        assert strip(again[split]) == strip(splits[split])


def test_speech_commands_fixture_35_classes(tmp_path):
    root = build_speech_commands(tmp_path / "sc")
    assert prepare("speech-commands", "--root", root, "--out", tmp_path / "out", "--task", "35") == 0
    splits = read_splits(tmp_path / "out")
    assert {u.label for s in SPLITS for u in splits[s]} == set(FIXTURE_COMMANDS + FIXTURE_OTHERS)
    assert [len(splits[s]) for s in SPLITS] == [4 * 6 + 1, 5, 6]
    assert not (tmp_path / "out" / "silence").exists()


def test_speech_commands_without_lists_or_noise(tmp_path, capsys):
    root = build_speech_commands(tmp_path / "sc", lists=False, noise=False)
    assert prepare("speech-commands", "--root", root, "--out", tmp_path / "out", "--task", "35") == 0
    stdout = capsys.readouterr().out
    assert "hash rule" in stdout
    for split, rows in read_splits(tmp_path / "out").items():
        for u in rows:
            assert speech_commands.which_set(Path(u.audio_filepath).relative_to(root).as_posix()) == split
    assert prepare("speech-commands", "--root", root, "--out", tmp_path / "out12") == 0
    assert "no background noise recordings: no _silence_ rows" in capsys.readouterr().out
    assert not any(u.label == "_silence_" for rows in read_splits(tmp_path / "out12").values() for u in rows)


def test_which_set_matches_the_dataset_readme():
    # speakers, not files, decide; the README's rule with 10 % / 10 %
    assert speech_commands.which_set("yes/abc_nohash_0.wav") == speech_commands.which_set("no/abc_nohash_3.wav")
    counts = {s: 0 for s in SPLITS}
    for n in range(2000):
        counts[speech_commands.which_set(f"yes/{n:08x}_nohash_0.wav")] += 1
    assert 150 < counts["valid"] < 250 and 150 < counts["test"] < 250


def test_silence_clips_come_from_the_split_region():
    noise = np.full(20 * 16000, 0.1, dtype=np.float32)
    noise[int(0.8 * len(noise)):int(0.9 * len(noise))] = 0.0  # valid region
    noise[int(0.9 * len(noise)):] = -0.1                        # test region
    rng = random.Random(0)
    for _ in range(20):
        train = speech_commands.cut_silence_clip(noise, 16000, speech_commands.SILENCE_REGIONS["train"], rng)
        test = speech_commands.cut_silence_clip(noise, 16000, speech_commands.SILENCE_REGIONS["test"], rng)
        assert len(train) == len(test) == 16000
        assert (train > 0).all() and (test < 0).all()
        lo, hi = speech_commands.SILENCE_RMS_RANGE
        assert lo * 0.999 <= float(np.sqrt(np.mean(test**2))) <= hi * 1.001


# --------------------------------------------------------------------------- Speech Commands (real data)


@pytest.mark.parametrize("through", ["folder", "symbolic link"])
def test_speech_commands_v1_sample_follows_the_lists(shared_dataset, tmp_path, capsys, through):
    """Also through a symbolic link to the data (a linked ``../shared``): manifests hold resolved paths."""
    root = shared_dataset("speech_commands_v1_sample")
    if through == "symbolic link":
        (tmp_path / "linked").symlink_to(root, target_is_directory=True)
        root = tmp_path / "linked"
    assert prepare("speech-commands", "--root", root, "--out", tmp_path / "out", "--version", "1") == 0
    stdout = capsys.readouterr().out
    listed = {s: set((root / n).read_text().split()) for s, n in speech_commands.LIST_FILES.items()}
    for split, name in speech_commands.LIST_FILES.items():
        absent = sum(not (root / rel).is_file() for rel in listed[split])
        assert f"{name}: {absent} of {len(listed[split])} listed files are absent" in stdout
    splits = read_splits(tmp_path / "out")
    for split, rows in splits.items():
        assert rows, f"{split} is empty"
        for u in rows:
            assert Path(u.audio_filepath).is_file()
            rel = Path(u.audio_filepath).relative_to(root.resolve()).as_posix()
            expected = "valid" if rel in listed["valid"] else "test" if rel in listed["test"] else "train"
            assert split == expected, rel
            assert u.label in COMMANDS_12 and u.text == rel.split("/")[0]
            assert u.speaker == Path(rel).name.split("_nohash_")[0]
    known = [u for u in splits["train"] if u.label in speech_commands.COMMANDS]
    n_unknown = sum(u.label == "_unknown_" for u in splits["train"])
    assert n_unknown == round(len(known) / len({u.label for u in known}))
    assert "no _silence_ rows" in stdout


def test_speech_commands_v1_sample_with_noise_dir_and_35_classes(shared_dataset, tmp_path):
    root = shared_dataset("speech_commands_v1_sample")
    noise = shared_dataset("background_noise")
    assert prepare("speech-commands", "--root", root, "--out", tmp_path / "12", "--noise-dir", noise) == 0
    silence = [u for rows in read_splits(tmp_path / "12").values() for u in rows if u.label == "_silence_"]
    assert silence and all(Path(u.audio_filepath).is_file() for u in silence)
    assert prepare("speech-commands", "--root", root, "--out", tmp_path / "35", "--task", "35") == 0
    labels = {u.label for rows in read_splits(tmp_path / "35").values() for u in rows}
    assert labels == {p.name for p in root.iterdir() if p.is_dir()} and len(labels) == 30


def test_speech_commands_v2_test_layout(shared_dataset, tmp_path, capsys):
    root = shared_dataset("speech_commands_v2_test_dev")
    assert prepare("speech-commands", "--root", root, "--out", tmp_path / "12") == 0
    assert "canonical test-set layout" in capsys.readouterr().out
    splits = read_splits(tmp_path / "12")
    assert splits["train"] == [] and splits["valid"] == []
    assert len(splits["test"]) == len(list(root.rglob("*.wav")))
    assert {u.label for u in splits["test"]} == COMMANDS_12
    speakers = set((root / "speakers.txt").read_text().split())
    for u in splits["test"]:
        name = Path(u.audio_filepath).name
        if u.label == "_silence_":
            assert u.text is None and u.speaker is None
        elif u.label == "_unknown_":
            assert name.startswith(f"{u.text}_{u.speaker}_nohash_")
        else:
            assert u.text == u.label and name.startswith(f"{u.speaker}_nohash_")
        if u.speaker is not None:
            assert u.speaker in speakers

    assert prepare("speech-commands", "--root", root, "--out", tmp_path / "35", "--task", "35") == 0
    test35 = read_manifest(tmp_path / "35" / "test.jsonl")
    assert len(test35) == len(splits["test"]) - len(list((root / "_silence_").glob("*.wav")))
    labels = {u.label for u in test35}
    assert "_silence_" not in labels and "_unknown_" not in labels and {"bed", "backward"} <= labels


# --------------------------------------------------------------------------- own folders


def build_folder(root: Path) -> Path:
    """3 labels x 10 speakers, 2 takes each; named ``spkN_takeK.wav``."""
    for label in ("hello", "stop", "_silence_"):
        for n in range(10):
            for take in range(2):
                write_wav(root / label / f"spk{n}_take{take}.wav", seconds=0.1, seed=n * 7 + take)
    return root


def test_folder_split_by_speaker_keeps_speakers_whole(tmp_path, capsys):
    root = build_folder(tmp_path / "mine")
    (root / "stop" / "corrupt.wav").write_bytes(b"not audio at all")
    rc = prepare("folder", "--root", root, "--out", tmp_path / "out", "--speaker-pattern", r"^(?P<speaker>spk\d+)_",
                 "--valid-fraction", "0.2", "--test-fraction", "0.2")
    captured = capsys.readouterr()
    assert rc == 1
    assert [line for line in captured.err.splitlines() if "corrupt.wav" in line] == [
        f"skipped: {root / 'stop' / 'corrupt.wav'}: not an audio file (format not recognised)"]
    splits = read_splits(tmp_path / "out")
    speakers = {split: {u.speaker for u in rows} for split, rows in splits.items()}
    assert speakers["train"].isdisjoint(speakers["valid"]) and speakers["train"].isdisjoint(speakers["test"])
    assert speakers["valid"].isdisjoint(speakers["test"])
    assert [len(speakers[s]) for s in SPLITS] == [6, 2, 2]
    rows = [u for split in splits.values() for u in split]
    assert len(rows) == 60
    assert all((u.text is None) == (u.label == "_silence_") for u in rows)


def test_folder_split_by_file_per_label(tmp_path):
    root = build_folder(tmp_path / "mine")
    assert prepare("folder", "--root", root, "--out", tmp_path / "out", "--seed", "3") == 0
    splits = read_splits(tmp_path / "out")
    for label in ("hello", "stop", "_silence_"):
        assert [sum(u.label == label for u in splits[s]) for s in SPLITS] == [16, 2, 2]
    assert all(u.speaker is None for rows in splits.values() for u in rows)


def test_folder_bad_options_are_usage_errors(tmp_path, capsys):
    root = build_folder(tmp_path / "mine")
    assert prepare("folder", "--root", root, "--out", tmp_path / "out", "--speaker-pattern", r"^(spk\d+)") == 2
    assert "named group (?P<speaker>...)" in capsys.readouterr().err
    assert prepare("folder", "--root", root, "--out", tmp_path / "out", "--test-fraction", "0.95") == 2
    assert prepare("folder", "--root", tmp_path / "empty_or_missing", "--out", tmp_path / "out") == 2


# --------------------------------------------------------------------------- download and extraction


def test_extract_zip_and_tar(tmp_path):
    archive = tmp_path / "a.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("top/recordings/0_ann_0.wav", b"data")
    dest = extract_archive(archive, tmp_path / "x")
    assert (dest / "top" / "recordings" / "0_ann_0.wav").read_bytes() == b"data"
    assert extract_archive(archive, tmp_path / "x") == dest  # reused

    tar_path = tmp_path / "b.tar.gz"
    with tarfile.open(tar_path, "w:gz") as tf:
        info = tarfile.TarInfo("./yes/a_nohash_0.wav")
        info.size = 4
        tf.addfile(info, io.BytesIO(b"wave"))
    assert (extract_archive(tar_path, tmp_path / "y") / "yes" / "a_nohash_0.wav").read_bytes() == b"wave"


def test_extract_refuses_unsafe_members(tmp_path):
    archive = tmp_path / "evil.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("../evil.txt", b"x")
    with pytest.raises(PrepareError, match="unsafe member"):
        extract_archive(archive, tmp_path / "x")
    assert not (tmp_path / "x").exists() and not (tmp_path / "x.part").exists() and not (tmp_path / "evil.txt").exists()

    tar_path = tmp_path / "link.tar"
    with tarfile.open(tar_path, "w") as tf:
        info = tarfile.TarInfo("link")
        info.type, info.linkname = tarfile.SYMTYPE, "/etc/passwd"
        tf.addfile(info)
    with pytest.raises(PrepareError, match="is a link"):
        extract_archive(tar_path, tmp_path / "y")
    (tmp_path / "junk.zip").write_bytes(b"neither zip nor tar")
    with pytest.raises(PrepareError, match="not a zip or tar"):
        extract_archive(tmp_path / "junk.zip", tmp_path / "z")


def test_download_verifies_size_and_sha256(tmp_path, capsys):
    """urllib on a file:// URL: the checks run without any network."""
    source = tmp_path / "source.bin"
    source.write_bytes(b"speech" * 100)
    url = source.as_uri()
    digest = hashlib.sha256(source.read_bytes()).hexdigest()
    with pytest.raises(PrepareError, match="does not match"):
        download(url, tmp_path / "bad.bin", sha256="0" * 64)
    assert not (tmp_path / "bad.bin").exists() and not (tmp_path / "bad.bin.part").exists()
    with pytest.raises(PrepareError, match="expected 5 "):
        download(url, tmp_path / "short.bin", size=5)
    assert download(url, tmp_path / "ok.bin", sha256=digest, size=600).read_bytes() == source.read_bytes()
    download(url, tmp_path / "unpinned.bin")
    assert f"sha256 {digest}" in capsys.readouterr().err
    with pytest.raises(PrepareError, match="download failed"):
        download((tmp_path / "nope.bin").as_uri(), tmp_path / "nope.bin")


def test_manifest_rows_are_plain_json(shared_dataset, tmp_path):
    """Each row has exactly the documented fields (no offset, no nulls)."""
    root = shared_dataset("speech_commands_v2_test_dev")
    assert prepare("speech-commands", "--root", root, "--out", tmp_path) == 0
    keys = {frozenset(json.loads(line)) for line in (tmp_path / "test.jsonl").read_text().splitlines()}
    assert keys == {frozenset({"audio_filepath", "duration", "label", "text", "speaker"}),
                    frozenset({"audio_filepath", "duration", "label"})}
    assert (tmp_path / "train.jsonl").read_text() == "" and re.search(r"_silence_", (tmp_path / "test.jsonl").read_text())


# --------------------------------------------------------------------------- OpenSLR 28 room responses (a built archive)


def _rir(rate: int = 16000, seconds: float = 0.3, channels: int = 1, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    n = int(seconds * rate)
    decay = np.exp(-np.arange(n) / (0.05 * rate))
    data = 0.1 * rng.standard_normal((n, channels)) * decay[:, None]
    data[40] = 0.9  # the direct path
    return data if channels > 1 else data[:, 0]


def _build_rirs_noises(root: Path) -> Path:
    """A small copy of rirs_noises' layout: real responses listed among noises, simulated rooms, point sources."""
    top = root / "RIRS_NOISES"
    real = top / "real_rirs_isotropic_noises"
    real.mkdir(parents=True)
    sf.write(real / "air_type1_air_binaural_lecture_1_1_90_3.wav", _rir(channels=2), 16000, subtype="FLOAT")
    sf.write(real / "RWCP_type1_rir_circle_e1a_imp000.wav", _rir(seed=1), 16000, subtype="FLOAT")
    sf.write(real / "RVB2014_type1_noise_largeroom1_1.wav", 0.1 * np.ones(4000), 16000)  # a noise, not listed
    (real / "rir_list").write_text(
        "--rir-id air_lecture --room-id air_lecture RIRS_NOISES/real_rirs_isotropic_noises/air_type1_air_binaural_lecture_1_1_90_3.wav\n"
        "--rir-id rwcp_e1a --room-id rwcp_e1a RIRS_NOISES/real_rirs_isotropic_noises/RWCP_type1_rir_circle_e1a_imp000.wav\n")
    (real / "noise_list").write_text("--noise-id n1 --noise-type isotropic RIRS_NOISES/real_rirs_isotropic_noises/RVB2014_type1_noise_largeroom1_1.wav\n")
    for i, size in enumerate(("smallroom", "mediumroom", "largeroom")):
        room = top / "simulated_rirs" / size / "Room001"
        room.mkdir(parents=True)
        sf.write(room / "Room001-00001.wav", _rir(seed=2 + i), 16000, subtype="FLOAT")
        (top / "simulated_rirs" / size / "rir_list").write_text(
            f"--rir-id {size}-Room001-00001 --room-id {size}-Room001 RIRS_NOISES/simulated_rirs/{size}/Room001/Room001-00001.wav\n")
    points = top / "pointsource_noises"
    points.mkdir()
    write_wav(points / "noise-free-sound-0001.wav", seconds=0.5)
    (points / "noise_list").write_text("--noise-id noise-free-sound-0001 --noise-type point-source --bg-fg-type foreground "
                                       "RIRS_NOISES/pointsource_noises/noise-free-sound-0001.wav\n")
    return root


def _zip_folder(folder: Path, archive: Path) -> Path:
    with zipfile.ZipFile(archive, "w") as zf:
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                zf.write(path, path.relative_to(folder).as_posix())
    return archive


def test_rirs_from_the_archive_writes_only_listed_responses_for_the_augmenter(tmp_path, capsys):
    from speech.augment import load_rir_bank

    archive = _zip_folder(_build_rirs_noises(tmp_path / "src"), tmp_path / "rirs_noises.zip")
    out = tmp_path / "rooms"
    assert prepare("rirs", "--archive", archive, "--out", out) == 0
    assert "wrote 2 room impulse response files (3 responses" in capsys.readouterr().out
    assert sorted(p.name for p in (out / "real").iterdir()) == [
        "RWCP_type1_rir_circle_e1a_imp000.wav", "air_type1_air_binaural_lecture_1_1_90_3.wav"]  # the noise is not a room
    rows = [json.loads(line) for line in (out / "rirs.jsonl").read_text().splitlines()]
    assert [(r["rir_id"], r["set"], r["channels"]) for r in rows] == [("air_lecture", "real", 2), ("rwcp_e1a", "real", 1)]
    data, rate = sf.read(out / "real" / "RWCP_type1_rir_circle_e1a_imp000.wav")
    assert rate == 16000 and np.array_equal(data, sf.read(tmp_path / "src/RIRS_NOISES/real_rirs_isotropic_noises/"
                                                          "RWCP_type1_rir_circle_e1a_imp000.wav")[0])
    assert load_rir_bank(str(out), 16000).shape == (3, 16000)  # every channel a response, rirs.jsonl ignored


def test_rirs_from_a_folder_with_simulated_rooms_and_noises_kept_apart(tmp_path, capsys):
    root = _build_rirs_noises(tmp_path / "src")
    out, noises = tmp_path / "rooms", tmp_path / "noises"
    argv = ("rirs", "--root", root / "RIRS_NOISES", "--out", out, "--sets", "real,simulated", "--noise-out", noises)
    assert prepare(*argv) == 0
    written = sorted(p.relative_to(out).as_posix() for p in out.rglob("*.wav"))
    assert written[2:] == [f"simulated/{size}/Room001/Room001-00001.wav" for size in ("largeroom", "mediumroom", "smallroom")]
    assert [p.name for p in noises.glob("*.wav")] == ["noise-free-sound-0001.wav"]
    assert json.loads((noises / "noises.jsonl").read_text())["noise_type"] == "point-source"
    first = (out / "rirs.jsonl").read_text()
    assert prepare(*argv) == 0 and (out / "rirs.jsonl").read_text() == first  # a second run keeps what is there
    assert not list(out.rglob("*.tmp"))


def test_rirs_reports_a_listed_file_the_archive_lacks_and_writes_the_rest(tmp_path, capsys):
    root = _build_rirs_noises(tmp_path / "src")
    (root / "RIRS_NOISES/real_rirs_isotropic_noises/RWCP_type1_rir_circle_e1a_imp000.wav").unlink()
    assert prepare("rirs", "--root", root, "--out", tmp_path / "rooms") == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "RWCP_type1_rir_circle_e1a_imp000.wav: listed in" in err[0]
    assert [p.name for p in (tmp_path / "rooms/real").iterdir()] == ["air_type1_air_binaural_lecture_1_1_90_3.wav"]


@pytest.mark.parametrize("extra, message", [
    (("--archive", "NOTZIP"), "not a readable zip archive"),
    (("--root", "SRC", "--sets", "real,rooms"), "unknown set(s) rooms"),
    (("--root", "SRC", "--noise-out", "OUT/noise"), "inside --out"),
    (("--root", "EMPTY"), "no RIRS_NOISES/ folder"),
])
def test_rirs_usage_errors_are_one_line(tmp_path, capsys, extra, message):
    _build_rirs_noises(tmp_path / "src")
    (tmp_path / "empty").mkdir()
    (tmp_path / "notzip.zip").write_text("not a zip")
    names = {"NOTZIP": tmp_path / "notzip.zip", "SRC": tmp_path / "src", "EMPTY": tmp_path / "empty",
             "OUT/noise": tmp_path / "out/noise"}
    assert prepare("rirs", "--out", tmp_path / "out", *[names.get(a, a) for a in extra]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("speech prepare rirs: error:") and message in err[0]
