"""Training: ``speech train recipe=NAME [overrides]`` (or ``python -m speech.train recipe=NAME``).

``speech train --list-recipes`` lists the recipes (one line each); ``recipe=`` also takes a folder holding
``<folder>.yaml`` or a YAML file, so a recipe of your own needs no checkout (its ``defaults`` start with
``base``, as the bundled ones do).

Hydra is the edge: it composes ``recipes/NAME/NAME.yaml`` with the groups in ``conf/``, and
:func:`train` receives plain dataclasses. A run directory (Hydra's) holds the resolved config
(``.hydra/``), ``metrics.jsonl`` (one JSON object per epoch), TensorBoard logs (``tb/``),
``checkpoints/last.pt`` (full state, for ``trainer.resume=true``), ``checkpoints/best.pt`` and the final
self-describing ``model.pt`` (the best epoch by the validation metric; with no validation set, the epoch
of lowest training loss).

Multi-process data parallel: ``torchrun --nproc_per_node=N -m speech.train recipe=NAME hydra.run.dir=DIR``
(gloo on CPU, NCCL on GPU; give every rank the same ``hydra.run.dir``).
"""
from __future__ import annotations

import dataclasses
import json
import math
import os
import random
import shlex
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
from tqdm import tqdm

from speech.augment import SpecAugment, TempoPerturb, WaveformAugment, seed_everything
from speech.calibrate import calibrate, check_calibration
from speech.checkpoint import atomic_save, model_from_payload, model_payload, save_model
from speech.config import TrainConfig
from speech.data.loaders import build_datasets, make_loader
from speech.distill import distillation_loss, teachers_for
from speech.features import FeatureStatistics
from speech.metrics import classification_metrics, transcript_metrics
from speech.models import SpeechModel, count_parameters, expanded_head
from speech.recognizer import resolve_device
from speech.text import Vocabulary, normalize_text



# ----------------------------------------------------------------------------------------------------
# pieces of the loop
# ----------------------------------------------------------------------------------------------------
def lr_lambda(cfg: TrainConfig, total_steps: int):
    """Linear warm-up to ``optim.lr``, then cosine decay to ``min_lr_ratio`` (or constant)."""
    o = cfg.optim
    warmup = max(1, int(o.warmup_fraction * total_steps))

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        if o.schedule == "constant":
            return 1.0
        progress = min(1.0, (step - warmup) / max(1, total_steps - warmup))
        return o.min_lr_ratio + (1 - o.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * progress))

    return factor


def make_scheduler(cfg: TrainConfig, optimizer, total_steps: int):
    if cfg.optim.schedule == "onecycle":
        return torch.optim.lr_scheduler.OneCycleLR(
            optimizer, max_lr=cfg.optim.lr, total_steps=total_steps + 1, pct_start=cfg.optim.warmup_fraction)
    if cfg.optim.schedule not in ("cosine", "constant"):
        raise ValueError(f"optim.schedule must be cosine, onecycle or constant, got {cfg.optim.schedule!r}")
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lr_lambda(cfg, total_steps))


@torch.no_grad()
def compute_statistics(model: SpeechModel, loader, augment: WaveformAugment, device, batches: int) -> None:
    """Global normalization statistics from (augmented) training batches, as the model will see them."""
    stats = FeatureStatistics(model.front_end.config.dim)
    for i, batch in enumerate(loader):
        if i >= batches:
            break
        wave, lengths = augment(batch["waveform"].to(device), batch["lengths"].to(device))
        feats, n_frames = model.front_end.raw_features(wave, lengths, augment.vtlp_warps(wave.shape[0], wave.device))
        stats.update(feats, n_frames)
    model.front_end.set_statistics(*stats.result())


def loss_fn(model: SpeechModel, output, out_lengths, batch, cfg: TrainConfig, device,
            soft: torch.Tensor | None = None) -> torch.Tensor:
    """CTC or cross-entropy; with ``soft`` (the teachers' posterior ``(B, classes)``, ``trainer.distill_from``)
    mixed with the distillation loss by ``trainer.distill_weight``. A classifier's ``output`` is over its
    ``train_labels`` (``model.filler_classes`` unfolded); the teachers teach the folded posterior."""
    if model.is_ctc:
        return torch.nn.functional.ctc_loss(
            output.transpose(0, 1), batch["targets"].to(device), out_lengths, batch["target_lengths"].to(device),
            blank=0, zero_infinity=True)
    loss = torch.nn.functional.cross_entropy(  # over train_labels: the fillers are classes here
        output.float(), batch["targets"].to(device), label_smoothing=cfg.optim.label_smoothing)
    if soft is None:
        return loss
    w = cfg.trainer.distill_weight
    return (1 - w) * loss + w * distillation_loss(model.fold_fillers(output), soft, cfg.trainer.distill_temperature)


@torch.no_grad()
def validate(model: SpeechModel, loader, device, labels: list[str]) -> dict:
    """``accuracy`` (classification) or ``cer``/``wer``/``sequence_accuracy`` (CTC, greedy decoding)."""
    from speech.decode import ctc_greedy_decode

    model.eval()
    targets, predictions, refs, hyps = [], [], [], []
    vocab = Vocabulary(labels) if model.is_ctc else None
    for batch in loader:
        output, out_lengths = model(batch["waveform"].to(device), batch["lengths"].to(device))
        output, out_lengths = output.float().cpu(), out_lengths.cpu()
        if model.is_ctc:
            offsets = torch.cumsum(batch["target_lengths"], 0) - batch["target_lengths"]
            for i in range(len(output)):
                ids, _ = ctc_greedy_decode(output[i, : out_lengths[i]])
                hyps.append(vocab.decode(ids))
                a, n = int(offsets[i]), int(batch["target_lengths"][i])
                refs.append(vocab.decode(batch["targets"][a : a + n].tolist()))
        else:
            targets += model.fold_targets(batch["targets"]).tolist()
            predictions += output.argmax(-1).tolist()
    model.train()
    if model.is_ctc:
        return transcript_metrics([normalize_text(r) for r in refs], hyps)
    metrics = classification_metrics(targets, predictions, labels)
    return {"accuracy": metrics["accuracy"], "count": metrics["count"]}


def main_metric(model: SpeechModel) -> str:
    return "sequence_accuracy" if model.is_ctc else "accuracy"


def warm_start(model: SpeechModel, path: str, verbose: bool = True) -> None:
    """Copy every weight of matching name and shape from the model file at ``path``, whose front end
    must be this model's (its normalization statistics are taken over with the encoder)."""
    from speech.checkpoint import ModelFileError, load_model

    try:  # loaded as `speech transcribe` loads it: an older file's missing settings get their defaults
        source_model = load_model(path)
    except ModelFileError as err:
        raise SystemExit(f"speech train: trainer.init_from: {err}") from None
    differ = model.feature_config.differences(source_model.feature_config)
    if differ:
        raise SystemExit(f"speech train: trainer.init_from={path}: its features differ from this run's: {', '.join(differ)}")
    source = source_model.state_dict()
    own = model.state_dict()
    matched = {k: v for k, v in source.items() if k in own and own[k].shape == v.shape}
    matched.update(expanded_head(source_model, model))
    model.load_state_dict(matched, strict=False)
    if verbose:
        print(f"initialized {len(matched)}/{len(own)} tensors from {path}", file=sys.stderr)


def rng_state() -> dict:
    state = {"torch": torch.get_rng_state(), "numpy": np.random.get_state()[1].tolist(),
             "numpy_pos": int(np.random.get_state()[2]), "python": list(random.getstate()[1])}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    np.random.set_state(("MT19937", np.array(state["numpy"], dtype=np.uint32), state["numpy_pos"], 0, 0.0))
    random.setstate((3, tuple(state["python"]), None))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


# ----------------------------------------------------------------------------------------------------
# the loop
# ----------------------------------------------------------------------------------------------------
def train(cfg: TrainConfig, run_dir: str | Path) -> dict:
    """Train a model as ``cfg`` says, writing everything into ``run_dir``; returns the final metrics."""
    run_dir = Path(run_dir)
    distributed = int(os.environ.get("WORLD_SIZE", "1")) > 1
    device = torch.device(resolve_device(cfg.trainer.device))
    rank, world = 0, 1
    if distributed:
        backend = "nccl" if device.type == "cuda" else "gloo"
        dist.init_process_group(backend)
        rank, world = dist.get_rank(), dist.get_world_size()
        if device.type == "cuda":
            device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
            torch.cuda.set_device(device)
    is_main = rank == 0
    torch.set_num_threads(max(1, cfg.trainer.num_threads))
    seed_everything(cfg.trainer.seed)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True

    train_set, valid_set, test_set, labels = build_datasets(cfg)
    if train_set is None or len(train_set) == 0:
        raise SystemExit("speech train: the training manifest has no usable clips")
    model = SpeechModel(cfg.model, cfg.features, labels).to(device)
    if cfg.trainer.operating_point_far:  # said before the first epoch, not after the last
        try:
            check_calibration(cfg.trainer.operating_point_far, model.is_ctc, bool(valid_set), labels)
        except ValueError as err:
            raise SystemExit(f"speech train: trainer.operating_point_far {err}") from None
    if is_main:
        fillers = f" (and {len(cfg.model.filler_classes)} filler classes)" if cfg.model.filler_classes else ""
        print(f"model: {count_parameters(model):,} parameters; {len(labels)} {'tokens' if model.is_ctc else 'classes'}{fillers}; "
              f"train {len(train_set)}, valid {len(valid_set) if valid_set else 0}, "
              f"test {len(test_set) if test_set else 0} items; device {device}", file=sys.stderr)
    try:
        teachers = teachers_for(cfg.trainer, model, device)
    except ValueError as err:
        raise SystemExit(f"speech train: {err}") from None
    if teachers is not None and is_main:
        print(f"distilling from {len(teachers.members)} teachers: {', '.join(cfg.trainer.distill_from)}", file=sys.stderr)
    try:
        augment = WaveformAugment.from_config(cfg.augment, cfg.features.sample_rate).to(device)
    except ValueError as err:  # an empty folder, a noise recording that is not audio
        raise SystemExit(f"speech train: {err}") from None
    if augment.rirs.numel() and is_main:
        print(f"reverberation: {augment.rirs.shape[0]} room impulse responses from {cfg.augment.rir_dir}", file=sys.stderr)
    spec_augment = SpecAugment(cfg.augment)
    tempo = TempoPerturb(cfg.augment)
    train_loader, train_sampler = make_loader(train_set, cfg, True, world, rank)
    valid_loader = make_loader(valid_set, cfg, False)[0] if valid_set else None

    steps_per_epoch = len(train_loader)
    total_steps = cfg.trainer.max_steps or steps_per_epoch * cfg.trainer.max_epochs
    optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.optim.lr, betas=tuple(cfg.optim.betas),
                                  weight_decay=cfg.optim.weight_decay)
    scheduler = make_scheduler(cfg, optimizer, total_steps)
    amp_dtype = autocast_dtype(cfg.trainer.precision, device)
    scaler = torch.amp.GradScaler("cuda", enabled=amp_dtype == torch.float16 and device.type == "cuda")

    ckpt_dir = run_dir / "checkpoints"
    last_path, best_path = ckpt_dir / "last.pt", ckpt_dir / "best.pt"
    start_epoch, step, best, bad_epochs = 0, 0, -math.inf, 0
    average: dict = {}  # checkpoint averaging: {"sum": state dict, "count": epochs summed}
    if cfg.trainer.resume and last_path.is_file():
        state = torch.load(last_path, map_location="cpu", weights_only=True)
        model.load_state_dict(state["model"]["state_dict"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        scaler.load_state_dict(state["scaler"])
        start_epoch, step, best, bad_epochs = state["epoch"] + 1, state["step"], state["best"], state["bad_epochs"]
        set_rng_state(state["rng"])
        average = state.get("average", {})
        if is_main:
            print(f"resumed from {last_path} at epoch {start_epoch}", file=sys.stderr)
    else:
        if cfg.trainer.init_from:
            warm_start(model, cfg.trainer.init_from, is_main)
        if cfg.features.normalize == "global" and not cfg.trainer.init_from:
            compute_statistics(model, train_loader, augment, device, cfg.trainer.stats_batches)
        if cfg.trainer.resume and is_main:
            print(f"trainer.resume=true but {last_path} does not exist: starting a new run", file=sys.stderr)
        if is_main and (run_dir / "metrics.jsonl").is_file():  # a new run in a used directory
            os.replace(run_dir / "metrics.jsonl", run_dir / "metrics.previous.jsonl")

    net: torch.nn.Module = FeaturesToOutput(model)
    if distributed:
        net = torch.nn.parallel.DistributedDataParallel(net, device_ids=[device.index] if device.type == "cuda" else None)
    writer = None
    if is_main and cfg.trainer.tensorboard:
        try:
            from torch.utils.tensorboard import SummaryWriter

            writer = SummaryWriter(str(run_dir / "tb"))
        except ImportError:
            print("tensorboard is not installed: no TensorBoard logs", file=sys.stderr)
    metric_name = main_metric(model)
    info_base = {"recipe": cfg.recipe, "clip_seconds": cfg.data.clip_seconds, "data_root": str(cfg.data.root),
                 "seed": cfg.trainer.seed, **({"distilled_from": list(cfg.trainer.distill_from)} if teachers else {}),
                 **({"distilled_clean_channel": True} if teachers and cfg.trainer.distill_clean_channel else {})}
    for epoch in range(start_epoch, cfg.trainer.max_epochs):
        if cfg.trainer.max_steps and step >= cfg.trainer.max_steps:
            break
        train_sampler.set_epoch(epoch)
        if hasattr(train_set, "set_epoch"):
            train_set.set_epoch(epoch)
        net.train()
        progress = tqdm(total=steps_per_epoch, desc=f"epoch {epoch}", unit="batch", leave=False, dynamic_ncols=True,
                        disable=None if cfg.trainer.progress and is_main else True)  # None: on a terminal only
        t0, utts, batches = time.time(), 0, 0
        loss_sum = torch.zeros((), device=device)  # summed on the device: no GPU sync per step
        for i, batch in enumerate(train_loader):
            wave, lengths = batch["waveform"].to(device, non_blocking=True), batch["lengths"].to(device)
            with torch.no_grad():
                wave, lengths, clean_channel = augment.with_clean_channel(wave, lengths)
                warps = augment.vtlp_warps(wave.shape[0], wave.device)
                feats, n_frames = model.front_end(wave, lengths, warps)
                feats, n_frames = tempo(feats, n_frames)
                feats = spec_augment(feats)
                soft = None
                if teachers is not None and cfg.trainer.distill_clean_channel:  # see TrainerConfig
                    soft = teachers(*model.front_end(clean_channel, lengths, warps), clean_channel, lengths)
                elif teachers is not None:
                    soft = teachers(feats, n_frames, wave, lengths)
            loss = optimizer_step(net, model, feats, n_frames, batch, cfg, device, optimizer, scaler, scheduler, amp_dtype,
                                  soft)
            step += 1
            loss_sum += loss.detach()
            batches += 1
            utts += len(batch["lengths"])
            progress.update(1)
            if not progress.disable and (i % 20 == 0 or i + 1 == steps_per_epoch):  # the loss read syncs a GPU
                progress.set_postfix(loss=f"{float(loss_sum) / batches:.4f}", refresh=False)
            if cfg.trainer.max_steps and step >= cfg.trainer.max_steps:
                break
        progress.close()
        elapsed = time.time() - t0
        total_loss = float(loss_sum)
        metrics = {"epoch": epoch, "step": step, "train_loss": total_loss / max(batches, 1),
                   "lr": scheduler.get_last_lr()[0], "epoch_seconds": round(elapsed, 2),
                   "utterances_per_second": round(utts * world / max(elapsed, 1e-9), 1)}
        if is_main:
            if valid_loader is not None:
                metrics.update({f"valid_{k}": v for k, v in validate(model, valid_loader, device, labels).items()})
            current = metrics.get(f"valid_{metric_name}", -metrics["train_loss"])
            improved = current >= best  # ties go to the later epoch (further down the schedule)
            if improved:
                best, bad_epochs = current, 0
                atomic_save(model_payload(model, {**info_base, "epoch": epoch, "valid": current}), best_path)
            else:
                bad_epochs += 1
            metrics["best"] = best
            if cfg.trainer.average_last > 0 and epoch >= cfg.trainer.max_epochs - cfg.trainer.average_last:
                average = accumulate_average(average, model)
            append_jsonl(run_dir / "metrics.jsonl", metrics)
            if writer is not None:
                for k, v in metrics.items():
                    if isinstance(v, (int, float)) and k not in ("epoch", "step"):
                        writer.add_scalar(k, v, epoch)
            atomic_save({"model": model_payload(model), "optimizer": optimizer.state_dict(),
                         "scheduler": scheduler.state_dict(), "scaler": scaler.state_dict(), "epoch": epoch,
                         "step": step, "best": best, "bad_epochs": bad_epochs, "rng": rng_state(), "average": average}, last_path)
            summary = " ".join(f"{k}={v:.4f}" if isinstance(v, float) else f"{k}={v}" for k, v in metrics.items())
            print(summary, file=sys.stderr)
        stop = torch.tensor(int(cfg.trainer.early_stopping_patience > 0 and bad_epochs >= cfg.trainer.early_stopping_patience))
        if distributed:
            dist.broadcast(stop, 0)
        if stop.item():
            if is_main:
                print(f"early stopping: no improvement in {bad_epochs} epochs", file=sys.stderr)
            break

    results: dict = {}
    rank_checksums = None
    if distributed:  # every rank must end with the same weights: compare a checksum of each
        flat = torch.cat([p.detach().double().flatten().cpu() for p in model.parameters()])
        local = torch.tensor([float(flat.sum()), float((flat * torch.arange(len(flat), dtype=torch.float64)).sum())])
        local = local.to(device)
        gathered = [torch.zeros_like(local) for _ in range(world)]
        dist.all_gather(gathered, local)
        rank_checksums = [g.cpu().tolist() for g in gathered]
    if is_main:
        if cfg.trainer.average_last > 0 and not average:
            print(f"trainer.average_last={cfg.trainer.average_last}: training ended before the averaging window; "
                  "keeping the best epoch", file=sys.stderr)
        if average:
            if average["count"] < cfg.trainer.average_last:  # early stopping or max_steps ended it sooner
                print(f"trainer.average_last={cfg.trainer.average_last}: only {average['count']} epoch(s) "
                      "reached the averaging window; the model averages those", file=sys.stderr)
            payload = model_payload(model, {"averaged_epochs": average["count"]})
            payload["state_dict"] = {k: (v / average["count"]).to(payload["state_dict"][k].dtype)
                                     for k, v in average["sum"].items()}
        elif best_path.is_file():
            payload = torch.load(best_path, map_location="cpu", weights_only=True)
        else:
            payload = model_payload(model)
        final = model_from_payload(payload, best_path).to(device)
        chosen_by = f"valid_{metric_name}" if valid_loader is not None else "train_loss"
        results = {"best_epoch": payload["info"].get("epoch"), chosen_by: best if valid_loader is not None else -best,
                   "parameters": count_parameters(final), "labels": labels}
        if average:
            results["averaged_epochs"] = average["count"]
        if rank_checksums is not None:
            results["world_size"], results["rank_weight_checksums"] = world, rank_checksums
        if test_set is not None and cfg.trainer.evaluate_test:
            test_loader = make_loader(test_set, cfg, False)[0]
            results.update({f"test_{k}": v for k, v in validate(final, test_loader, device, labels).items()})
        info = {**info_base, **{k: v for k, v in results.items() if k != "labels"},
                "config": json.loads(json.dumps(dataclasses.asdict(cfg)))}
        if cfg.trainer.operating_point_far > 0:
            try:
                info["operating_point"] = results["operating_point"] = calibrate(
                    final, valid_loader, device, labels, cfg.trainer.operating_point_far,
                    f"validation split of {cfg.data.root}")
            except ValueError as err:  # e.g. a validation set without command clips: the model is still saved
                print(f"operating point: not saved ({err})", file=sys.stderr)
        save_model(final.cpu(), run_dir / "model.pt", info)
        append_jsonl(run_dir / "metrics.jsonl", {"final": True, **{k: v for k, v in results.items()
                                                                  if k not in ("labels", "rank_weight_checksums")}})
        (run_dir / "results.json").write_text(json.dumps(results, indent=2))
        print(f"model written to {run_dir / 'model.pt'}; " +
              " ".join(f"{k}={v:.4f}" for k, v in results.items() if isinstance(v, float)), file=sys.stderr)
        if writer is not None:
            writer.close()
    if distributed:
        dist.barrier()
        dist.destroy_process_group()
    return results


def accumulate_average(average: dict, model: SpeechModel) -> dict:
    """Add the model's current weights to a running sum (float64 on the CPU) for checkpoint averaging."""
    state = {k: v.detach().to("cpu", torch.float64) for k, v in model.state_dict().items()}
    if not average:
        return {"sum": state, "count": 1}
    return {"sum": {k: average["sum"][k] + v for k, v in state.items()}, "count": average["count"] + 1}


def autocast_dtype(precision: str, device: torch.device) -> torch.dtype | None:
    """``trainer.precision`` -> the autocast dtype, or None for float32: ``auto`` is fp16 on CUDA and
    float32 on the CPU; ``bf16`` also works on the CPU (about 1.3x faster a step on AVX-512 BF16 CPUs)."""
    if str(precision) == "auto":
        precision = "16" if device.type == "cuda" else "32"
    if str(precision) not in ("32", "16", "bf16"):
        raise ValueError(f"trainer.precision must be auto, 32, 16 or bf16, got {precision!r}")
    return {"16": torch.float16, "bf16": torch.bfloat16}.get(str(precision))


def optimizer_step(net, model: SpeechModel, feats, n_frames, batch: dict, cfg: TrainConfig, device, optimizer,
                   scaler, scheduler, amp_dtype, soft: torch.Tensor | None = None) -> torch.Tensor:
    """One training step from (augmented, normalized) features: forward under autocast when ``amp_dtype``,
    loss (``soft``: the teachers' posterior, see :func:`loss_fn`), scaled backward, gradient clipping,
    optimizer and schedule step. Returns the loss (on the device)."""
    with torch.autocast(device.type, dtype=amp_dtype or torch.float32, enabled=amp_dtype is not None):
        output, out_lengths = net(feats, n_frames)
        loss = loss_fn(model, output, out_lengths, batch, cfg, device, soft)
    optimizer.zero_grad(set_to_none=True)
    scaler.scale(loss).backward()
    scaler.unscale_(optimizer)
    torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.optim.grad_clip)
    scaler.step(optimizer)
    scaler.update()
    scheduler.step()
    return loss.detach()


class FeaturesToOutput(torch.nn.Module):
    """The trainable part of a model (encoder + head) as one module, for DDP to wrap: features are
    computed and augmented before it, outside the gradient."""

    def __init__(self, model: SpeechModel):
        super().__init__()
        self.model = model

    def forward(self, feats: torch.Tensor, n_frames: torch.Tensor):
        return self.model.forward_features(feats, n_frames, fold=False)


def append_jsonl(path: Path, row: dict) -> None:
    with open(path, "a", encoding="utf-8") as f:
        f.write(json.dumps(row) + "\n")
        f.flush()
        os.fsync(f.fileno())


# ----------------------------------------------------------------------------------------------------
# Hydra entry
# ----------------------------------------------------------------------------------------------------
def _hydra_argv(argv: list[str]) -> list[str]:
    """``recipe=NAME`` (or a folder or YAML file) -> Hydra's ``--config-dir FOLDER --config-name NAME``."""
    from speech.config import RecipeError, find_recipe

    out, recipe = [], None
    for a in argv:
        if a.startswith("recipe=") and not recipe:
            recipe = a.split("=", 1)[1]
        else:
            out.append(a)
    if recipe is None:
        return out
    try:
        found = find_recipe(recipe)
    except RecipeError as err:
        raise SystemExit(f"speech train: {err}") from None
    return ["--config-dir", str(found.parent), "--config-name", found.stem] + out


def print_recipes() -> int:
    """``speech train --list-recipes``: one line per recipe (name, description)."""
    from speech.config import list_recipes

    recipes = list_recipes()
    width = max((len(name) for name, _, _ in recipes), default=0)
    for name, _, description in recipes:
        print(f"{name:<{width}}  {description}")
    return 0


def main_argv(argv: list[str]) -> int:
    """Entry for ``speech train``: Hydra parses ``argv`` (overrides, ``--multirun``, ``--cfg job``...)."""
    import hydra
    from hydra.core.hydra_config import HydraConfig
    from omegaconf import OmegaConf

    from speech.config import conf_dir, project_root, register_configs, to_dataclass

    if "--list-recipes" in argv:
        return print_recipes()
    if not OmegaConf.has_resolver("speech_root"):
        OmegaConf.register_new_resolver("speech_root", lambda: str(project_root()))
    if not OmegaConf.has_resolver("speech_arg"):  # a list as one shell-quoted, comma-joined argument
        OmegaConf.register_new_resolver("speech_arg", lambda items: shlex.quote(",".join(str(i) for i in items)))
    register_configs()
    if any(a in ("-h", "--help") for a in argv) and not any(a.startswith("recipe=") for a in argv):
        print(__doc__)
    results: list[dict] = []

    @hydra.main(version_base="1.3", config_path=str(conf_dir()), config_name="base")
    def _run(cfg) -> None:
        run_dir = HydraConfig.get().runtime.output_dir
        results.append(train(to_dataclass(cfg), run_dir))

    saved = sys.argv
    sys.argv = ["speech train"] + _hydra_argv(argv)
    try:
        _run()
    finally:
        sys.argv = saved
    return 0


if __name__ == "__main__":
    sys.exit(main_argv(sys.argv[1:]))
