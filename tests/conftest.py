"""Shared test fixtures.

Real recordings live outside the repository in ``../shared/data`` (see its README); set
``SPEECH_DATA_DIR`` to use another copy. Tests that need them skip, with the path in the reason,
only when the folder is absent.
"""
from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]


def shared_data_dir() -> Path:
    """``$SPEECH_DATA_DIR``, else ``<repo>/../shared/data`` (it may not exist)."""
    env = os.environ.get("SPEECH_DATA_DIR")
    return Path(env).expanduser().resolve() if env else REPO_ROOT.parent / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The shared data folder; skips the test when it is absent."""
    root = shared_data_dir()
    if not root.is_dir():
        pytest.skip(f"shared data folder {root} is absent (set SPEECH_DATA_DIR to a copy of shared/data)")
    return root


@pytest.fixture(scope="session")
def shared_dataset(shared_data):
    """``shared_dataset("fsdd")`` -> the data set's folder in the shared data; skips when it is absent."""

    def get(name: str) -> Path:
        path = shared_data / name
        if not path.is_dir():
            pytest.skip(f"shared data set {path} is absent")
        return path

    return get


def run_speech(capsys, *argv) -> tuple[int, str, str]:
    """``speech ARGV`` in this process (``speech.cli.main``): ``(exit status, stdout, stderr)``."""
    from speech.cli import main

    capsys.readouterr()
    try:
        rc = main([str(a) for a in argv])
    except SystemExit as exc:
        rc = exc.code
    out, err = capsys.readouterr()
    return rc, out, err


def bundled_recognizer(name: str):
    """The bundled model ``name`` (``commands``, ``commands-ctc``) as ``speech listen`` loads it, on one CPU
    thread in PyTorch; skips the test when it is not installed."""
    from speech.checkpoint import ModelFileError
    from speech.transcribe import UsageError, load_recognizer

    try:
        return load_recognizer(name, "cpu", engine="torch", threads=1)
    except (ModelFileError, UsageError) as err:
        pytest.skip(f"the bundled {name} model is not installed: {err}")
