"""``speech.data.manifest``: the JSON-lines manifest round trip, path resolution and row validation."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from speech.data.manifest import ManifestError, Utterance, read_manifest, write_manifest


def test_round_trip(tmp_path):
    rows = [
        Utterance(str(tmp_path / "a.wav"), 1.25, label="yes", speaker="s1"),
        Utterance(str(tmp_path / "b.wav"), 0.5, text="turn on the light", speaker="s2", offset=0.75),
        Utterance(str(tmp_path / "c.wav"), 2.0, label="no", text="no"),
        Utterance(str(tmp_path / "ü ñ.wav"), 3, label="café"),
    ]
    path = tmp_path / "sub" / "m.jsonl"
    assert write_manifest(path, rows) == 4
    back = read_manifest(path)
    assert back == [Utterance(r.audio_filepath, float(r.duration), r.label, r.text, r.speaker, r.offset) for r in rows]
    assert all(isinstance(u.duration, float) and isinstance(u.offset, float) for u in back)
    # plain dictionaries are written too; None fields and a zero offset are left out of the file
    lines = path.read_text(encoding="utf-8").splitlines()
    assert json.loads(lines[0]) == {"audio_filepath": str(tmp_path / "a.wav"), "duration": 1.25, "label": "yes", "speaker": "s1"}
    assert json.loads(lines[1])["offset"] == 0.75
    assert "café" in lines[3]  # ensure_ascii=False: readable UTF-8
    assert sorted(p.name for p in path.parent.iterdir()) == ["m.jsonl"]  # no temp file left


def test_write_dicts_and_empty(tmp_path):
    path = tmp_path / "m.jsonl"
    assert write_manifest(path, [{"audio_filepath": "/x.wav", "duration": 1, "text": "hi"}]) == 1
    assert read_manifest(path) == [Utterance("/x.wav", 1.0, text="hi")]
    assert write_manifest(path, []) == 0
    assert read_manifest(path) == []


def test_relative_paths_resolve_against_the_manifest_folder(tmp_path, monkeypatch):
    folder = tmp_path / "data"
    folder.mkdir()
    (folder / "m.jsonl").write_text(
        json.dumps({"audio_filepath": "clips/a.wav", "duration": 1, "label": "x"}) + "\n"
        + json.dumps({"audio_filepath": "../b.wav", "duration": 1, "label": "x"}) + "\n"
        + json.dumps({"audio_filepath": "/abs/c.wav", "duration": 1, "label": "x"}) + "\n"
    )
    monkeypatch.chdir(tmp_path)  # the working folder does not matter
    rows = read_manifest(Path("data") / "m.jsonl")
    assert [Path(r.audio_filepath).resolve() for r in rows[:2]] == [
        (folder / "clips" / "a.wav").resolve(), (tmp_path / "b.wav").resolve()]
    assert rows[2].audio_filepath == "/abs/c.wav"


def test_blank_lines_and_extra_fields_are_allowed(tmp_path):
    path = tmp_path / "m.jsonl"
    path.write_text(
        "\n" + json.dumps({"audio_filepath": "/a.wav", "duration": 1, "label": "x", "lang": "en"}) + "\n   \n"
    )
    assert read_manifest(path) == [Utterance("/a.wav", 1.0, label="x")]


GOOD = {"audio_filepath": "/a.wav", "duration": 1.0, "label": "yes"}


@pytest.mark.parametrize(
    "line, cause",
    [
        ('{"audio_filepath": "/a.wav", "duration": 1', "not valid JSON"),
        ("[1, 2]", "expected a JSON object"),
        (json.dumps({"duration": 1.0, "label": "x"}), "audio_filepath"),
        (json.dumps({"audio_filepath": "", "duration": 1.0, "label": "x"}), "audio_filepath"),
        (json.dumps({"audio_filepath": 5, "duration": 1.0, "label": "x"}), "audio_filepath"),
        (json.dumps({"audio_filepath": "/a.wav", "label": "x"}), "'duration' must be a positive number"),
        (json.dumps({"audio_filepath": "/a.wav", "duration": "1.0", "label": "x"}), "'duration' must be a positive number"),
        (json.dumps({"audio_filepath": "/a.wav", "duration": 0, "label": "x"}), "'duration' must be a positive number"),
        (json.dumps({"audio_filepath": "/a.wav", "duration": -2, "label": "x"}), "'duration' must be a positive number"),
        (json.dumps({"audio_filepath": "/a.wav", "duration": True, "label": "x"}), "'duration' must be a positive number"),
        ('{"audio_filepath": "/a.wav", "duration": NaN, "label": "x"}', "'duration' must be a positive number"),
        (json.dumps({"audio_filepath": "/a.wav", "duration": 1.0}), "needs 'label' or 'text'"),
        (json.dumps({"audio_filepath": "/a.wav", "duration": 1.0, "label": 3}), "'label' must be a string"),
        (json.dumps({"audio_filepath": "/a.wav", "duration": 1.0, "text": ["a"]}), "'text' must be a string"),
        (json.dumps({"audio_filepath": "/a.wav", "duration": 1.0, "label": "x", "speaker": 7}), "'speaker' must be a string"),
        (json.dumps({"audio_filepath": "/a.wav", "duration": 1.0, "label": "x", "offset": -1}), "'offset' must be a number"),
        ('{"audio_filepath": "/a.wav", "duration": Infinity, "label": "x"}', "'duration' must be a positive number"),
        ('{"audio_filepath": "/a.wav", "duration": 1.0, "label": "x", "offset": NaN}', "'offset' must be a number"),
        (json.dumps({"audio_filepath": "/a.wav", "duration": 1.0, "label": "x", "offset": "0"}), "'offset' must be a number"),
    ],
)
def test_bad_row_names_path_and_line(tmp_path, line, cause):
    path = tmp_path / "m.jsonl"
    # the bad row is on line 3 (line 2 is blank and still counted)
    path.write_text(json.dumps(GOOD) + "\n\n" + line + "\n" + json.dumps(GOOD) + "\n")
    with pytest.raises(ManifestError) as err:
        read_manifest(path)
    message = str(err.value)
    assert message.startswith(f"{path}:3: "), message
    assert cause in message and "\n" not in message


def test_missing_manifest(tmp_path):
    with pytest.raises(ManifestError, match="no such manifest file"):
        read_manifest(tmp_path / "none.jsonl")
    with pytest.raises(ManifestError, match="no such manifest file"):
        read_manifest(tmp_path)
