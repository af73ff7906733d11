"""``speech listen`` (also ``python tools/live_mic.py``): recognize commands as they are spoken.

The microphone is opened with sounddevice (PortAudio) at the device's native rate; its callback only
copies each block into a queue (:class:`~speech.streaming.BlockQueue`), and recognition runs on the main
thread (:func:`~speech.streaming.run_stream`): resampling to the model's rate, then a sliding window with
posterior smoothing (classifiers) or a voice-activity gate with one decode per utterance (CTC models).
``--input-file`` feeds a file through the same blocks and queue, at real-time pace or ``--fast``.

Output: one line per detection (time, label or text, confidence) and, on a terminal, a live level meter
(one line rewritten with ``\\r``); ``--json`` prints one JSON object per line instead. See docs/live.md.

Exit status: 0 at the end of the input, after ``--duration`` or on Ctrl-C (a summary line on stderr);
2 for a usage, model, file or device problem (one line on stderr).
"""
from __future__ import annotations

import argparse
import json
import re
import signal
import sys
import threading
from pathlib import Path
from typing import TextIO

EXIT_OK, EXIT_USAGE = 0, 2
PROG = "speech listen"
from speech.api import DEFAULT_REJECT, LISTEN_SKIPPING  # torch-free there (= speech.streaming's)

EPILOG = """\
examples:
  speech listen                                  # default microphone, bundled 'commands' model
  speech listen --list-devices
  speech listen --device 2 --channels 2 --json
  speech listen --model run/model.pt --input-file stream.wav --fast
  speech listen --model commands-ctc --grammar phrases.txt

classifiers: every --hop-ms the model scores its window (the last clip_seconds of audio it was
trained on, 1 s for Speech Commands); the posteriors of the last --average-window-ms are averaged; a command fires when its average reaches
--threshold, at least --minimum-count windows were averaged and --suppression-ms passed since the last
detection. _silence_ and _unknown_ never fire.
CTC models: an energy gate (adaptive noise floor, --vad-start-db above it, --vad-hangover-ms) cuts
utterances; each is decoded when it ends (--grammar, --beam). With --grammar, an utterance whose best
phrase has a CTC probability below --reject is other speech (_unknown_) and is not reported; the score
printed is that probability.

exit status: 0 done (end of file, --duration, Ctrl-C), 2 usage / model / file / device error
"""


class DeviceError(Exception):
    """A microphone problem (no such device, busy, no PortAudio); ``str(err)`` is one line."""


# ----------------------------------------------------------------------------------------- devices
def import_sounddevice():
    try:
        import sounddevice
    except (ImportError, OSError) as err:  # OSError: the PortAudio library is missing
        cause = " ".join(str(err).split())
        raise DeviceError(f"sounddevice/PortAudio is not available ({cause}); pip install 'speech[live]' "
                          "and install libportaudio2") from None
    return sounddevice


def parse_device(device: str | None) -> int | str | None:
    """``--device``: an index (``"3"``) or a part of a device name."""
    if device is None or device == "":
        return None
    return int(device) if re.fullmatch(r"\d+", device) else device


def list_devices() -> str:
    """Input devices, one per line: index, name, host API, channels, native rate; ``*`` marks the default."""
    sd = import_sounddevice()
    try:
        devices = sd.query_devices()
        default = sd.default.device[0]
        apis = sd.query_hostapis()
    except sd.PortAudioError as err:
        raise DeviceError(f"cannot list audio devices ({err})") from None
    lines = []
    for d in devices:
        if d["max_input_channels"] > 0:
            mark = "*" if d["index"] == default else " "
            api = apis[d["hostapi"]]["name"]
            lines.append(f"{mark} {d['index']:>3}  {d['name']}  ({api}, {d['max_input_channels']} in, "
                         f"{d['default_samplerate']:g} Hz)")
    return "\n".join(lines) if lines else "no input devices found"


class MicrophoneInput:
    """A sounddevice input stream whose callback hands blocks ``(frames, channels)`` float32 to a
    :class:`~speech.streaming.BlockQueue`; opened at the device's native rate."""

    def __init__(self, device: str | None, channels: int, block_ms: float):
        self.sd = sd = import_sounddevice()
        self.device = parse_device(device)
        label = "default input device" if self.device is None else f"device {device!r}"
        try:
            info = sd.query_devices(self.device, "input")
        except (ValueError, sd.PortAudioError) as err:
            hint = "no input device" if self.device is None else "no such input device"
            raise DeviceError(f"{label}: {hint} ({' '.join(str(err).split())}); see --list-devices") from None
        self.name, self.index = info["name"], info["index"]
        self.label = f"{label} {self.index} ({self.name})" if self.device is None else f"device {self.index} ({self.name})"
        if channels > info["max_input_channels"]:
            raise DeviceError(f"{self.label}: --channels {channels} but the device has {info['max_input_channels']}")
        self.channels = channels
        self.sample_rate = int(info["default_samplerate"])
        self.block_frames = max(1, int(self.sample_rate * block_ms / 1000))
        self.stream = None
        self.stopping = threading.Event()

    def start(self, blocks) -> None:
        sd = self.sd

        def finished() -> None:  # PortAudio ended the stream: we stopped it, or the device went away
            if not self.stopping.is_set():
                blocks.close(f"{self.label}: the audio stream ended (device disconnected?)")

        try:
            self.stream = sd.InputStream(
                device=self.index, channels=self.channels, samplerate=self.sample_rate, blocksize=self.block_frames,
                dtype="float32", callback=blocks.callback, finished_callback=finished)
            self.stream.start()
        except (sd.PortAudioError, ValueError) as err:
            self.stream = None
            raise DeviceError(f"{self.label}: cannot open ({' '.join(str(err).split())}); busy or unplugged?") from None

    def stop(self) -> None:
        self.stopping.set()
        if self.stream is not None:
            try:
                self.stream.abort()
                self.stream.close()
            except Exception:  # the device may already be gone; nothing left to release
                pass


# ----------------------------------------------------------------------------------------- output
class Display:
    """Detections on ``stream`` (text lines, or one JSON object per line with ``json_lines``) and, on a
    terminal, a level meter: one line rewritten with ``\\r`` and cleared before each detection line."""

    WIDTH = 30  # meter characters for -60..0 dBFS

    def __init__(self, stream: TextIO, json_lines: bool = False, meter: bool | None = None):
        self.stream, self.json_lines = stream, json_lines
        self.meter = (not json_lines and _isatty(stream)) if meter is None else meter
        self.meter_shown = False
        self.last_meter = 0.0

    def detection(self, d, saved: str | None = None) -> None:
        self._clear_meter()
        if self.json_lines:
            row = d.to_json()
            if saved:
                row["wav"] = saved
            self.stream.write(json.dumps(row, ensure_ascii=False) + "\n")
        else:
            what = f'"{d.label}"' if d.is_text else d.label
            self.stream.write(f"{d.time:9.2f} s  {what:<12} {d.score:.2f}" + (f"  {saved}" if saved else "") + "\n")
        self.stream.flush()

    def level(self, pipeline) -> None:
        if not self.meter or pipeline.seconds - self.last_meter < 0.1:
            return
        self.last_meter = pipeline.seconds
        db = pipeline.level_db
        filled = int(round(self.WIDTH * min(max(db + 60, 0), 60) / 60))
        bar = "#" * filled + "-" * (self.WIDTH - filled)
        self.stream.write(f"\r\033[K[{bar}] {db:6.1f} dB  {pipeline.seconds:8.1f} s")
        self.stream.flush()
        self.meter_shown = True

    def close(self) -> None:
        self._clear_meter()

    def _clear_meter(self) -> None:
        if self.meter_shown:
            self.stream.write("\r\033[K")
            self.meter_shown = False


class DetectionSaver:
    """Writes each detection's audio to ``folder/NNNN_TIMEs_LABEL.wav`` (atomically); returns the path."""

    def __init__(self, folder: str, sample_rate: int):
        self.folder, self.sample_rate, self.count = Path(folder), sample_rate, 0
        self.folder.mkdir(parents=True, exist_ok=True)

    def save(self, d) -> str | None:
        from speech.audio import save_audio

        if d.audio is None or len(d.audio) == 0:
            return None
        self.count += 1
        name = re.sub(r"[^A-Za-z0-9_-]+", "_", d.label).strip("_")[:40] or "detection"
        path = self.folder / f"{self.count:04d}_{d.time:.2f}s_{name}.wav"
        save_audio(path, d.audio, self.sample_rate)
        return str(path)


def _isatty(stream) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def _stop_on_sigterm():
    """Make SIGTERM stop listening like Ctrl-C (a clean exit with the summary); returns the old handler."""
    if threading.current_thread() is not threading.main_thread():
        return None

    def interrupt(signum, frame):
        raise KeyboardInterrupt

    return signal.signal(signal.SIGTERM, interrupt)


def error(message: str) -> None:
    print(f"{PROG}: {message}", file=sys.stderr)


# ---------------------------------------------------------------------------------------- the verb
def add_arguments(parser: argparse.ArgumentParser) -> None:
    from speech.api import DEFAULT_GATE_DB
    from speech.options import add_engine_argument

    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.epilog = EPILOG
    parser.add_argument("--model", "-m", default="commands",
                        help="bundled name (commands, commands-ctc), model.pt, a run folder or .onnx (default: commands)")
    add_engine_argument(parser, default="auto")
    src = parser.add_argument_group("input")
    src.add_argument("--list-devices", action="store_true", help="list the input devices and exit")
    src.add_argument("--device", "-d", help="input device: index or part of its name (default: the system default)")
    src.add_argument("--channels", type=int, default=1, help="channels to record; they are averaged (default: 1)")
    src.add_argument("--block-ms", type=float, default=50.0, help="audio block length (default: 50)")
    src.add_argument("--input-file", metavar="WAV", help="read this file instead of the microphone, block by block")
    src.add_argument("--fast", action="store_true", help="with --input-file: as fast as possible, not at real-time pace")
    src.add_argument("--duration", type=float, metavar="SECONDS", help="stop after this much audio")
    out = parser.add_argument_group("output")
    out.add_argument("--json", action="store_true", help="one JSON object per detection: time, label (or text), score")
    out.add_argument("--save-detections", metavar="DIR", help="write the audio of each detection to DIR as WAV")
    cls = parser.add_argument_group("classifiers: sliding window and smoothing")
    cls.add_argument("--hop-ms", type=float, default=100.0, help="window hop (default: 100)")
    cls.add_argument("--average-window-ms", type=float, default=500.0, help="posterior averaging window (default: 500)")
    cls.add_argument("--threshold", type=float, default=None,
                     help="averaged score a command needs (default: the model's saved operating point, else 0.5; the "
                          "bundled commands model's is 0.70, chosen on the DEV half of 'speech bench detection' (five "
                          "stream seeds pooled, 110 minutes of other speech): 18 unseen speakers' commands among real "
                          "other speech at 10 dB SNR, where it found 73.8 %% of the commands at 85 false accepts per hour)")
    cls.add_argument("--false-accepts-per-hour", type=float, metavar="RATE",
                     help="instead of --threshold: the lowest threshold at which the model fired at most RATE times an "
                          "hour on the other speech of its DEV streams (the curve saved with its operating point; the "
                          "bundled commands model: 10 gives 0.88, which found 50.5 %% of the DEV commands at 4.4 an hour)")
    cls.add_argument("--suppression-ms", type=float, default=1000.0, help="quiet time after a detection (default: 1000)")
    cls.add_argument("--minimum-count", type=int, default=3, help="windows needed in the average (default: 3)")
    cls.add_argument("--gate-db", type=float, default=DEFAULT_GATE_DB, metavar="DB",
                     help="skip the model on windows within DB of the noise floor (nothing to hear); 0: never skip "
                          f"(default: {DEFAULT_GATE_DB:g})")
    cls.add_argument("--hop-skipping", choices=("off", "quiet", "suppressed"), default=LISTEN_SKIPPING,
                     help="score only every third window while no command is near (quiet), and skip the second after "
                          f"a detection too (suppressed); the same detections, less compute (default: {LISTEN_SKIPPING})")
    ctc = parser.add_argument_group("CTC models: voice-activity gate and decoding")
    ctc.add_argument("--grammar", metavar="FILE", help="only these phrases (one per line; '#' comments)")
    ctc.add_argument("--beam", type=int, default=1, help="prefix beam search width (default: 1 = greedy)")
    ctc.add_argument("--reject", type=float, metavar="P",
                     help="with --grammar: an utterance whose best phrase has a CTC probability p(phrase | audio) below P "
                          "is other speech and is not reported; 0: every utterance gets its closest phrase (default: "
                          f"{DEFAULT_REJECT:g}, chosen for commands-ctc on the DEV speakers of 'speech bench detection --model "
                          "commands-ctc': unseen speakers' commands among other real words at 10 dB SNR, a grammar of the 10 "
                          "commands; there 13.7 false accepts per hour of other speech instead of 1653 with 0, 81.5 %% of the "
                          "commands missed instead of 55.7 %%; docs/live.md)")
    ctc.add_argument("--vad-start-db", type=float, default=10.0, help="speech is this far above the noise floor (default: 10)")
    ctc.add_argument("--vad-hangover-ms", type=float, default=300.0, help="silence that ends an utterance (default: 300)")
    ctc.add_argument("--streaming", action="store_true",
                     help="run the GRU as the audio arrives (models trained with model.bidirectional=false)")


def check_arguments(args: argparse.Namespace) -> None:
    from speech.transcribe import UsageError

    if args.channels < 1:
        raise UsageError("--channels must be 1 or more")
    if not 1 <= args.block_ms <= 1000:
        raise UsageError("--block-ms must be between 1 and 1000")
    if args.hop_ms <= 0 or args.average_window_ms <= 0 or args.suppression_ms < 0 or args.minimum_count < 1:
        raise UsageError("--hop-ms and --average-window-ms must be positive, --suppression-ms >= 0, --minimum-count >= 1")
    if args.threshold is not None and not 0 < args.threshold <= 1:
        raise UsageError("--threshold must be in (0, 1]")
    if args.false_accepts_per_hour is not None and (args.threshold is not None or args.false_accepts_per_hour < 0):
        raise UsageError("--false-accepts-per-hour must be >= 0, and it replaces --threshold (give one of them)")
    if args.reject is not None and not 0 <= args.reject < 1:
        raise UsageError("--reject must be in [0, 1) (0: no rejection)")
    if args.duration is not None and args.duration <= 0:
        raise UsageError("--duration must be positive")
    if args.fast and not args.input_file:
        raise UsageError("--fast needs --input-file")
    if args.save_detections and Path(args.save_detections).exists() and not Path(args.save_detections).is_dir():
        raise UsageError(f"--save-detections {args.save_detections}: exists and is not a folder")


def check_model_options(model, args: argparse.Namespace) -> None:
    """The options that must fit the model, checked before the audio source is opened."""
    from speech.transcribe import UsageError, decode_options

    if (args.grammar or args.beam > 1 or args.streaming or args.reject is not None) and not model.is_ctc:
        raise UsageError("--grammar, --beam, --reject and --streaming need a CTC model (this model is a classifier)")
    if args.reject is not None and not args.grammar:
        raise UsageError("--reject needs --grammar (it scores the grammar's phrases)")
    if args.streaming and not hasattr(model.recognizer.backend, "model"):
        raise UsageError("--streaming runs the model in PyTorch: give a model file (not an export) and --engine torch or auto")
    if model.is_ctc:
        decode_options(model.recognizer, argparse.Namespace(top_k=1, threshold=0.0, beam=args.beam, grammar=args.grammar),
                       report=lambda message: None)  # its warnings come once, from open_stream


def open_stream(model, args: argparse.Namespace, source_rate: int):
    """:meth:`speech.Model.stream` with the options of the command line (the Python API's stream object and
    ``speech listen`` are one pipeline)."""
    from speech.transcribe import UsageError

    try:
        stream = model.stream(
            source_rate, hop_seconds=args.hop_ms / 1000, threshold=args.threshold,
            false_accepts_per_hour=args.false_accepts_per_hour,
            average_window_ms=args.average_window_ms, suppression_ms=args.suppression_ms,
            minimum_count=args.minimum_count, grammar=args.grammar, beam=args.beam,
            vad_start_db=args.vad_start_db, vad_hangover_ms=args.vad_hangover_ms, streaming=args.streaming,
            gate_db=args.gate_db if args.gate_db > 0 else None,
            reject=DEFAULT_REJECT if args.reject is None else args.reject, skipping=args.hop_skipping, on_warning=error)
    except ValueError as err:
        raise UsageError(str(err)) from None
    return stream


def open_source(args: argparse.Namespace):
    """A :class:`~speech.streaming.FileInput` (``--input-file``) or a :class:`MicrophoneInput`, and its name."""
    from speech.streaming import FileInput

    if args.input_file:
        source = FileInput.from_file(args.input_file, args.block_ms, realtime=not args.fast)
        return source, args.input_file
    mic = MicrophoneInput(args.device, args.channels, args.block_ms)
    return mic, mic.label


def run(args: argparse.Namespace) -> int:
    import torch

    from speech.audio import AudioError
    from speech.api import Model
    from speech.streaming import BlockQueue, StreamError, run_stream
    from speech.transcribe import UsageError, load_recognizer

    torch.set_num_threads(1)
    try:
        if args.list_devices:
            print(list_devices())
            return EXIT_OK
        check_arguments(args)
        # --streaming carries the GRU states in PyTorch (StreamingModel): auto means torch there
        engine = "torch" if args.streaming and args.engine == "auto" else args.engine
        model = Model(load_recognizer(args.model, "cpu", batch_size=64, engine=engine, threads=1))
        recognizer = model.recognizer
        check_model_options(model, args)
        try:
            saver = DetectionSaver(args.save_detections, recognizer.sample_rate) if args.save_detections else None
        except OSError as err:
            raise UsageError(f"--save-detections {args.save_detections}: {err.strerror or err}") from None
        source, name = open_source(args)
        pipeline = open_stream(model, args, source.sample_rate).pipeline
    except (UsageError, AudioError, DeviceError) as err:
        error(str(err))
        return EXIT_USAGE

    blocks = BlockQueue()
    display = Display(sys.stdout, json_lines=args.json)
    count = [0]

    def on_detection(d) -> None:
        count[0] += 1
        path = None
        if saver is not None:
            try:
                path = saver.save(d)
            except OSError as err:  # a full disk must not stop listening
                error(f"--save-detections: cannot write {d.label!r} ({err.strerror or err})")
        display.detection(d, path)

    realtime = not (args.input_file and args.fast)
    previous_term = _stop_on_sigterm()
    stall = max(3.0, 20 * args.block_ms / 1000) if not args.input_file else None
    try:
        try:
            source.start(blocks)
        except DeviceError as err:
            error(str(err))
            return EXIT_USAGE
        what = "transcribing utterances" if recognizer.is_ctc else "listening for " + ", ".join(
            label for label in recognizer.labels if label not in ("_silence_", "_unknown_"))
        if args.false_accepts_per_hour is not None:
            from speech.streaming import threshold_for_false_accepts

            row = threshold_for_false_accepts(recognizer.operating_point, args.false_accepts_per_hour)
            what += (f" at threshold {row['threshold']:g} (on its DEV streams: {100 * row['hit_rate']:.1f} % of the "
                     f"commands at {row['false_accepts_per_hour']:g} false accepts per hour of other speech"
                     + ("" if row["met"] else f"; none of its thresholds kept to {args.false_accepts_per_hour:g}") + ")")

        def started() -> None:  # printed once audio flows, so what is said from now on is heard
            print(f"{PROG}: {name} at {source.sample_rate} Hz{'' if realtime else ' (fast)'}: {what}; Ctrl-C to stop",
                  file=sys.stderr, flush=True)

        summary = run_stream(blocks, pipeline, on_detection, display.level, args.duration, stall, name, started)
    except StreamError as err:
        display.close()
        error(str(err))
        return EXIT_USAGE
    except KeyboardInterrupt:  # between blocks: still a clean stop
        from speech.streaming import StreamSummary

        summary = StreamSummary(seconds=pipeline.seconds, detections=count[0], overflows=blocks.overflows,
                                dropped=blocks.dropped, interrupted=True)
    finally:
        source.stop()
        if previous_term is not None:
            signal.signal(signal.SIGTERM, previous_term)
    display.close()
    print(f"{PROG}: {summary.line()}" + (" (interrupted)" if summary.interrupted else ""), file=sys.stderr)
    return EXIT_OK
