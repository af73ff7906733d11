"""``speech <verb>``: one verb per job. Each verb lives in its own module, which exposes
``add_arguments(parser)`` and ``run(args) -> int``; this file only dispatches, importing the one
module a command needs so ``speech --help`` stays fast.

Exit codes shared by every verb: 0 success, 1 some inputs failed (reported, the rest processed),
2 usage or configuration error, 130 interrupted (Ctrl-C).
"""
from __future__ import annotations

import argparse
import importlib
import sys

# verb -> (module, one-line help)
VERBS: dict[str, tuple[str, str]] = {
    "prepare": ("speech.data.prepare", "write train/valid/test manifests for a data set (fsdd, speech-commands, folder)"),
    "train": ("speech.train", "train a recipe: speech train recipe=NAME [Hydra overrides]"),
    "evaluate": ("speech.evaluate", "score a model on a manifest: accuracy/confusion or CER/WER"),
    "transcribe": ("speech.transcribe", "label or transcribe audio files, folders or manifests"),
    "export": ("speech.export", "export a model (front end included) to TorchScript or ONNX"),
    "listen": ("speech.live", "recognize commands from the microphone (or --input-file) as they are spoken"),
    "synth": ("speech.synth", "synthesize a labelled command data set offline (flite, festival, espeak-ng, piper)"),
    "bench": ("speech.bench", "benchmarks: features, train, transcribe, streaming"),
}

EXIT_OK, EXIT_PARTIAL, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


def _top_parser() -> argparse.ArgumentParser:
    verbs = "\n".join(f"  {name:<11} {help_}" for name, (_, help_) in VERBS.items())
    return argparse.ArgumentParser(
        prog="speech",
        description="Spoken commands to text.",
        epilog=f"verbs:\n{verbs}\n\nRun 'speech VERB --help' for a verb's options.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        usage="speech [-h] [--version] VERB [options]",
    )


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    top = _top_parser()
    top.add_argument("--version", action="store_true", help="print the version and exit")
    if not argv or argv[0] in ("-h", "--help"):
        top.print_help()
        return EXIT_OK if argv else EXIT_USAGE
    if argv[0] == "--version":
        from importlib.metadata import version

        print(f"speech {version('speech')}")
        return EXIT_OK
    verb, rest = argv[0], argv[1:]
    if verb not in VERBS:
        top.error(f"unknown verb {verb!r}; choose from {', '.join(VERBS)}")
    module = importlib.import_module(VERBS[verb][0])
    if hasattr(module, "main_argv"):  # verbs that own their argv (Hydra's `train`)
        return int(module.main_argv(rest) or 0)
    parser = argparse.ArgumentParser(prog=f"speech {verb}", description=VERBS[verb][1])
    module.add_arguments(parser)
    args = parser.parse_args(rest)
    try:
        return int(module.run(args) or 0)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
