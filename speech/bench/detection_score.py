"""Scoring a stream's detections for ``speech bench detection`` (:mod:`speech.bench.detection`): hits,
false accepts on other speech (by source) and wrong labels against the stream's events
(:func:`score_stream`), several streams' sweeps pooled into one (:func:`pool_sweeps`), the best hits
within budgets of false accepts per hour (:func:`within_budgets`) and latency summaries. Plain Python
and numpy: no model, no audio."""
from __future__ import annotations

import bisect
from typing import TYPE_CHECKING, Sequence

if TYPE_CHECKING:
    from speech.data.streams import StreamEvent


def score_stream(detections: Sequence, events: Sequence[StreamEvent], seconds: float, tolerance: float = 1.0) -> dict:
    """Score the detections (anything with ``.time`` and ``.label``) of a stream against its events.

    - hit: the first command not yet hit with the detection's label whose spoken part, extended by
      ``tolerance`` s after its end, holds the detection time; latency = detection time - the word's end.
    - every other detection belongs to the last word that started before it: on a command it is a
      ``wrong_label`` (or a ``repeat`` of the command's own label); on other speech (or on the noise
      before the first word, source ``noise``) it is a false accept on other speech.
    - ``other_seconds``: the time from the start of each non-command word to the start of the next word
      (plus the noise before the first word): the hours of non-command speech false accepts are counted
      per. ``by_source``: words, seconds and false accepts of each source of other speech.
    """
    commands = [i for i, e in enumerate(events) if e.is_command]
    starts = [e.start for e in events]
    matched: set[int] = set()
    hits, wrong, repeats, latencies = 0, 0, 0, []
    by_source: dict[str, dict] = {}

    def source(name: str) -> dict:
        return by_source.setdefault(name, {"words": 0, "seconds": 0.0, "false_accepts": 0})

    for i, e in enumerate(events):
        if not e.is_command:
            nxt = starts[i + 1] if i + 1 < len(events) else seconds
            s = source(e.source)
            s["words"] += 1
            s["seconds"] += nxt - e.start
    if events and starts[0] > 0:
        source("noise")["seconds"] += starts[0]
    elif not events:
        source("noise")["seconds"] += seconds
    for d in sorted(detections, key=lambda d: d.time):
        for i in commands:
            e = events[i]
            if i not in matched and e.word == d.label and e.start <= d.time <= e.end + tolerance:
                matched.add(i)
                hits += 1
                latencies.append(d.time - e.end)
                break
        else:
            k = bisect.bisect_right(starts, d.time) - 1
            if k >= 0 and events[k].is_command:
                if events[k].word == d.label:
                    repeats += 1
                else:
                    wrong += 1
            else:
                source("noise" if k < 0 else events[k].source)["false_accepts"] += 1
    other_seconds = sum(s["seconds"] for s in by_source.values())
    on_speech = sum(s["false_accepts"] for s in by_source.values())
    for s in by_source.values():
        s["seconds"] = round(s["seconds"], 2)
        s["false_accepts_per_hour"] = round(s["false_accepts"] / (s["seconds"] / 3600), 1) if s["seconds"] else None
    n = len(commands)
    return {
        "commands": n, "hits": hits, "miss_rate": round(1 - hits / n, 4) if n else None,
        "false_accepts_on_speech": on_speech, "other_seconds": round(other_seconds, 2),
        "false_accepts_per_hour": round(on_speech / (other_seconds / 3600), 2) if other_seconds else None,
        "wrong_label": wrong, "repeats": repeats, "latencies": [round(x, 3) for x in latencies],
        "by_source": dict(sorted(by_source.items())),
    }


POOLED_COUNTS = ("commands", "hits", "false_accepts_on_speech", "wrong_label", "repeats", "other_seconds")
BUDGETS = (2, 10, 30, 100)  # false accepts per hour of other speech: the report's "hits within a budget"


def pool_sweeps(sweeps: Sequence[Sequence[dict]]) -> list[dict]:
    """Several streams' sweeps (rows of :func:`sweep` or of a report's ``"sweep"``, the same thresholds in
    the same order) as one stream's: the counts and the seconds of other speech summed at each threshold,
    the miss rate and false accepts per hour recomputed from the sums (not averaged), so a longer pooled
    stream weighs each false accept less. Rows of :func:`sweep` keep their latencies (joined) and sources
    (summed); a report's rows hold only latency summaries, which are not pooled."""
    if not sweeps:
        raise ValueError("no sweeps to pool")
    if len({len(s) for s in sweeps}) != 1:
        raise ValueError("the sweeps differ in their number of thresholds")
    out = []
    for rows in zip(*sweeps):
        if len({r["threshold"] for r in rows}) != 1:
            raise ValueError(f"the sweeps differ in thresholds: {sorted({r['threshold'] for r in rows})}")
        total = {k: sum(r[k] for r in rows) for k in POOLED_COUNTS}
        total["other_seconds"] = round(total["other_seconds"], 2)
        n, other = total["commands"], total["other_seconds"]
        row = {"threshold": rows[0]["threshold"], **total,
               "miss_rate": round(1 - total["hits"] / n, 4) if n else None,
               "false_accepts_per_hour": round(total["false_accepts_on_speech"] / (other / 3600), 2) if other else None}
        if all("latencies" in r for r in rows):
            row["latencies"] = [x for r in rows for x in r["latencies"]]
        if all("by_source" in r for r in rows):
            sources: dict[str, dict] = {}
            for r in rows:
                for name, b in r["by_source"].items():
                    t = sources.setdefault(name, {"words": 0, "seconds": 0.0, "false_accepts": 0})
                    t["words"], t["seconds"], t["false_accepts"] = t["words"] + b["words"], t["seconds"] + b["seconds"], t["false_accepts"] + b["false_accepts"]
            for t in sources.values():
                t["seconds"] = round(t["seconds"], 2)
                t["false_accepts_per_hour"] = round(t["false_accepts"] / (t["seconds"] / 3600), 1) if t["seconds"] else None
            row["by_source"] = dict(sorted(sources.items()))
        out.append(row)
    return out


def within_budgets(rows: Sequence[dict], budgets: Sequence[float] = BUDGETS) -> list[dict]:
    """For each budget of false accepts per hour, the sweep row with the most hits within it (ties: fewer
    false accepts, then the higher threshold): ``{"budget", "threshold", "hits", "hit_rate", "false_accepts_per_hour"}``, threshold and
    rates None where no threshold of the sweep stays within it."""
    out = []
    for budget in budgets:
        ok = [r for r in rows if r["false_accepts_per_hour"] is not None and r["false_accepts_per_hour"] <= budget]
        best = max(ok, key=lambda r: (r["hits"], -r["false_accepts_per_hour"], r["threshold"]), default=None)
        out.append({"budget": budget, "threshold": best and best["threshold"], "hits": best["hits"] if best else 0,
                    "commands": rows[0]["commands"] if rows else 0,
                    "hit_rate": round(best["hits"] / best["commands"], 4) if best and best["commands"] else None,
                    "false_accepts_per_hour": best and best["false_accepts_per_hour"]})
    return out


def latency_summary(latencies: Sequence[float]) -> dict:
    import numpy as np

    if not latencies:
        return {"latency_median_s": None, "latency_p90_s": None}
    lat = np.asarray(latencies)
    return {"latency_median_s": round(float(np.median(lat)), 3), "latency_p90_s": round(float(np.percentile(lat, 90)), 3)}
