"""``speech export``: a model, front end included, written as ONNX or TorchScript.

The exported graph takes raw audio: inputs ``waveform (batch, samples)`` float32 and ``lengths
(batch,)`` int64, outputs ``output`` (logits ``(batch, classes)`` or CTC log-probabilities ``(batch,
frames, vocab + 1)``) and ``output_lengths (batch,)``; batch and samples (and CTC frames) are dynamic.
The STFT runs as a ``conv1d`` with a windowed DFT basis (``FrontEnd.use_conv_stft``), because
``torch.stft`` does not export to ONNX.

The model's description (labels, head, sample rate, vocabulary unit, model and feature configs, info) is
stored as JSON inside the file: in the ONNX model's ``metadata_props`` under the key ``speech``, and in
the TorchScript archive as the extra file ``speech.json``. So ``speech transcribe --model model.onnx``
(or ``model.ts``) needs nothing else: :mod:`speech.backends` reads and runs them.

TorchScript is made with ``torch.jit.trace`` (the model has no data-dependent Python control flow:
lengths are handled with masks and gathers, so a trace is valid for any batch and length); after
tracing, the traced module is run on a batch of another size and other lengths and compared with the
PyTorch model (the dynamic-length check). The ONNX file is checked the same way in onnxruntime.
Files are written atomically (temp file, then rename), and only after the check passed.

``speech export --bundled`` regenerates the ONNX copy of the bundled classifier,
``speech/pretrained/commands.onnx``, from ``speech/pretrained/commands.pt`` (run it after every retrain of
that model: ``tests/test_lite.py`` fails while the copy is older). The copy holds the SHA-256 of the model
file it was made from (metadata ``source``), so :mod:`speech.lite` uses it only in place of that file, and
its DFT basis is computed in the graph instead of stored (:func:`compute_dft_basis_in_graph`: 1 MB less).
"""
from __future__ import annotations

import argparse
import copy
import dataclasses
import importlib.util
import io
import json
import math
import os
import sys
import warnings
from contextlib import contextmanager
from pathlib import Path

import torch

from speech.backends import EXTRA_FILE, INPUT_NAMES, METADATA_KEY, OUTPUT_NAMES, OnnxBackend, TorchScriptBackend

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
PROG = "speech export"
EXPORT_FORMAT = "speech-export"
EXPORT_VERSION = 1
CHECK_TOLERANCE = 1e-3  # max abs difference on logits / log-probabilities accepted by the export check
SUFFIXES = {".onnx": "onnx", ".ts": "torchscript"}

EPILOG = """\
The exported model includes the front end and takes raw audio at the model's sample rate:
  inputs  waveform (batch, samples) float32, lengths (batch,) int64
  outputs output (logits (batch, classes) or CTC log-probs (batch, frames, vocab+1)), output_lengths (batch,)
Labels, head, sample rate and feature settings are stored inside the file, so
'speech transcribe --model model.onnx' (or model.ts) works with nothing else.
--format defaults from the --out suffix: .onnx -> onnx, .ts -> torchscript.

speech export --bundled   regenerates speech/pretrained/commands.onnx from speech/pretrained/commands.pt
                          (run it after retraining that model; speech transcribe runs the copy without torch)

exit status:
  0    exported and checked
  1    export failed, or the exported model does not match the PyTorch model
  2    usage error: bad option or model file, missing onnx/onnxruntime
"""


class ExportError(RuntimeError):
    """Export failed or the exported model disagrees with PyTorch; ``str(err)`` is one line."""


# --------------------------------------------------------------------------------------- metadata
def export_metadata(model) -> dict:
    """The JSON-able description stored inside an exported file."""
    return {
        "format": EXPORT_FORMAT,
        "version": EXPORT_VERSION,
        "labels": list(model.labels),
        "head": model.config.head,
        "sample_rate": int(model.sample_rate),
        "vocabulary": model.config.vocabulary,
        "model_config": dataclasses.asdict(model.config),
        "feature_config": dataclasses.asdict(model.feature_config),
        "info": dict(getattr(model, "info", {}) or {}),
        "inputs": INPUT_NAMES,
        "outputs": OUTPUT_NAMES,
    }


def _metadata_json(model, extra: dict | None = None) -> str:
    return json.dumps({**export_metadata(model), **(extra or {})}, ensure_ascii=False, default=str)


def compute_dft_basis_in_graph(proto, front_end) -> bool:
    """Replace, in an exported ONNX graph ``proto``, the constant the trace folds the conv STFT's windowed
    DFT basis into (``(2 * n_freqs, 1, n_fft)`` float32: 1 MB for ``n_fft`` 512, a third of the default
    model's file) by nodes that compute it from the window ``(n_fft,)``. ``FrontEnd._conv_power_spectrum``
    takes ``cos`` and ``-sin`` of ``(2 pi / n_fft) * (k n mod n_fft)`` for ``k < n_freqs``, ``n < n_fft``;
    ``k n mod n_fft`` takes only ``n_fft`` values, so the graph evaluates both at those ``n_fft`` angles and
    gathers the ``(n_freqs, n_fft)`` rows from the two tables: the same float32 values, cheap for
    onnxruntime to fold back into a constant when it loads the file. Returns False (the graph unchanged)
    when no constant of that shape holds that basis."""
    import numpy as np
    from onnx import helper, numpy_helper

    n_fft = int(front_end.n_fft)
    n_freqs = n_fft // 2 + 1
    window = front_end.window.detach().cpu().numpy().astype(np.float32)
    index = (np.arange(n_freqs, dtype=np.int64)[:, None] * np.arange(n_fft, dtype=np.int64)[None, :]) % n_fft
    scale = np.float32(2 * math.pi / n_fft)
    angles = np.arange(n_fft, dtype=np.float32) * scale
    basis = (np.concatenate([np.cos(angles)[index], -np.sin(angles)[index]]) * window)[:, None, :]
    nodes = list(proto.graph.node)
    for position, node in enumerate(nodes):
        if node.op_type == "Constant" and len(node.attribute) == 1 and node.attribute[0].name == "value" \
                and tuple(node.attribute[0].t.dims) == basis.shape:
            if float(np.abs(numpy_helper.to_array(node.attribute[0].t) - basis).max()) <= 1e-5:
                break
    else:
        return False
    out = node.output[0]

    def name(part: str) -> str:
        return f"{out}/dft_basis/{part}"

    def constant(part: str, value) -> object:
        return helper.make_node("Constant", [], [name(part)], value=numpy_helper.from_array(np.asarray(value), name(part)))

    computed = [
        constant("k", np.arange(n_freqs, dtype=np.int64)[:, None]), constant("n", np.arange(n_fft, dtype=np.int64)[None, :]),
        constant("n_fft", np.int64(n_fft)), constant("steps", np.arange(n_fft, dtype=np.float32)),
        constant("scale", scale), constant("window", window), constant("axes", np.array([1], dtype=np.int64)),
        helper.make_node("Mul", [name("k"), name("n")], [name("kn")]),
        helper.make_node("Mod", [name("kn"), name("n_fft")], [name("index")]),
        helper.make_node("Mul", [name("steps"), name("scale")], [name("angles")]),
        helper.make_node("Cos", [name("angles")], [name("cos")]),
        helper.make_node("Sin", [name("angles")], [name("sin")]),
        helper.make_node("Neg", [name("sin")], [name("minus_sin")]),
        helper.make_node("Gather", [name("cos"), name("index")], [name("cos_rows")], axis=0),
        helper.make_node("Gather", [name("minus_sin"), name("index")], [name("minus_sin_rows")], axis=0),
        helper.make_node("Concat", [name("cos_rows"), name("minus_sin_rows")], [name("rows")], axis=0),
        helper.make_node("Mul", [name("rows"), name("window")], [name("windowed")]),
        helper.make_node("Unsqueeze", [name("windowed"), name("axes")], [out]),
    ]
    del proto.graph.node[:]
    proto.graph.node.extend(nodes[:position] + computed + nodes[position + 1 :])
    return True


# ------------------------------------------------------------------------------------------ export
@contextmanager
def _quiet_fd1():
    """Send file descriptor 1 to /dev/null: the ONNX exporter's C++ side prints the whole graph to stdout
    when it fails; our one-line error says what matters."""
    try:
        sys.stdout.flush()
        saved = os.dup(1)
    except (OSError, ValueError, AttributeError):
        yield
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 1)
        yield
    finally:
        os.dup2(saved, 1)
        os.close(saved)
        os.close(devnull)


def prepare_for_export(model) -> torch.nn.Module:
    """A CPU, eval-mode copy of ``model`` whose front end uses the exportable conv1d STFT."""
    exported = copy.deepcopy(model).cpu().eval()
    exported.front_end.use_conv_stft = True
    return exported


def example_batch(sample_rate: int, seconds: tuple[float, ...] = (1.0, 0.6), seed: int = 0):
    """A padded batch of noise clips of different lengths: ``(waveform (B, S), lengths (B,))``."""
    gen = torch.Generator().manual_seed(seed)
    lengths = torch.tensor([max(int(s * sample_rate), 400) for s in seconds], dtype=torch.long)
    waveform = torch.zeros(len(seconds), int(lengths.max()))
    for row, n in enumerate(lengths.tolist()):
        waveform[row, :n] = 0.1 * torch.randn(n, generator=gen)
    return waveform, lengths


def _compare(reference: tuple[torch.Tensor, torch.Tensor], got: tuple[torch.Tensor, torch.Tensor], what: str) -> float:
    ref_out, ref_len = reference
    out, out_len = got
    if tuple(out.shape) != tuple(ref_out.shape) or not torch.equal(out_len.long(), ref_len.long()):
        raise ExportError(
            f"{what}: output shape {tuple(out.shape)} / lengths {out_len.tolist()} differ from PyTorch's "
            f"{tuple(ref_out.shape)} / {ref_len.tolist()}"
        )
    diff = float((out.float() - ref_out.float()).abs().max()) if out.numel() else 0.0
    if not diff <= CHECK_TOLERANCE:
        raise ExportError(f"{what}: max abs difference {diff:.3g} from the PyTorch model is over {CHECK_TOLERANCE:g}")
    return diff


def _reference(model, waveform, lengths):
    with torch.inference_mode():
        out, out_len = model.cpu().eval()(waveform, lengths)
    return out.float(), out_len


def _tmp_path(path: Path) -> Path:
    return path.with_name(f".{path.name}.tmp{os.getpid()}")


def export_onnx(model, path: str | os.PathLike, *, opset: int = 17, check: bool = True, compact: bool = False,
                extra_metadata: dict | None = None) -> float | None:
    """Export ``model`` (a :class:`~speech.models.SpeechModel`) to ONNX at ``path``; returns the check's
    max abs difference from PyTorch (``None`` with ``check=False``). ``compact``: the DFT basis computed in
    the graph, not stored (:func:`compute_dft_basis_in_graph`). ``extra_metadata``: more keys for the
    stored description. Raises :class:`ExportError`."""
    import onnx

    path = Path(path)
    exported = prepare_for_export(model)
    waveform, lengths = example_batch(model.sample_rate)
    out_axes = {0: "batch", 1: "frames"} if model.is_ctc else {0: "batch"}
    buffer = io.BytesIO()
    try:
        with warnings.catch_warnings(), _quiet_fd1():
            warnings.simplefilter("ignore")
            torch.onnx.export(
                exported,
                (waveform, lengths),
                buffer,
                dynamo=False,
                input_names=INPUT_NAMES,
                output_names=OUTPUT_NAMES,
                dynamic_axes={
                    "waveform": {0: "batch", 1: "samples"},
                    "lengths": {0: "batch"},
                    "output": out_axes,
                    "output_lengths": {0: "batch"},
                },
                opset_version=opset,
                do_constant_folding=True,
            )
    except Exception as err:  # the exporter raises many types; give one line
        raise ExportError(f"ONNX export failed: {' '.join(str(err).split())[:300]}") from None
    proto = onnx.load_from_string(buffer.getvalue())
    if compact:
        compute_dft_basis_in_graph(proto, exported.front_end)
    entry = proto.metadata_props.add()
    entry.key, entry.value = METADATA_KEY, _metadata_json(model, extra_metadata)
    proto.producer_name = "speech"
    tmp = _tmp_path(path)
    try:
        onnx.save(proto, str(tmp))
        diff = None
        if check:
            backend = OnnxBackend(tmp)
            diff = _check_backend(model, backend, "ONNX")
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    return diff



def export_torchscript(model, path: str | os.PathLike, *, check: bool = True) -> float | None:
    """Trace ``model`` to TorchScript at ``path`` (metadata in the extra file ``speech.json``); returns
    the dynamic-length check's max abs difference from PyTorch. Raises :class:`ExportError`."""
    path = Path(path)
    exported = prepare_for_export(model)
    waveform, lengths = example_batch(model.sample_rate)
    try:
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")
            traced = torch.jit.trace(exported, (waveform, lengths), check_trace=False)
    except Exception as err:
        raise ExportError(f"TorchScript trace failed: {' '.join(str(err).split())[:300]}") from None
    tmp = _tmp_path(path)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)  # "torch.jit.save is deprecated"
            torch.jit.save(traced, str(tmp), _extra_files={EXTRA_FILE: _metadata_json(model)})
        diff = None
        if check:
            diff = _check_backend(model, TorchScriptBackend(tmp), "TorchScript")
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    return diff


def export_bundled(check: bool = True) -> list[tuple[Path, object, float | None]]:
    """Regenerate the ONNX copy of each bundled classifier (:data:`speech.lite.BUNDLED`:
    ``speech/pretrained/commands.onnx`` from ``commands.pt``), compact, with the SHA-256 of the model file
    in its metadata (``source``). Returns ``(path written, model, check difference)`` per copy; raises
    :class:`~speech.checkpoint.ModelFileError` or :class:`ExportError`."""
    from speech.checkpoint import load_model
    from speech.lite import BUNDLED, PRETRAINED_DIR, sha256_of

    written = []
    for pt_name, onnx_name in BUNDLED.values():
        source = PRETRAINED_DIR / pt_name
        model = load_model(source)
        if model.is_ctc:
            raise ExportError(f"{source}: a CTC model; the torch-free path runs classifiers only")
        out = PRETRAINED_DIR / onnx_name
        diff = export_onnx(model, out, check=check, compact=True,
                           extra_metadata={"source": {"file": pt_name, "sha256": sha256_of(source)}})
        written.append((out, model, diff))
    return written


def _check_backend(model, backend, what: str) -> float:
    """Run the exported model on batches of other sizes and lengths than the trace's; compare with PyTorch."""
    worst = 0.0
    for seconds, seed in (((1.3, 0.45, 0.8), 1), ((0.3,), 2)):
        waveform, lengths = example_batch(model.sample_rate, seconds, seed)
        try:
            got = backend(waveform, lengths)
        except Exception as err:  # e.g. a shape baked into the graph by the trace
            cause = " ".join(str(err).split())[-300:]
            raise ExportError(f"{what}: the exported model fails on a batch of {len(seconds)} clip(s) of other lengths ({cause})") from None
        worst = max(worst, _compare(_reference(model, waveform, lengths), got, what))
    return worst


# ---------------------------------------------------------------------------------------- the verb
def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.epilog = EPILOG
    parser.add_argument("--model", "-m", default="commands",
                        help="bundled name (commands, commands-ctc), model.pt or a run folder (default: commands)")
    parser.add_argument("--format", "-f", choices=("torchscript", "onnx"),
                        help="export format (default: from the --out suffix: .onnx or .ts)")
    parser.add_argument("--out", "-o", metavar="PATH", help="file to write (atomically); required unless --bundled")
    parser.add_argument("--bundled", action="store_true",
                        help="regenerate speech/pretrained/commands.onnx (the torch-free copy speech transcribe runs) "
                             "from speech/pretrained/commands.pt; after every retrain of that model")
    parser.add_argument("--opset", type=int, default=17, help="ONNX opset version (default: 17)")
    parser.add_argument("--no-check", action="store_true",
                        help="skip running the exported model against the PyTorch model on test batches")


def _error(message: str) -> None:
    print(f"{PROG}: {message}", file=sys.stderr)


def _run_bundled(args: argparse.Namespace) -> int:
    from speech.checkpoint import ModelFileError

    if args.out or args.model != "commands" or args.format not in (None, "onnx"):
        _error("--bundled writes speech/pretrained/commands.onnx from commands.pt: no --out, --model or --format")
        return EXIT_USAGE
    try:
        written = export_bundled(check=not args.no_check)
    except ModelFileError as err:
        _error(str(err))
        return EXIT_USAGE
    except ExportError as err:
        _error(str(err))
        return EXIT_FAILED
    for out, model, diff in written:
        checked = "not checked" if diff is None else f"max abs difference from PyTorch {diff:.2g}"
        print(f"wrote {out} (onnx, {len(model.labels)}-class model at {model.sample_rate} Hz, "
              f"{out.stat().st_size / 1e6:.2f} MB, {checked})")
    return EXIT_OK


def run(args: argparse.Namespace) -> int:
    from speech.checkpoint import ModelFileError, load_model

    if args.bundled:
        if importlib.util.find_spec("onnx") is None or importlib.util.find_spec("onnxruntime") is None:
            _error("ONNX export needs onnx and onnxruntime; pip install 'speech[export]'")
            return EXIT_USAGE
        return _run_bundled(args)
    if args.out is None:
        _error("give --out PATH (or --bundled to regenerate speech/pretrained/commands.onnx)")
        return EXIT_USAGE
    out = Path(args.out)
    fmt = args.format or SUFFIXES.get(out.suffix.lower())
    if fmt is None:
        _error(f"--out {args.out}: cannot tell the format from the suffix; give --format onnx or torchscript")
        return EXIT_USAGE
    if not out.resolve().parent.is_dir():
        _error(f"--out {args.out}: the folder does not exist")
        return EXIT_USAGE
    if str(args.model).endswith((".onnx", ".ts")):
        _error(f"--model {args.model}: already exported; export from a model.pt, run folder or bundled name")
        return EXIT_USAGE
    if fmt == "onnx":
        try:
            import onnx  # noqa: F401
            import onnxruntime  # noqa: F401
        except ImportError as err:
            _error(f"ONNX export needs onnx and onnxruntime ({err}); pip install 'speech[export]'")
            return EXIT_USAGE
    try:
        model = load_model(args.model)
    except ModelFileError as err:
        _error(str(err))
        return EXIT_USAGE
    try:
        if fmt == "onnx":
            diff = export_onnx(model, out, opset=args.opset, check=not args.no_check)
        else:
            diff = export_torchscript(model, out, check=not args.no_check)
    except ExportError as err:
        _error(str(err))
        return EXIT_FAILED
    checked = "not checked" if diff is None else f"max abs difference from PyTorch {diff:.2g}"
    kind = "CTC" if model.is_ctc else f"{len(model.labels)}-class"
    print(f"wrote {out} ({fmt}, {kind} model at {model.sample_rate} Hz, {checked})")
    return EXIT_OK
