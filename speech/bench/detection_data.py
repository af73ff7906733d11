"""What the detection benchmark (:mod:`speech.bench.detection`) streams: the speaker split of the bundled
``commands`` model redone without synthesis (:func:`commands_split`), its unseen speakers halved into DEV and
TEST (:func:`speaker_halves`), the clips of each half (:func:`load_clips`: commands, real negatives, and the
synthesized sentences of :data:`NEGATIVE_SENTENCES` made by :func:`make_synth_negatives`), and the streams
built of them (:func:`benchmark_streams`), the same for every model the benchmark scores."""
from __future__ import annotations

import os
import random
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Sequence

from speech.bench.measure import COMMANDS, SPEECH_COMMANDS_TEST

if TYPE_CHECKING:
    import numpy as np

HALVES = ("test", "dev")  # the final number first
TRAIN_SPEAKERS = 36  # recipes/commands/build_manifests.py --train-speakers (default)
SPLIT_SEED = 0  # its --seed (default), and the seed of the DEV/TEST halves
SYNTH_ENGINES = "flite,festival,espeak,piper"  # the synthesized negatives' engines (fast enough on a CPU)
# FSDD digits the bundled model trained on as unknown words (recipes/commands/run.sh: build_manifests.py
# --fsdd 400; the script's default is now 0): always left out, so every model is scored on identical streams
FSDD_TRAINING_CLIPS = 400
DEFAULT_THRESHOLDS = (0.2, 0.3, 0.4, 0.45, 0.5, 0.55, 0.6, 0.65, 0.7, 0.75, 0.8, 0.82, 0.84, 0.86, 0.88, 0.9, 0.91, 0.92, 0.93,
                      0.94, 0.95, 0.96, 0.97, 0.98, 0.99)  # fine where false accepts fall to a few an hour
SOURCES = {  # source -> what it is, for the report
    "sc_v2_unknown": "speech_commands_v2_test_dev _unknown_ words (the half's speakers)",
    "fsdd": "FSDD digits, 8 kHz resampled to 16 kHz",
    "sc_v1_sample": "speech_commands_v1_sample words that are not commands",
}

# Ordinary sentences with none of the ten command words (checked by command_words_in): the synthesized
# negatives. Near misses (two, know, going, ...) are welcome: they are what live speech holds.
NEGATIVE_SENTENCES = """\
The weather was warm and sunny for most of the afternoon.
She bought fresh bread and a bag of apples at the market.
We should leave early to avoid the traffic tomorrow morning.
My brother plays the guitar in a small band downtown.
The train to the city was late again this week.
Please put the dishes in the sink after dinner.
I think the meeting has been moved to Thursday.
The children were laughing in the garden all day.
He forgot his umbrella and got wet in the rain.
Could you tell me where the nearest pharmacy is?
The library closes at six in the evening.
Our neighbours have a very friendly black cat.
I would like a cup of tea with a little milk.
The museum has a new exhibition about ancient Egypt.
They painted the kitchen a pale shade of blue.
It takes about twenty minutes to walk to the station.
The soup needs a pinch of salt and some pepper.
We watched a documentary about whales last night.
Her grandmother grew tomatoes and beans every summer.
The printer in the office is making a strange noise.
I have to finish this report before the weekend.
The river was calm and the water looked clear.
Somebody parked a red car in front of the house.
The concert was wonderful and the hall was full.
Do you remember the name of that little restaurant?
The baby finally fell asleep after a long walk.
My phone battery is almost empty again.
The students asked many questions about the homework.
A strong wind blew through the trees at night.
We are planning a trip to the mountains in August.
The bakery around the corner sells the best cakes.
He has been learning Spanish for three years.
The kettle is boiling, would you like some coffee?
They built a wooden fence around the garden.
The doctor said I should drink more water.
There is a small park behind the old church.
I found an interesting book at the second hand shop.
The team celebrated their victory with a big dinner.
Please remember to water the plants while I am away.
The airport was crowded because of the holidays.
Her dog likes to chase the ball across the field.
We had pancakes with honey for breakfast.
The lecture about the history of science was fascinating.
My sister works as a nurse at the city hospital.
The road was closed because of the snow.
I usually read the newspaper with my morning coffee.
The shop assistant helped me find a warm jacket.
The clock in the hall is ten minutes slow.
We walked along the beach and collected shells.
The bus driver waited for the old man to sit.
Their house has a beautiful view of the lake.
I need to buy a birthday present for my father.
The orchestra practised the symphony for many weeks.
He fixed the broken chair with a little glue.
The film was too long but the music was lovely.
Most of the guests arrived after eight o'clock.
The farmer keeps sheep and a few chickens.
She wrote a long letter to her friend in Canada.
The cinema is showing an old black and white film.
Could you please pass me the salt and the bread?
The garden looks lovely after the rain.
I think we will need a bigger table for the party.
The teacher read a story to the whole class.
The hotel room was small but very clean.
We could hear the birds singing early in the morning.
He spends his weekends fishing at the lake.
The price of petrol has risen again this month.
My cousin moved to a village near the coast.
The cake was decorated with strawberries and cream.
They talked about their holidays for hours.
The pharmacy is next to the post office.
I enjoy cooking for my friends at the weekend.
The autumn leaves were yellow, orange and brown.
She plays the piano much better than I do.
Someone knocked at the door while we were eating.
The bridge across the river is very old.
We ordered pizza and watched a film together.
The new library has a quiet room for reading.
His old car needed repairs after the long journey.
The flowers in the window box need more sunlight.
It was the coldest winter anybody could remember.
The waiter brought us the menu and some water.
My grandfather tells wonderful stories about the war.
The children built a snowman in the yard.
The office will be closed for the public holiday.
I lost my keys somewhere between the car and the house.
The soup was hot and the bread was still warm.
We are expecting visitors from Scotland this weekend.
The computer takes a long time to start these days.
The market is busy every Saturday morning.
She wears a silver ring that belonged to her mother.
The restaurant serves fish and vegetables from the region.
Our flight was delayed by almost three hours.
The garden gate squeaks when you open it.
He is reading a novel about a detective in London.
The cat sleeps in the sun by the kitchen window.
My parents celebrated their fortieth anniversary in June.
We need more milk, eggs and butter for the recipe.
The hospital is building a new wing for children.
I prefer walking to work when the weather is nice.
The artist painted a portrait of the mayor.
The sky was full of stars and the air was cold.
Their wedding was held in a small chapel by the sea.
I always forget where I put my glasses.
The football match was cancelled because of the storm.
She is studying chemistry at the university.
The noise from the building site was terrible.
The shopkeeper wrapped the gift in colourful paper.
We planted an apple tree in the back garden.
He called his mother every Sunday evening.
The new bakery opened across the street last month.
A little girl was feeding the ducks at the pond.
The elevator was broken so we took the stairs.
The price includes breakfast and a guided tour.
Everybody enjoyed the picnic in the park.
I have an appointment with the dentist at four.
The wind was cold but the sun was shining.
The history teacher showed us maps of old Europe.
They moved into a bigger flat near the centre.
What time does the museum open in the morning?
The baker makes fresh rolls every day at dawn.
I am reading a book about the life of bees.
"""


def command_words_in(text: str, commands: Sequence[str] = COMMANDS) -> set[str]:
    """The command words that occur in ``text`` as words (case and punctuation ignored)."""
    return set(re.findall(r"[a-z]+", text.lower())) & set(commands)


# ------------------------------------------------------------------------------------------ speakers
def commands_split(shared: str | os.PathLike, train_speakers: int = TRAIN_SPEAKERS, seed: int = SPLIT_SEED) -> dict[str, list[str]]:
    """``{"train": [...], "unseen": [...]}``: the speakers of ``speech_commands_v2_test_dev`` split as
    ``recipes/commands/build_manifests.py`` splits them (no validation speakers, its default): the
    sorted speakers of its 12-class rows, shuffled by ``random.Random(seed)``, the first
    ``train_speakers`` trained on. (The recipe writes the same lists to ``data/commands/split.json``.)"""
    from speech.data.speech_commands import test_layout_rows

    return split_of_rows(test_layout_rows(Path(shared) / SPEECH_COMMANDS_TEST, 12, []), train_speakers, seed)


def split_of_rows(rows, train_speakers: int = TRAIN_SPEAKERS, seed: int = SPLIT_SEED) -> dict[str, list[str]]:
    """:func:`commands_split` of the rows of ``speech prepare speech-commands --task 12`` of the folder."""
    speakers = sorted({r.speaker for r in rows if r.speaker})
    if len(speakers) <= train_speakers:
        raise ValueError(f"{len(speakers)} speakers in {SPEECH_COMMANDS_TEST}, {train_speakers} are trained on")
    random.Random(seed).shuffle(speakers)
    return {"train": sorted(speakers[:train_speakers]), "unseen": sorted(speakers[train_speakers:])}


def speaker_halves(speakers: Sequence[str], seed: int = SPLIT_SEED) -> dict[str, list[str]]:
    """``{"dev": [...], "test": [...]}``: the sorted speakers shuffled by ``random.Random(seed)``; the
    first half (rounded down) is DEV, the rest TEST. The same list always gives the same halves."""
    order = sorted(set(speakers))
    random.Random(seed).shuffle(order)
    half = len(order) // 2
    return {"dev": sorted(order[:half]), "test": sorted(order[half:])}


def fsdd_training_clips(shared: str | os.PathLike, seed: int = SPLIT_SEED) -> set[str]:
    """File names of the FSDD digits ``build_manifests.py`` offered to training as unknown words until
    2026-12-01 (``--fsdd 400``; its default is 0 now): the rows of ``speech prepare fsdd --split upstream``
    (train, valid, test) shuffled by ``random.Random(seed + 2)``, the first 400. The benchmark still
    leaves them out, so older and newer models are scored on identical streams."""
    from speech.data.fsdd import scan_recordings, upstream_split

    splits = upstream_split(scan_recordings(Path(shared) / "fsdd", []))
    rows = splits["train"] + splits["valid"] + splits["test"]
    random.Random(seed + 2).shuffle(rows)
    return {Path(r.audio_filepath).name for r in rows[:FSDD_TRAINING_CLIPS]}


def synth_half(speaker: str) -> str:
    """The half of a synthesized clip from its ``engine:voice:variant`` speaker: even variants DEV, odd TEST
    (each engine gives both halves voices of their own)."""
    try:
        variant = int(str(speaker).rsplit(":", 1)[1])
    except (IndexError, ValueError):
        raise ValueError(f"synthesized speaker {speaker!r} is not engine:voice:variant") from None
    return "dev" if variant % 2 == 0 else "test"


# ------------------------------------------------------------------------------------------ clips
@dataclass
class HalfClips:
    """The clips of one half: commands, real negatives, synthesized negatives, and the speakers of each
    source (``{source: [speaker, ...]}``)."""

    commands: list
    real: list
    synth: list
    speakers: dict


def load_clips(recognizer, shared: str | os.PathLike, synth_dir: str | os.PathLike | None = None,
               notes: Callable[[str], None] | None = None, known: set[str] | None = None) -> tuple[dict[str, HalfClips], dict]:
    """The clips of both halves at the model's rate, and ``split`` (the speaker lists, what was left out
    and why). Commands are the words of ``speech_commands_v2_test_dev`` the model can say (``known``:
    default the classifier's labels but ``_silence_`` / ``_unknown_``; a CTC model's grammar phrases), by
    its unseen speakers; words the model knows are never used as negatives."""
    from speech.audio import load_audio
    from speech.data.fsdd import DIGIT_WORDS
    from speech.data.speech_commands import test_layout_rows
    from speech.data.streams import Clip
    from speech.streaming import NEVER_FIRE, SILENCE

    note = notes or (lambda line: None)
    shared = Path(shared)
    rate = recognizer.sample_rate
    known = set(recognizer.labels) - set(NEVER_FIRE) if known is None else set(known)
    v2_rows = test_layout_rows(shared / SPEECH_COMMANDS_TEST, 12, [])
    split = split_of_rows(v2_rows)
    halves = speaker_halves(split["unseen"])
    half_of = {s: h for h, members in halves.items() for s in members}
    out = {h: HalfClips([], [], [], {}) for h in HALVES}

    def add(half: str, source: str, clip: Clip, negative_list: str = "real") -> None:
        target = out[half].commands if clip.is_command else getattr(out[half], negative_list)
        target.append(clip)
        out[half].speakers.setdefault("commands" if clip.is_command else source, set()).add(clip.speaker)

    def wave(path: str):
        return load_audio(path, rate).numpy()

    # speech_commands_v2_test_dev: commands and _unknown_ words of the unseen speakers
    for row in v2_rows:
        half = half_of.get(row.speaker)
        if half is None or row.label == SILENCE:
            continue
        word = row.text or row.label
        if row.label in COMMANDS and word not in known:  # a command this model does not know: other speech
            add(half, "sc_v2_unknown", Clip(wave(row.audio_filepath), word, False, row.speaker, "sc_v2_unknown"))
        elif row.label in COMMANDS:
            add(half, "", Clip(wave(row.audio_filepath), word, True, row.speaker, "sc_v2_commands"))
        elif word not in known:
            add(half, "sc_v2_unknown", Clip(wave(row.audio_filepath), word, False, row.speaker, "sc_v2_unknown"))

    # FSDD: speakers split into halves; the digits the bundled model trained on are left out
    fsdd_root = shared / "fsdd" / "recordings"
    trained = fsdd_training_clips(shared)
    fsdd_files = sorted(fsdd_root.glob("*.wav"))
    fsdd_speakers = speaker_halves({p.stem.split("_")[1] for p in fsdd_files})
    fsdd_half = {s: h for h, members in fsdd_speakers.items() for s in members}
    left_out = 0
    for path in fsdd_files:
        digit, speaker, _ = path.stem.split("_")
        word = DIGIT_WORDS[int(digit)]
        if path.name in trained:
            left_out += 1
            continue
        if word in known:
            continue
        add(fsdd_half[speaker], "fsdd", Clip(wave(str(path)), word, False, speaker, "fsdd"))

    # speech_commands_v1_sample: the words that are no command; a speaker who is one of the unseen v2
    # speakers stays in that speaker's half, the others are split into halves
    v1_root = shared / "speech_commands_v1_sample"
    v1_files = sorted(p for p in v1_root.glob("*/*.wav") if p.parent.name not in COMMANDS and p.parent.name not in known)
    v1_speakers = {p.stem.split("_nohash_")[0] for p in v1_files}
    v1_half = {s: half_of[s] for s in v1_speakers if s in half_of}
    rest = speaker_halves(v1_speakers - set(v1_half))
    v1_half.update({s: h for h, members in rest.items() for s in members})
    for path in v1_files:
        speaker = path.stem.split("_nohash_")[0]
        add(v1_half[speaker], "sc_v1_sample", Clip(wave(str(path)), path.parent.name, False, speaker, "sc_v1_sample"))

    # synthesized sentences (speech synth --phrases), by voice
    synth_note = None
    if synth_dir is not None:
        from speech.data.manifest import read_manifest

        rows = read_manifest(Path(synth_dir) / "synth.jsonl")
        dropped = {i for i, r in enumerate(rows) if command_words_in(r.text or "", sorted(known))}
        if dropped:
            note(f"{synth_dir}: {len(dropped)} synthesized clips hold a command word and are left out")
        for i, r in enumerate(rows):
            if i in dropped:
                continue
            engine = str(r.speaker).split(":")[0]
            add(synth_half(r.speaker), f"synth_{engine}",
                Clip(wave(r.audio_filepath), r.text or r.label, False, r.speaker, f"synth_{engine}"), "synth")
        synth_note = f"{len(rows) - len(dropped)} clips from {synth_dir}"
    for h in HALVES:
        out[h].speakers = {k: sorted(v) for k, v in sorted(out[h].speakers.items())}
    info = {
        "trained_on": {"speech_commands_v2_test_dev": split["train"],
                       "fsdd": f"the {len(trained)} digits of all 5 speakers the bundled model trained on are left out "
                               "(build_manifests.py --fsdd 400; a model trained with its default --fsdd 0 heard no FSDD)",
                       "sc_v1_sample": "the bundled model had every clip of the sample among its training candidates "
                                       "(build_manifests.py --v1-sample; its default trains on no v1 sample clips)"},
        "halves": {h: {"speech_commands_v2_test_dev": halves[h], "fsdd": fsdd_speakers[h],
                       "sc_v1_sample": sorted(s for s, x in v1_half.items() if x == h)} for h in HALVES},
        "left_out": {"fsdd_training_clips": left_out},
        "synth": synth_note,
    }
    return out, info


@dataclass
class BenchStream:
    """One stream of the benchmark: ``audio (samples,)`` at the model's rate, its ``events`` (the words and
    where they are), the half, the kind of negatives (``real`` or ``synth``), its report name and the
    speakers of each source in it."""

    name: str
    half: str
    kind: str
    audio: np.ndarray
    events: list
    speakers: dict


def load_inputs(recognizer, shared: str | os.PathLike, noise_dir: str | os.PathLike, synth_dir: str | os.PathLike | None,
                notes: Callable[[str], None], known: set[str] | None = None):
    """``(noise recordings, clips of each half, speaker split)`` at the model's rate (:func:`load_clips`;
    ``known``: the words that are commands, default the model's labels)."""
    from speech.audio import find_audio_files, load_audio

    noise_files = find_audio_files(noise_dir)
    if not noise_files:
        raise ValueError(f"{noise_dir}: no noise recordings")
    noise = [load_audio(f, recognizer.sample_rate, max_duration=None).numpy() for f in noise_files]
    clips, split = load_clips(recognizer, shared, synth_dir, notes, known=known)
    return noise, clips, split


def stream_seeds(seed: int | Sequence[int]) -> list[int]:
    """The benchmark's ``--seed`` as a list: one seed, or several distinct ones (each stream built once per
    seed and the runs pooled). ValueError: a seed given twice (the same stream twice would only look longer)."""
    seeds = [int(seed)] if isinstance(seed, int) else [int(s) for s in seed]
    if not seeds or len(set(seeds)) != len(seeds):
        raise ValueError(f"--seed {' '.join(map(str, seeds))}: give distinct seeds (the same stream twice would only look longer)")
    return seeds


def benchmark_streams(clips: dict, noise: list, rate: int, *, halves: Sequence[str] = HALVES, snr_db: float = 10.0,
                      minutes: float | None = None, seed: int = 0, noise_rms: float = 0.01,
                      progress: Callable[[str], None] | None = None):
    """The streams of the benchmark, one :class:`BenchStream` at a time: for each kind of negatives (real,
    then synthesized where there are any) and each half, the half's commands and negatives through
    :func:`~speech.data.streams.build_stream` (seed ``seed`` + 1000 for DEV + 2000 for synthesized), every
    clip once (``minutes=None``) or rounds of them for ``minutes``. Every model is scored on these."""
    from speech.data.streams import build_stream

    for kind in ("real", "synth"):
        for half in halves:
            negatives = getattr(clips[half], kind)
            if kind == "synth" and not negatives:
                continue
            if not clips[half].commands:
                raise ValueError(f"{half}: no command clips this model can say")
            name = f"{half.upper()}, {'real' if kind == 'real' else 'synthesized'} speech"
            if progress:
                progress(name)
            stream_seed = seed + (0 if half == "test" else 1000) + (0 if kind == "real" else 2000)
            audio, events = build_stream(clips[half].commands + negatives, noise, sample_rate=rate, seed=stream_seed,
                                         snr_db=snr_db, seconds=None if minutes is None else minutes * 60, noise_rms=noise_rms)
            speakers = {"commands": clips[half].speakers.get("commands", [])}
            speakers.update({s: v for s, v in clips[half].speakers.items()
                             if s != "commands" and (s.startswith("synth_") == (kind == "synth"))})
            yield BenchStream(name, half, kind, audio, events, speakers)


def make_synth_negatives(folder: str | os.PathLike, sentences: str | None = None, engines: str | None = None,
                         variants: int = 4, seed: int = 16, jobs: int = 1) -> str | None:
    """Synthesize the negative sentences into ``folder`` with ``speech synth --phrases`` (unless its
    ``synth.jsonl`` exists). Returns ``None`` when the set is there, else the reason it is not (no
    synthesis engine installed, or the synthesis failed). ``sentences``: a file, one sentence a line
    (default: :data:`NEGATIVE_SENTENCES`, written to ``folder/sentences.txt``)."""
    from speech.synth.cli import main as synth_main
    from speech.synth.engines import find_voices

    folder = Path(folder)
    if (folder / "synth.jsonl").is_file():
        return None
    names = [e for e in (engines or SYNTH_ENGINES).split(",") if e]
    if not any(find_voices(names).values()):
        return f"no synthesis engine installed ({', '.join(names)}): the synthesized negatives are skipped"
    folder.mkdir(parents=True, exist_ok=True)
    if sentences is None:
        sentences = str(folder / "sentences.txt")
        Path(sentences).write_text(NEGATIVE_SENTENCES, encoding="utf-8")
    bad = [line for line in Path(sentences).read_text(encoding="utf-8").splitlines() if command_words_in(line)]
    if bad:
        raise ValueError(f"{sentences}: {len(bad)} sentences hold a command word, e.g. {bad[0]!r}")
    status = synth_main(["--phrases", sentences, "--out", str(folder), "--engines", ",".join(names),
                         "--variants", str(variants), "--seed", str(seed), "--jobs", str(jobs), "--quiet"])
    if not (folder / "synth.jsonl").is_file():
        return f"speech synth --phrases failed (exit status {status}): the synthesized negatives are skipped"
    return None
