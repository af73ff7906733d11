"""The live operating point of the bundled model's recipe (recipes/commands/calibrate_stream.py): chosen on a
real DEV-half detection benchmark run, saved in the model file, and used by default by `speech.load(...).stream`
and by the benchmark itself; a report with the TEST half is refused."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import REPO_ROOT, run_speech
from speech.bench.detection import pool_sweeps

SCRIPT = REPO_ROOT / "recipes" / "commands" / "calibrate_stream.py"


def calibrate(model: Path, report: Path | list[Path], far: float | None) -> subprocess.CompletedProcess:
    target = [] if far is None else ["--far-per-hour", str(far)]
    reports = [str(r) for r in (report if isinstance(report, list) else [report])]
    return subprocess.run([sys.executable, str(SCRIPT), "--model", str(model), "--report", *reports, *target],
                          capture_output=True, text=True, timeout=120)


@pytest.fixture(scope="module")
def dev_report(tmp_path_factory, shared_data):
    """A copy of the bundled model and a 1-minute DEV-half detection run of it."""
    from speech.checkpoint import resolve_model_path

    folder = tmp_path_factory.mktemp("calibrate")
    model = folder / "model.pt"
    shutil.copy(resolve_model_path("commands"), model)
    return model, folder


def bench(capsys, model: Path, folder: Path, name: str, halves: str = "dev", seed: int | list[int] = 2) -> dict:
    rc, _, err = run_speech(capsys, "bench", "detection", "--model", model, "--engine", "torch", "--minutes", 1,
                            "--seed", *([seed] if isinstance(seed, int) else seed), "--halves", halves, "--thresholds", 0.5, 0.7, 0.9, 0.99,
                            "--cache", folder / "cache", "--out", folder / name)
    assert rc == 0, err
    return json.loads((folder / name).read_text())


def test_operating_point_is_chosen_on_dev_saved_and_used_by_default(capsys, dev_report):
    model, folder = dev_report
    report = bench(capsys, model, folder, "dev.json")
    sweep = report["streams"][0]["sweep"]
    target = sorted(r["false_accepts_per_hour"] for r in sweep)[1]  # one that some threshold meets
    expected = min(r["threshold"] for r in sweep if r["false_accepts_per_hour"] <= target)
    proc = calibrate(model, folder / "dev.json", target)
    assert proc.returncode == 0, proc.stderr
    assert f"threshold {expected:.2f}" in proc.stdout and "met" in proc.stdout

    import speech

    loaded = speech.load(str(model), engine="torch")
    point = loaded.operating_point
    assert point["threshold"] == expected and point["target_met"] is True
    assert "DEV half" in point["measured_on"] and point["smoothing"]["minimum_count"] == 3
    # the benchmark takes a false-accept rate for the threshold, as speech listen does: the saved curve's
    from speech.streaming import threshold_for_false_accepts

    rate = target  # the rate calibrate_stream.py was asked for picks the threshold it chose
    picked = threshold_for_false_accepts(point, rate)["threshold"]
    assert picked == expected
    rc, _, err = run_speech(capsys, "bench", "detection", "--model", model, "--engine", "torch", "--minutes", 1, "--seed", 2,
                            "--halves", "dev", "--thresholds", 0.5, 0.7, 0.9, 0.99, "--false-accepts-per-hour", rate,
                            "--cache", folder / "cache", "--out", folder / "rate.json")
    assert rc == 0, err
    by_rate = json.loads((folder / "rate.json").read_text())
    assert by_rate["config"]["detection_threshold"] == picked and by_rate["config"]["false_accepts_per_hour_on_dev"] == rate
    assert by_rate["config"]["dev_curve_row"]["threshold"] == picked and by_rate["config"]["dev_curve_row"]["met"]
    rc, _, err = run_speech(capsys, "bench", "detection", "--model", model, "--seed", 2, 2, "--halves", "dev")
    assert rc == 2 and "distinct seeds" in err and len(err.strip().splitlines()) == 1
    assert loaded.stream().pipeline.stage.smoother.config.detection_threshold == expected
    # the benchmark's default operating point is the model's now (as speech listen's)
    again = bench(capsys, model, folder, "dev2.json")
    assert again["config"]["detection_threshold"] == expected
    assert again["streams"][0]["operating_point"]["threshold"] == expected


def test_unmet_target_keeps_the_fewest_false_accepts_and_says_so(capsys, dev_report):
    model, folder = dev_report
    if not (folder / "dev.json").is_file():
        bench(capsys, model, folder, "dev.json")
    sweep = json.loads((folder / "dev.json").read_text())["streams"][0]["sweep"]
    proc = calibrate(model, folder / "dev.json", -1.0)  # no threshold can meet it
    assert proc.returncode == 0, proc.stderr
    assert "NOT met" in proc.stdout
    fewest = min(sweep, key=lambda r: (r["false_accepts_per_hour"], -r["hits"]))
    import speech

    point = speech.load(str(model), engine="torch").operating_point
    assert point["threshold"] == fewest["threshold"] and point["target_met"] is False


def test_balanced_rule_takes_the_most_hits_less_false_commands(capsys, dev_report):
    model, folder = dev_report
    if not (folder / "dev.json").is_file():
        bench(capsys, model, folder, "dev.json")
    sweep = json.loads((folder / "dev.json").read_text())["streams"][0]["sweep"]
    proc = calibrate(model, folder / "dev.json", None)
    assert proc.returncode == 0, proc.stderr
    score = {r["threshold"]: r["hits"] - r["false_accepts_on_speech"] - r["wrong_label"] for r in sweep}
    import speech

    point = speech.load(str(model), engine="torch").operating_point
    assert score[point["threshold"]] == max(score.values()) and point["rule"].startswith("most hits")
    assert point["target_false_accepts_per_hour"] is None


def test_several_dev_seeds_are_pooled_and_a_repeated_seed_is_refused(capsys, dev_report):
    """Two DEV runs with other --seed values (the same clips in other orders): the point is chosen on their
    summed counts, and the model file says which seeds; the same run twice, or runs with other thresholds,
    are refused with one line and leave the model file alone."""
    model, folder = dev_report
    reports = [bench(capsys, model, folder, f"pool{seed}.json", seed=seed) for seed in (3, 4)]
    bench(capsys, model, folder, "pooled.json", seed=[3, 4])  # the same two runs in one report (from the cache)
    sweeps = [r["streams"][0]["sweep"] for r in reports]
    assert [r["threshold"] for r in sweeps[0]] == [r["threshold"] for r in sweeps[1]]
    score = {a["threshold"]: sum(r["hits"] - r["false_accepts_on_speech"] - r["wrong_label"] for r in (a, b))
             for a, b in zip(*sweeps)}
    proc = calibrate(model, [folder / "pool3.json", folder / "pool4.json"], None)
    assert proc.returncode == 0, proc.stderr
    import speech

    point = speech.load(str(model), engine="torch").operating_point
    assert score[point["threshold"]] == max(score.values())
    best = max(t for t, v in score.items() if v == max(score.values()))  # ties: the higher threshold
    assert point["threshold"] == best
    rows = [next(r for r in s if r["threshold"] == best) for s in sweeps]
    assert point["commands"] == rows[0]["commands"] + rows[1]["commands"]
    assert point["other_speech_minutes"] == pytest.approx(sum(r["other_seconds"] for r in rows) / 60, abs=0.06)
    assert point["stream_seeds"] == [3, 4] and "seeds 3 4 pooled" in point["measured_on"]
    pooled = pool_sweeps(sweeps)  # the whole pooled DEV curve is saved, for a false-accept rate to pick from
    assert point["dev_curve"] == [{"threshold": r["threshold"], "false_accepts_per_hour": r["false_accepts_per_hour"],
                                   "hit_rate": round(r["hits"] / r["commands"], 4)} for r in pooled]
    from speech.streaming import threshold_for_false_accepts

    some = [r for r in point["dev_curve"] if r["false_accepts_per_hour"] > 0]  # no row meets 0: the fewest false accepts
    fewest = threshold_for_false_accepts({"dev_curve": some}, 0.0)
    assert fewest["false_accepts_per_hour"] == min(r["false_accepts_per_hour"] for r in some) and fewest["met"] is False
    with pytest.raises(ValueError, match="no false-accept curve"):
        threshold_for_false_accepts({"threshold": 0.5}, 2)
    proc = calibrate(model, folder / "pooled.json", None)  # one report of --seed 3 4: the same point
    assert proc.returncode == 0, proc.stderr
    assert speech.load(str(model), engine="torch").operating_point == point

    before = model.read_bytes()
    proc = calibrate(model, [folder / "pooled.json", folder / "pool4.json"], None)
    assert proc.returncode != 0 and "same --seed (4)" in proc.stderr and "Traceback" not in proc.stderr
    proc = calibrate(model, [folder / "pool3.json", folder / "pool3.json"], None)
    assert proc.returncode != 0 and "same --seed" in proc.stderr and "Traceback" not in proc.stderr
    other = json.loads((folder / "pool4.json").read_text())
    other["config"]["minimum_count"] = 1
    (folder / "other.json").write_text(json.dumps(other))
    proc = calibrate(model, [folder / "pool3.json", folder / "other.json"], None)
    assert proc.returncode != 0 and "minimum_count" in proc.stderr and "Traceback" not in proc.stderr
    assert model.read_bytes() == before


def test_a_report_with_the_test_half_is_refused(capsys, dev_report):
    model, folder = dev_report
    bench(capsys, model, folder, "test.json", halves="test")
    before = model.read_bytes()
    proc = calibrate(model, folder / "test.json", 2.0)
    assert proc.returncode != 0 and "DEV half" in proc.stderr and "Traceback" not in proc.stderr
    assert model.read_bytes() == before


def test_listen_help_names_the_bundled_operating_point(capsys):
    """`speech listen --help` says what the bundled model's default threshold is and where it was chosen."""
    import speech

    point = speech.load("commands", engine="torch").operating_point
    assert "DEV half" in point["measured_on"]
    rc, out, _ = run_speech(capsys, "listen", "--help")
    assert rc == 0
    text = " ".join(out.split())
    assert f"bundled commands model's is {point['threshold']:.2f}" in text
    assert f"{100 * point['hit_rate']:.1f} % of the commands at {point['false_accepts_per_hour']:.0f} false accepts" in text
