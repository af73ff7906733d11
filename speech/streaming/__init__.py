"""Streaming recognition: the layer between a source of audio blocks and the :class:`~speech.recognizer.Recognizer`.

One path for the microphone, ``--input-file`` and the streaming benchmark::

    audio callback / file feeder --(BlockQueue: never blocks the callback)--> run_stream():
        StreamPipeline: downmix -> StreamResampler (source rate -> model rate) -> RingBuffer
            classifier: CommandSpotter  = sliding window (model's window, hop) + RecognizeCommands smoothing
            CTC:        UtteranceTranscriber = EnergyVAD gate -> one decode per utterance (grammar, beam, rejection)
        -> Detection(time, label or text, score, audio)

Inside: ``buffers`` (ring buffer, block resampler, levels), ``detection`` (posterior smoothing, the
command spotter, :class:`Detection`), ``utterances`` (energy VAD, the utterance transcriber), ``pipeline``
(the pipeline, the block queue, the file feeder, :func:`run_stream`) and ``stateful``
(:class:`StreamingModel`: a unidirectional model run chunk by chunk with carried GRU states; its outputs
equal whole-clip outputs). The names below are the package's face. The streaming benchmark
(``speech bench streaming``) is in :mod:`speech.bench.streaming`.
"""
from speech.streaming.buffers import NoiseFloor, RingBuffer, StreamResampler, frame_levels_db, level_db
from speech.streaming.detection import (
    DEFAULT_GATE_DB, NEVER_FIRE, SILENCE, UNKNOWN, CommandSpotter, ComputeMeter, Detection, RecognizeCommands, SmoothingConfig,
    live_threshold, threshold_for_false_accepts,
)
from speech.streaming.pipeline import (
    END, BlockQueue, FileInput, StreamError, StreamPipeline, StreamSummary, make_stage, run_stream,
)
from speech.streaming.stateful import StreamingModel
from speech.streaming.utterances import DEFAULT_REJECT, EnergyVAD, UtteranceTranscriber, VADConfig

__all__ = [
    "RingBuffer", "StreamResampler", "level_db", "frame_levels_db", "NoiseFloor",
    "SILENCE", "UNKNOWN", "NEVER_FIRE", "DEFAULT_GATE_DB", "Detection", "ComputeMeter", "SmoothingConfig", "live_threshold", "threshold_for_false_accepts", "RecognizeCommands",
    "CommandSpotter",
    "VADConfig", "EnergyVAD", "UtteranceTranscriber", "DEFAULT_REJECT",
    "StreamPipeline", "make_stage", "StreamError", "END", "BlockQueue", "FileInput", "StreamSummary", "run_stream",
    "StreamingModel",
]
