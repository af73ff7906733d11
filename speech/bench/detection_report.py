"""The report of ``speech bench detection`` (:mod:`speech.bench.detection`; CTC models:
:mod:`speech.bench.detection_ctc`): its markdown tables (:func:`detection_tables`: the operating point per
stream, false accepts by source, the DET table, the speakers of each half) and its PNG (:func:`det_plot`).
matplotlib is imported inside :func:`det_plot` only."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

from speech.bench.detection_data import HALVES


def _pct(x) -> str:
    return "-" if x is None else f"{100 * x:.1f} %"


def _num(x, pattern="{:.1f}") -> str:
    return "-" if x is None else pattern.format(round(x, 2) + 0.0)  # + 0.0: no "-0.00"


def detection_tables(report: dict, header: str | None = None, compute_line: str | None = None,
                     threshold_name: str = "threshold") -> str:
    """The report in markdown: the operating point per stream, false accepts by source, the DET table
    and the speakers of each half. ``header`` / ``compute_line``: the first line and the compute line
    (default: the classifier's smoothing and compute); ``threshold_name``: what the sweep varies (the CTC
    benchmark: ``rejection``). The operating point is ``config["reject"]`` where there is one, else
    ``config["detection_threshold"]``."""
    c = report["config"]
    op = c["reject"] if "reject" in c else c["detection_threshold"]
    if header is None:
        header = (f"Operating point: threshold {op:g}, average window {c['average_window_ms']:g} ms, minimum count "
                  f"{c['minimum_count']}, suppression {c['suppression_ms']:g} ms, hop {c['hop_ms']:g} ms; SNR {c['snr_db']:g} dB; "
                  f"a hit is the right label from the word's start to {c['tolerance_s']:g} s after its end"
                  + (f"; stream seeds {' '.join(map(str, c['seed']))}, pooled." if isinstance(c.get("seed"), list) else "."))
    lines = [header, "",
             "| stream | audio (min) | commands | hits | miss rate | other speech (min) | false accepts on other speech | per hour | wrong label on a command | latency median (s) | p90 (s) |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for s in report["streams"]:
        p = s["operating_point"]
        repeats = f" (+{p['repeats']} repeats)" if p["repeats"] else ""
        lines.append(f"| {s['stream']} | {s['seconds'] / 60:.1f} | {p['commands']} | {p['hits']} | {_pct(p['miss_rate'])} | "
                     f"{p['other_seconds'] / 60:.1f} | {p['false_accepts_on_speech']} | {_num(p['false_accepts_per_hour'])} | "
                     f"{p['wrong_label']}{repeats} | "
                     f"{_num(p['latency_median_s'], '{:.2f}')} | {_num(p['latency_p90_s'], '{:.2f}')} |")
    budgeted = [s for s in report["streams"] if s.get("budgets")]
    if budgeted:
        lines += ["", f"Hits within a budget of false accepts per hour of other speech (the best {threshold_name} of the sweep"
                  + (", each seed's below its pooled row" if any("seeds" in s for s in budgeted) else "") + "):", "",
                  "| stream | " + " | ".join(f"<= {b['budget']:g} FA/h" for b in budgeted[0]["budgets"]) + " |",
                  "|---|" + "---:|" * len(budgeted[0]["budgets"])]
        cell = lambda b: "-" if b["threshold"] is None else f"{_pct(b['hits'] / b['commands'])} ({b['threshold']:g})"  # noqa: E731
        for s in budgeted:
            pooled = f" ({len(s['seeds'])} seeds pooled)" if "seeds" in s else ""
            lines.append(f"| {s['stream']}{pooled} | " + " | ".join(cell(b) for b in s["budgets"]) + " |")
            for one in s.get("seeds", []):
                lines.append(f"| - seed {one['seed']} | " + " | ".join(cell(b) for b in one["budgets"]) + " |")
    lines += ["", f"False accepts on other speech by source ({threshold_name} {op:g}):", "",
              "| stream | source | words | minutes | false accepts | per hour |", "|---|---|---:|---:|---:|---:|"]
    for s in report["streams"]:
        for name, b in s["operating_point"]["by_source"].items():
            if not b["words"] and not b["false_accepts"]:
                continue
            lines.append(f"| {s['stream']} | {name} | {b['words'] or '-'} | {b['seconds'] / 60:.1f} | {b['false_accepts']} | "
                         f"{_num(b['false_accepts_per_hour'])} |")
    lines += ["", f"DET: miss rate / false accepts per hour of other speech, by {threshold_name} (`*`: the operating point)", "",
              f"| {threshold_name} | " + " | ".join(s["stream"] for s in report["streams"]) + " |",
              "|---:|" + "---:|" * len(report["streams"])]
    for i, t in enumerate(c["thresholds"]):
        cells = [f"{_pct(s['sweep'][i]['miss_rate'])} / {_num(s['sweep'][i]['false_accepts_per_hour'])}" for s in report["streams"]]
        lines.append(f"| {t:g}{' *' if t == op else ''} | " + " | ".join(cells) + " |")
    sp = report["speakers"]
    lines += ["", "Speakers:"]
    for h in HALVES:
        if h not in sp["halves"]:
            continue
        x = sp["halves"][h]
        lines.append(f"- {h.upper()}: commands and `_unknown_` words of {len(x['speech_commands_v2_test_dev'])} "
                     f"speech_commands_v2_test_dev speakers ({', '.join(x['speech_commands_v2_test_dev'])}); FSDD "
                     f"{', '.join(x['fsdd'])}; {len(x['sc_v1_sample'])} speech_commands_v1_sample speakers "
                     f"({', '.join(x['sc_v1_sample'])})")
        synth = sorted({v for s in report["streams"] if s["half"] == h for k, vs in s["speakers"].items() if k.startswith("synth_") for v in vs})
        if synth:
            lines.append(f"  synthesized voices (engine:voice:variant): {', '.join(synth)}")
    lines.append(f"- trained on (not used): {len(sp['trained_on']['speech_commands_v2_test_dev'])} speech_commands_v2_test_dev "
                 f"speakers; FSDD: {sp['trained_on']['fsdd']}; speech_commands_v1_sample: {sp['trained_on']['sc_v1_sample']}")
    comp = report["compute"]
    if compute_line is None and comp.get("hops"):
        gate = c.get("gate_db")
        gated = (f"energy gate {gate:g} dB: the model ran on {100 * (1 - comp['gated_fraction']):.0f} % of the hops "
                 f"({comp['model_ms_per_call']:.2f} ms a call); " if gate else "no energy gate; ")
        compute_line = (f"compute ({comp['threads']} thread, {c.get('engine', 'torch')}): {gated}model {comp['model_ms_per_hop']:.2f} ms per hop, "
                        f"whole pipeline real-time factor {comp['pipeline_real_time_factor']:.4f} over {comp['audio_seconds'] / 60:.1f} min of audio; "
                        f"replayed smoothing equals the run at threshold {op:g}: {report['checks']['replay_equals_direct_run']}")
    if compute_line:
        lines += ["", compute_line]
    for n in report["notes"]:
        lines.append(f"note: {n}")
    return "\n".join(lines)


def det_plot(report: dict, path: str | os.PathLike, title: str | None = None, threshold_name: str = "threshold",
             marks: Sequence[float] = (0.3, 0.7, 0.8, 0.9, 0.95)) -> None:
    """The DET curves (miss rate against false accepts per hour of other speech, one line per stream)
    as a PNG, the operating point of each marked and the issue's target (<= 5 % misses at <= 2 per
    hour) shaded."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    c = report["config"]
    op = c["reject"] if "reject" in c else c["detection_threshold"]
    fig, ax = plt.subplots(figsize=(7.5, 5.2), dpi=110)
    ax.fill_between([0, 2], [0, 0], [5, 5], color="tab:green", alpha=0.15, label="target: <= 5 % missed, <= 2 FA/h")
    styles = {("test", "real"): ("tab:blue", "-"), ("dev", "real"): ("tab:blue", "--"),
              ("test", "synth"): ("tab:orange", "-"), ("dev", "synth"): ("tab:orange", "--")}
    for n, s in enumerate(report["streams"]):
        color, line = styles.get((s["half"], s["negatives"]), ("gray", ":"))
        points = [(r["false_accepts_per_hour"], 100 * r["miss_rate"]) for r in s["sweep"]
                  if r["miss_rate"] is not None and r["false_accepts_per_hour"] is not None]
        if not points:
            continue
        ax.plot(*zip(*points), line, color=color, marker=".", label=s["stream"])
        if n == 0:  # the thresholds along the first curve
            for r in s["sweep"]:
                if r["threshold"] in marks and r["miss_rate"] is not None and r["false_accepts_per_hour"] is not None:
                    ax.annotate(f"{r['threshold']:g}", (r["false_accepts_per_hour"], 100 * r["miss_rate"]), textcoords="offset points",
                                xytext=(4, 4), fontsize=7, color=color)
        p = s["operating_point"]
        if p["miss_rate"] is not None and p["false_accepts_per_hour"] is not None:
            ax.plot([p["false_accepts_per_hour"]], [100 * p["miss_rate"]], "o", color=color, markersize=9, markerfacecolor="none", markeredgewidth=2)
    ax.plot([], [], "o", color="black", markerfacecolor="none", markeredgewidth=2, label=f"defaults ({threshold_name} {op:g})")
    ax.set_xscale("symlog", linthresh=1.0)  # 0 .. 1 linear, then logarithmic: thresholds with no false accept show at 0
    ax.set_xlim(left=0)
    ax.set_ylim(0, 100)
    ax.set_xlabel("false accepts per hour of non-command speech")
    ax.set_ylabel("commands missed (%)")
    ax.set_title(title or f"Detection error trade-off, sweep of the {threshold_name}")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8, loc="upper right")
    fig.tight_layout()
    out = Path(path)
    tmp = out.with_name(f".{out.stem}.tmp{os.getpid()}.png")
    fig.savefig(tmp)
    plt.close(fig)
    os.replace(tmp, out)
