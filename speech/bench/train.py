"""``speech bench train``: training throughput of speech.train's data path (DecodedAudioCache,
BucketingBatchSampler, batched augmentation and features) against a plain per-item DataLoader loop with the
same model and optimizer (``train_worker``, one process per run), plus the Speech Commands-size memory
check of :mod:`speech.bench.train_memory`. ``benchmark_train`` returns the result dict, ``format_train``
its markdown.
"""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from speech.bench.measure import (
    SPEECH_COMMANDS_TEST, command_line, fit_clip, fsdd_files, load_now, machine_info, machine_line,
    markdown_table, median, paired_ratio, print_report, run_worker, set_threads, shared_data_dir,
    speech_commands_files,
)
from speech.bench.train_memory import memory_check, memory_lines

SPEECH_COMMANDS_V2_TRAIN_CLIPS = 84_843  # the v0.02 training split (validation/testing lists removed)


def _augment_config(name: str, data_dir: str | None):
    """``default`` (AugmentConfig()) or ``strong`` (conf/augment/strong.yaml, noise from the shared data)."""
    import dataclasses

    from speech.augment import AugmentConfig

    if name == "default":
        return AugmentConfig()
    if name != "strong":
        raise ValueError(f"augment must be default or strong, got {name!r}")
    from omegaconf import OmegaConf

    from speech.config import conf_dir

    raw = OmegaConf.to_container(OmegaConf.load(conf_dir() / "augment" / "strong.yaml"), resolve=False)
    fields = {f.name for f in dataclasses.fields(AugmentConfig)}
    values = {k: v for k, v in raw.items() if k in fields and k != "noise_dir"}
    if "speeds" in values:
        values["speeds"] = tuple(values["speeds"])
    values["noise_dir"] = str(Path(data_dir or shared_data_dir()) / "background_noise")
    return AugmentConfig(**values)


def train_worker(p: dict) -> dict:
    """One timed training run in this process: ``which`` = ``ours`` or ``reference``."""
    import numpy as np
    import torch

    set_threads(p["threads"])
    from speech.augment import SpecAugment, WaveformAugment, seed_everything
    from speech.config import TrainConfig
    from speech.data.dataset import AudioDataset
    from speech.data.manifest import read_manifest
    from speech.models import ModelConfig, SpeechModel
    from speech.data.loaders import make_loader
    from speech.train import FeaturesToOutput, autocast_dtype, make_scheduler, optimizer_step

    rows = read_manifest(p["manifest"])
    labels = sorted({r.label for r in rows})
    index = {l: i for i, l in enumerate(labels)}
    cfg = TrainConfig()
    cfg.model = ModelConfig(**p.get("model", {}))
    cfg.data.batch_size, cfg.data.num_workers, cfg.data.clip_seconds = p["batch_size"], p["workers"], p["clip_seconds"]
    cfg.augment = _augment_config(p["augment"], p.get("data_dir"))
    sr = cfg.features.sample_rate
    seed_everything(cfg.trainer.seed)
    device = torch.device(p["device"])
    model = SpeechModel(cfg.model, cfg.features, labels).to(device)
    net = FeaturesToOutput(model)
    optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.optim.lr, betas=tuple(cfg.optim.betas),
                                  weight_decay=cfg.optim.weight_decay)
    steps_per_epoch = -(-len(rows) // cfg.data.batch_size)
    scheduler = make_scheduler(cfg, optimizer, steps_per_epoch * (p["epochs"] + 1))
    # the reference trains as speech.train does by default (trainer.precision=auto); ours with --precision
    amp_dtype = autocast_dtype(p.get("precision", "auto") if p["which"] == "ours" else "auto", device)
    scaler = torch.amp.GradScaler("cuda", enabled=amp_dtype == torch.float16 and device.type == "cuda")
    cache_build_s = 0.0

    def sync():
        if device.type == "cuda":
            torch.cuda.synchronize()

    if p["which"] == "ours":
        start = time.perf_counter()
        dataset = AudioDataset(rows, sr, lambda u: index[u.label], p["clip_seconds"], None)
        cache_build_s = time.perf_counter() - start
        loader, sampler = make_loader(dataset, cfg, True)
        augment = WaveformAugment.from_config(cfg.augment, sr).to(device)
        spec_augment = SpecAugment(cfg.augment)

        def batches(epoch: int):  # speech.train's loop, up to the features
            sampler.set_epoch(epoch)
            for batch in loader:
                wave, lengths = batch["waveform"].to(device, non_blocking=True), batch["lengths"].to(device)
                with torch.no_grad():
                    wave, lengths = augment(wave, lengths)
                    feats, n_frames = model.front_end(wave, lengths)
                    feats = spec_augment(feats)
                yield feats, n_frames, batch["targets"]
    else:
        dataset = _ReferenceDataset(rows, index, sr, p["clip_seconds"], cfg.features, p["reference_features"])
        generator = torch.Generator().manual_seed(cfg.trainer.seed)
        loader = torch.utils.data.DataLoader(dataset, batch_size=cfg.data.batch_size, shuffle=True,
                                             num_workers=p["workers"], collate_fn=_pad_features, generator=generator)
        mean, std = model.front_end.mean, model.front_end.std

        def batches(epoch: int):
            for feats, n_frames, targets in loader:
                feats, n_frames = feats.to(device), n_frames.to(device)
                yield (feats - mean) / std, n_frames, targets

    def step(feats, n_frames, targets):  # speech.train's loop, from the features on
        return float(optimizer_step(net, model, feats, n_frames, {"targets": targets}, cfg, device, optimizer,
                                    scaler, scheduler, amp_dtype))

    net.train()
    step(*next(iter(batches(10_000))))  # warm-up step (allocations), not timed
    sync()
    data_s = model_s = 0.0
    utts = steps = 0
    losses = []
    wall_start = time.perf_counter()
    for epoch in range(p["epochs"]):
        it = iter(batches(epoch))
        while True:
            t0 = time.perf_counter()
            try:
                feats, n_frames, targets = next(it)
            except StopIteration:
                break
            sync()
            t1 = time.perf_counter()
            losses.append(step(feats, n_frames, targets))
            sync()
            t2 = time.perf_counter()
            data_s += t1 - t0
            model_s += t2 - t1
            utts += len(targets)
            steps += 1
    wall = time.perf_counter() - wall_start
    return {"which": p["which"], "device": str(device), "utterances": utts, "steps": steps, "epochs": p["epochs"],
            "loop_s": wall, "epoch_s": wall / p["epochs"], "utterances_per_second": utts / wall,
            "data_s": data_s, "model_s": model_s, "cache_build_s": cache_build_s,
            "mean_loss": float(np.mean(losses)) if losses else None}


class _ReferenceDataset:
    """The plain way: each item decodes its file (``librosa.load``, resampling with soxr) and computes
    its own log-mel (torchaudio's ``MelSpectrogram`` or librosa's), every epoch."""

    def __init__(self, rows, index, sample_rate, clip_seconds, features, backend: str):
        import torch
        import torchaudio

        self.rows, self.index, self.sample_rate, self.backend = rows, index, sample_rate, backend
        self.clip_samples = int(round(clip_seconds * sample_rate)) if clip_seconds else None
        self.features = features
        if backend == "torchaudio":
            self.mel = torchaudio.transforms.MelSpectrogram(
                sample_rate, n_fft=features.n_fft, win_length=features.win_length, hop_length=features.hop_length,
                f_min=features.f_min, f_max=features.f_max, n_mels=features.n_mels, window_fn=torch.hann_window,
                power=2.0, center=True, pad_mode="constant", norm="slaney", mel_scale="slaney")
        elif backend != "librosa":
            raise ValueError(f"reference features must be torchaudio or librosa, got {backend!r}")

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, i: int):
        import librosa
        import numpy as np
        import torch

        f = self.features
        y, _ = librosa.load(self.rows[i].audio_filepath, sr=self.sample_rate)
        if self.clip_samples:
            y = fit_clip(y, self.clip_samples)
        if self.backend == "torchaudio":
            mel = self.mel(torch.from_numpy(np.ascontiguousarray(y)))
        else:
            mel = torch.from_numpy(librosa.feature.melspectrogram(
                y=y, sr=self.sample_rate, n_fft=f.n_fft, hop_length=f.hop_length, win_length=f.win_length,
                center=True, pad_mode="constant", n_mels=f.n_mels, fmin=f.f_min, fmax=f.f_max or self.sample_rate / 2))
        feats = 10.0 * torch.log10(torch.clamp(mel, min=1e-10))
        return feats.T.contiguous(), self.index[self.rows[i].label]


def _pad_features(batch):
    import torch

    n_frames = torch.tensor([len(x) for x, _ in batch])
    feats = torch.zeros(len(batch), int(n_frames.max()), batch[0][0].shape[1])
    for i, (x, _) in enumerate(batch):
        feats[i, : len(x)] = x
    return feats, n_frames, torch.tensor([t for _, t in batch])


def benchmark_train(
    clips: int = 320,
    batch_size: int = 32,
    epochs: int = 1,
    repeats: int = 3,
    threads: int = 1,
    workers: int = 0,
    data: str = "speech_commands",
    augment: str = "default",
    reference_features: str = "torchaudio",
    model: dict | None = None,
    memory_clips: int = 105_000,
    float_clips: int = 10_000,
    build_clips: int = 4_000,
    gpu: bool = True,
    data_dir: str | None = None,
    work_dir: str | None = None,
    precision: str = "auto",
) -> dict:
    """Training throughput of speech.train's data path (DecodedAudioCache, BucketingBatchSampler, batched
    augmentation and features) against a plain per-item loop (decode + features per item in a standard
    DataLoader), with the same model (``ModelConfig()`` + log-mel 40 unless ``model`` overrides fields),
    optimizer and loss, each run in its own process (``repeats`` times, alternating). Then the memory
    check: a ``memory_clips`` x 1 s DecodedAudioCache memmap read through one epoch of loading."""
    import torch

    set_threads(threads)
    info = machine_info()
    files = speech_commands_files(data_dir, clips) if data == "speech_commands" else fsdd_files(data_dir, clips)
    clip_seconds = 1.0 if data == "speech_commands" else None
    own_tmp = tempfile.TemporaryDirectory(prefix="speech-bench-train-", dir=work_dir)
    tmp = Path(own_tmp.name)
    try:
        import soundfile as sf

        from speech.data.manifest import Utterance, write_manifest

        manifest = tmp / "train.jsonl"
        write_manifest(manifest, [Utterance(p, sf.info(p).duration, label) for p, label in files])
        devices = ["cpu"] + (["cuda"] if gpu and torch.cuda.is_available() else [])
        runs: dict[str, dict[str, list[dict]]] = {}
        for device in devices:
            runs[device] = {"reference": [], "ours": []}
            for r in range(repeats):
                for which in (("reference", "ours") if r % 2 == 0 else ("ours", "reference")):
                    params = {"which": which, "manifest": str(manifest), "batch_size": batch_size, "epochs": epochs,
                              "threads": threads, "workers": workers, "device": device, "clip_seconds": clip_seconds,
                              "augment": augment, "reference_features": reference_features, "model": model or {},
                              "data_dir": data_dir, "precision": precision}
                    runs[device][which].append(run_worker("train-worker", params, threads))
        summary = {device: _summarize_train(r) for device, r in runs.items()}
        memory = None
        if memory_clips > 0:
            memory = memory_check(memory_clips, float_clips, build_clips, [p for p, _ in files], manifest,
                                  batch_size, tmp)
    finally:
        own_tmp.cleanup()
    return {
        "benchmark": "train", "machine": info, "load_after": load_now(),
        "params": {"clips": len(files), "batch_size": batch_size, "epochs": epochs, "repeats": repeats,
                   "threads": threads, "workers": workers, "augment": augment, "reference_features": reference_features,
                   "precision": precision,
                   "data": f"{SPEECH_COMMANDS_TEST} (1 s, 16 kHz)" if data == "speech_commands"
                   else "fsdd (8 kHz, resampled to 16 kHz, 0.2-2 s)",
                   "model": model or "ModelConfig() defaults", "features": "log-mel 40 (FeatureConfig() defaults)"},
        "summary": summary, "gpu": "cuda" in summary, "runs": runs, "memory": memory,
        "ratio": summary["cpu"]["ratio"], "target_ratio": 5.0,
    }


def _summarize_train(runs: dict[str, list[dict]]) -> dict:
    out: dict = {}
    for which, rs in runs.items():
        utts = rs[0]["utterances"]
        out[which] = {
            "utterances_per_second": median(r["utterances_per_second"] for r in rs),
            "epoch_s": median(r["epoch_s"] for r in rs),
            "data_ms_per_clip": 1000 * median(r["data_s"] / r["utterances"] for r in rs),
            "model_ms_per_clip": 1000 * median(r["model_s"] / r["utterances"] for r in rs),
            "data_fraction": median(r["data_s"] / (r["data_s"] + r["model_s"]) for r in rs),
            "cache_build_s": median(r["cache_build_s"] for r in rs),
            "peak_rss_mb": max(r["vmhwm_mb"] or 0 for r in rs),
            "utterances_per_epoch": utts,
        }
        out[which]["speech_commands_epoch_min"] = SPEECH_COMMANDS_V2_TRAIN_CLIPS / out[which]["utterances_per_second"] / 60
    ref, ours = runs["reference"], runs["ours"]
    out["ratio"] = paired_ratio([r["loop_s"] / r["utterances"] for r in ref], [r["loop_s"] / r["utterances"] for r in ours])
    out["data_ratio"] = paired_ratio([r["data_s"] / r["utterances"] for r in ref], [r["data_s"] / r["utterances"] for r in ours])
    return out


def format_train(result: dict) -> str:
    p = result["params"]
    out = [f"### train: utterances per second, speech.train's data path vs a plain per-item loop", "",
           f"Machine: {machine_line(result['machine'], result.get('load_after'))}.",
           f"Data: {p['clips']} clips of {p['data']}; batch {p['batch_size']}, {p['epochs']} epoch(s) per run after one "
           f"warm-up step; model {p['model']}, {p['features']}; AdamW; DataLoader workers {p['workers']}; augment "
           f"'{p['augment']}' (ours only); each run in its own process, {p['repeats']} alternating repeats, medians.", ""]
    for device, s in result["summary"].items():
        rows = []
        for which, name in (("reference", f"reference: librosa.load + {p['reference_features']} log-mel per item"),
                            ("ours", "ours: DecodedAudioCache + BucketingBatchSampler + batched augment/features"
                             + (f", precision {p['precision']}" if str(p.get("precision", "auto")) != "auto" else ""))):
            r = s[which]
            rows.append([name, r["utterances_per_second"], r["epoch_s"],
                         r["speech_commands_epoch_min"] if p["data"].startswith(SPEECH_COMMANDS_TEST) else None,
                         r["data_ms_per_clip"], r["model_ms_per_clip"], f"{100 * r['data_fraction']:.0f} %",
                         r["cache_build_s"] if which == "ours" else None, r["peak_rss_mb"]])
        out += [f"Device: {device}", "",
                markdown_table(["loop", "utt/s", f"epoch s ({s['ours']['utterances_per_epoch']} clips)",
                                "epoch min (SC v2 train, 84,843 clips, extrapolated)", "data ms/clip", "model ms/clip",
                                "data share of a step", "decode once s", "peak RSS MB"], rows), "",
                f"Ours / reference, whole loop: **{s['ratio']:.2f}x** (target >= {result['target_ratio']:.0f}x: "
                f"{'met' if s['ratio'] >= result['target_ratio'] else 'NOT met'}); data path alone: "
                f"**{s['data_ratio']:.1f}x**. The model (forward, backward, optimizer) is "
                f"{100 * (1 - s['reference']['data_fraction']):.0f} % of a reference step and "
                f"{100 * (1 - s['ours']['data_fraction']):.0f} % of ours: with the model's cost per clip unchanged, "
                f"even a free data path would give at most {1 / (1 - s['reference']['data_fraction']):.2f}x on this "
                f"device." + _model_cost_note(s, p.get("precision", "auto"), device), ""]
    if not result["gpu"]:
        out += ["GPU: no GPU here (the same code runs with device cuda when torch.cuda.is_available()).", ""]
    if result.get("memory"):
        out += memory_lines(result["memory"], result["params"]["batch_size"])
    return "\n".join(out)


def _model_cost_note(s: dict, precision: str = "auto", device: str = "cpu") -> str:
    ratio = s["reference"]["model_ms_per_clip"] / max(s["ours"]["model_ms_per_clip"], 1e-9)
    if 0.9 <= ratio <= 1.1:
        return ""
    reference = "16" if device.startswith("cuda") else "32"  # trainer.precision=auto
    if str(precision) not in ("auto", reference):
        why = f" (ours trains with precision {precision}, the reference with {reference})."
    elif ratio > 1:
        why = " (BucketingBatchSampler batches clips of similar length, so less padding runs through the GRU)."
    else:
        why = "."
    return f" Here the model step itself costs {ratio:.2f}x less per clip in ours" + why


def add_train_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = ("Training throughput: speech.train's data path against a plain per-item DataLoader loop, "
                          "same model and optimizer; and a Speech Commands-size memory check.")
    parser.add_argument("--clips", type=int, default=320, help="real clips in the training set (default: 320)")
    parser.add_argument("--batch-size", type=int, default=32, help="(default: 32, DataConfig's)")
    parser.add_argument("--epochs", type=int, default=1, help="timed epochs per run (default: 1)")
    parser.add_argument("--repeats", type=int, default=3, help="runs of each loop, alternating (default: 3)")
    parser.add_argument("--threads", type=int, default=1, help="torch and BLAS threads per process (default: 1)")
    parser.add_argument("--workers", type=int, default=0, help="DataLoader worker processes, both loops (default: 0)")
    parser.add_argument("--data", choices=("speech_commands", "fsdd"), default="speech_commands",
                        help="speech_commands: 1 s 16 kHz clips of the v2 test part; fsdd: 8 kHz digits (resampled)")
    parser.add_argument("--augment", choices=("default", "strong"), default="default",
                        help="our loop's augmentation: AugmentConfig() or conf/augment/strong.yaml (default: default)")
    parser.add_argument("--reference-features", choices=("torchaudio", "librosa"), default="torchaudio",
                        help="per-item features of the reference loop (default: torchaudio)")
    parser.add_argument("--memory-clips", type=int, default=105_000,
                        help="clips of the simulated Speech Commands-size cache; 0 skips the memory check (default: 105000)")
    parser.add_argument("--float-clips", type=int, default=10_000,
                        help="float32 copies held to measure their cost per clip (default: 10000)")
    parser.add_argument("--build-clips", type=int, default=4_000,
                        help="real clips decoded into a new cache to measure the build's peak; 0 skips (default: 4000)")
    parser.add_argument("--no-gpu", action="store_true", help="CPU only even when CUDA is available")
    parser.add_argument("--precision", choices=("auto", "32", "16", "bf16"), default="auto",
                        help="our loop's trainer.precision (the reference keeps auto: fp16 on CUDA, float32 on CPU)")
    parser.add_argument("--data-dir", help="shared data folder (default: $SPEECH_DATA_DIR or ../shared/data)")
    parser.add_argument("--work-dir", help="where the temporary manifest and the simulated cache go (default: $TMPDIR)")
    parser.add_argument("--json", metavar="FILE", help="also write the result dict as JSON")


def run_train(args: argparse.Namespace) -> int:
    result = benchmark_train(args.clips, args.batch_size, args.epochs, args.repeats, args.threads, args.workers,
                             args.data, args.augment, args.reference_features, None, args.memory_clips,
                             args.float_clips, args.build_clips, not args.no_gpu, args.data_dir, args.work_dir,
                             args.precision)
    result["command"] = command_line("python tools/bench_train.py", args, skip=("json", "work_dir"))
    return print_report(result, format_train, args.json)

