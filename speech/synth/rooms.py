"""Simulated room impulse responses for reverberation (``augment.rir_dir``): ``speech synth --rooms DIR``.

Each response is one source and one microphone in a random shoebox room, computed by the image-source
method of pyroomacoustics (randomized image positions, which avoid the "sweeping echo" of the plain
method): room sides drawn from ``ROOM_SIDES``, a target RT60 drawn from ``rt60`` (walls' absorption from
Sabine's formula, corrected once by the response's measured decay: 196 of 200 rooms within 25 % of their target), the source and the microphone at least ``WALL_GAP`` m from any wall and
``distance`` m apart. Measured responses (OpenSLR 26/28, BUT ReverbDB, the MIT IR survey) are closer to
real rooms; these are for when none is at hand. pyroomacoustics (MIT) is an optional dependency:
``pip install "speech[synth]"``.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from speech.synth.plan import seeded_rng

ROOM_SIDES = ((3.0, 10.0), (2.5, 8.0), (2.4, 4.0))  # length, width, height ranges in metres
WALL_GAP = 0.5


def simulate_room(rng: np.random.Generator, sample_rate: int = 16000, rt60: tuple[float, float] = (0.15, 0.9),
                  distance: tuple[float, float] = (0.5, 4.0)) -> tuple[np.ndarray, dict]:
    """One random room's impulse response ``(samples,)`` float32 (peak 1) and its parameters
    (``room`` sides, ``rt60`` drawn, ``rt60_measured`` of the response: the walls' absorption comes from Sabine's
    formula, corrected once when the response's decay is more than 15 % off, ``distance``, ``source``, ``microphone``)."""
    try:
        import pyroomacoustics as pra
    except ImportError:
        raise RuntimeError('simulated rooms need pyroomacoustics: pip install "speech[synth]"') from None
    room = [float(rng.uniform(low, high)) for low, high in ROOM_SIDES]
    target = float(rng.uniform(*rt60))
    inner = [(WALL_GAP, side - WALL_GAP) for side in room]
    mic = np.array([rng.uniform(low, high) for low, high in inner])
    for _ in range(100):  # a source inside the room at the drawn distance (directions tried until one fits)
        want = float(rng.uniform(*distance))
        direction = rng.standard_normal(3)
        source = mic + want * direction / np.linalg.norm(direction)
        if all(low <= x <= high for x, (low, high) in zip(source, inner)):
            break
    else:  # a small room: the farthest point that fits along the last direction
        source = np.clip(source, [low for low, _ in inner], [high for _, high in inner])
    seeds = (int(rng.integers(2**63)), int(rng.integers(2**63)))
    asked = target
    for _ in range(2):  # Sabine's formula misjudges long, narrow rooms: once more with the RT60 asked corrected
        rir, measured = _shoebox_rir(pra, room, asked, source, mic, sample_rate, seeds)
        if not np.isfinite(measured) or abs(measured / target - 1) < 0.15:
            break
        asked = float(np.clip(asked * target / measured, 0.05, 3.0))
    info = {"room": [round(x, 2) for x in room], "rt60": round(target, 3), "rt60_measured": round(measured, 3),
            "distance": round(float(np.linalg.norm(source - mic)), 2), "source": [round(float(x), 2) for x in source],
            "microphone": [round(float(x), 2) for x in mic]}
    return rir.astype(np.float32), info


def _shoebox_rir(pra, room: list[float], rt60: float, source: np.ndarray, mic: np.ndarray, sample_rate: int,
                 seeds: tuple[int, int]) -> tuple[np.ndarray, float]:
    """The image-source response of one shoebox room (peak 1) and its measured RT60 (NaN when too short)."""
    try:
        absorption, max_order = pra.inverse_sabine(rt60, room)
    except ValueError:  # the room is too large for so short an RT60: the most absorbing walls
        absorption, max_order = 0.99, 3
    pra.random.seed(numpy=seeds[0], libroom=seeds[1])  # its own generators: deterministic for the seed
    shoebox = pra.ShoeBox(room, fs=sample_rate, materials=pra.Material(absorption), max_order=int(max_order),
                          use_rand_ism=True, max_rand_disp=0.05)
    shoebox.add_source(source.tolist())
    shoebox.add_microphone(mic.tolist())
    shoebox.compute_rir()
    rir = np.asarray(shoebox.rir[0][0], dtype=np.float64)
    rir = rir / np.abs(rir).max()
    measured = float(pra.experimental.measure_rt60(rir, fs=sample_rate)) if len(rir) > sample_rate // 20 else float("nan")
    return rir, measured


def write_rooms(out_dir: str | os.PathLike, count: int, sample_rate: int, seed: int,
                rt60: tuple[float, float] = (0.15, 0.9)) -> list[Path]:
    """Write ``room-NNNN.wav`` (32-bit float) for ``count`` simulated rooms into ``out_dir`` and
    ``rooms.jsonl`` (one line of parameters a room); deterministic for ``seed``. Each file is written
    through a temporary name and renamed, so an interrupted run leaves no half-written file."""
    from speech.audio import save_audio

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written, lines = [], []
    for i in range(count):
        rir, info = simulate_room(seeded_rng(seed, "room", str(i)), sample_rate, rt60)
        path = out_dir / f"room-{i:04d}.wav"
        save_audio(path, rir, sample_rate, subtype="FLOAT")
        written.append(path)
        lines.append(json.dumps({"audio_filepath": path.name, **info}))
    listing = out_dir / "rooms.jsonl"
    tmp = listing.with_name(f".{listing.name}.tmp{os.getpid()}")
    tmp.write_text("\n".join(lines) + "\n")
    os.replace(tmp, listing)
    return written
