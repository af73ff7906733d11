"""``speech.models``: exact batch independence for every head/subsampling/direction, the padded
reversal, pinned parameter counts, and streaming equivalence of the unidirectional encoder."""
from __future__ import annotations

import pytest
import torch

from speech.features import FeatureConfig, lengths_to_mask
from speech.models import ModelConfig, SpeechModel, count_parameters
from speech.models.encoder import ConvSubsampling, Conv2dSubsampling, Encoder, FrameStacking, GRULayer, reverse_padded
from speech.models.heads import ClassificationHead, CTCHead
from speech.text import CHARACTERS

torch.set_num_threads(1)

TINY_FEATURES = FeatureConfig(kind="mfcc", n_mfcc=13, normalize="global")


def tiny_model(head: str, subsampling: str = "stack", bidirectional: bool = True, pooling: str = "attention",
               seed: int = 0, **features) -> SpeechModel:
    torch.manual_seed(seed)
    config = ModelConfig(head=head, hidden_size=16, num_layers=2, subsampling=subsampling, subsampling_factor=2,
                         bidirectional=bidirectional, pooling=pooling)
    labels = list("abcde") if head == "classification" else CHARACTERS
    model = SpeechModel(config, FeatureConfig(**{**vars(TINY_FEATURES), **features}), labels).eval()
    with torch.no_grad():  # non-trivial global statistics, as after training
        model.front_end.set_statistics(torch.randn(13) * 10, torch.rand(13) * 20 + 1)
    return model


def padded_batch(lengths: list[int], seed: int = 0) -> tuple[list[torch.Tensor], torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    clips = [torch.randn(n, generator=g) * 0.1 for n in lengths]
    batch = torch.zeros(len(clips), max(lengths) + 321)  # more padding than the longest clip needs
    for i, c in enumerate(clips):
        batch[i, : len(c)] = c
    return clips, batch, torch.tensor(lengths)


# --------------------------------------------------------------------------- batch independence

LENGTHS = [16000, 4321, 9999, 160, 12000]


@pytest.mark.parametrize("head", ["classification", "ctc"])
@pytest.mark.parametrize("subsampling", ["none", "stack", "conv", "conv2d"])
@pytest.mark.parametrize("bidirectional", [True, False])
def test_batch_of_one_equals_batch_of_n(head, subsampling, bidirectional):
    model = tiny_model(head, subsampling, bidirectional)
    clips, batch, lengths = padded_batch(LENGTHS)
    with torch.no_grad():
        out, out_lengths = model(batch, lengths)
        for i, clip in enumerate(clips):
            alone, alone_lengths = model(clip[None], lengths[i : i + 1])
            assert int(alone_lengths[0]) == int(out_lengths[i])
            if head == "classification":
                assert out.shape == (len(clips), 5)
                torch.testing.assert_close(out[i], alone[0], rtol=0, atol=1e-5)
            else:
                n = int(out_lengths[i])
                assert out.shape[-1] == len(CHARACTERS) + 1 and alone.shape[1] == n
                torch.testing.assert_close(out[i, :n], alone[0], rtol=0, atol=1e-5)


def test_mean_pooling_batch_independent():
    model = tiny_model("classification", pooling="mean")
    clips, batch, lengths = padded_batch([8000, 3000, 500], seed=1)
    with torch.no_grad():
        out, _ = model(batch, lengths)
        for i, clip in enumerate(clips):
            torch.testing.assert_close(out[i], model(clip[None], lengths[i : i + 1])[0][0], rtol=0, atol=1e-5)


@pytest.mark.parametrize("subsampling, expected", [("none", [101, 28, 1, 2]), ("stack", [51, 14, 1, 1]),
                                                   ("conv", [51, 14, 1, 1]), ("conv2d", [51, 14, 1, 1])])
def test_output_lengths(subsampling, expected):
    model = tiny_model("ctc", subsampling)
    _, batch, lengths = padded_batch([16000, 4321, 0, 160])
    with torch.no_grad():
        log_probs, out_lengths = model(batch, lengths)
    assert out_lengths.tolist() == expected
    frames = 1 + batch.shape[1] // 160  # the padded width sets the time axis
    assert log_probs.shape == (4, {"none": frames, "stack": -(-frames // 2), "conv": -(-frames // 2),
                             "conv2d": -(-frames // 2)}[subsampling], 29)
    torch.testing.assert_close(log_probs.exp().sum(-1), torch.ones(log_probs.shape[:2]))


def test_encoder_zeroes_padded_steps():
    torch.manual_seed(0)
    encoder = Encoder(13, hidden_size=8, num_layers=2, dropout=0.0, bidirectional=True, subsampling="conv").eval()
    x = torch.randn(3, 20, 13)
    out, lengths = encoder(x, torch.tensor([20, 7, 1]))
    assert lengths.tolist() == [10, 4, 1] and out.shape == (3, 10, 16)
    assert torch.all(out[1, 4:] == 0) and torch.all(out[2, 1:] == 0) and torch.all(out[0].abs().sum(-1) > 0)


def test_unknown_options_are_errors():
    with pytest.raises(ValueError, match="model.subsampling must be none, stack, conv or conv2d"):
        Encoder(13, subsampling="pool")
    with pytest.raises(ValueError, match="model.pooling must be attention or mean"):
        ClassificationHead(16, 3, pooling="max")
    with pytest.raises(ValueError, match="model.head must be classification or ctc"):
        SpeechModel(ModelConfig(head="rnnt"), FeatureConfig(), ["a"])


# --------------------------------------------------------------------------- pieces


def test_reverse_padded_is_self_inverse_and_keeps_padding():
    x = torch.arange(2 * 5 * 1, dtype=torch.float32).reshape(2, 5, 1) + 1
    lengths = torch.tensor([5, 3])
    r = reverse_padded(x, lengths)
    assert r[0, :, 0].tolist() == [5, 4, 3, 2, 1]
    assert r[1, :, 0].tolist() == [8, 7, 6, 9, 10]  # steps 3 and 4 are padding: left where they are
    assert torch.equal(reverse_padded(r, lengths), x)
    y = torch.randn(4, 9, 3)
    lengths = torch.tensor([9, 1, 4, 0])
    ry = reverse_padded(y, lengths)
    assert torch.equal(reverse_padded(ry, lengths), y)
    assert torch.equal(ry[1], y[1]) and torch.equal(ry[3], y[3])  # length 1 and 0: unchanged
    assert torch.equal(ry[2, 4:], y[2, 4:]) and torch.equal(ry[2, :4], y[2, :4].flip(0))


def test_frame_stacking():
    x = torch.arange(2 * 5 * 2, dtype=torch.float32).reshape(2, 5, 2)
    y, lengths = FrameStacking(2, 2)(x, torch.tensor([5, 2]))
    assert y.shape == (2, 3, 4) and lengths.tolist() == [3, 1]
    assert y[0, 0].tolist() == [0, 1, 2, 3] and y[0, 2].tolist() == [8, 9, 0, 0]


def test_conv_subsampling_lengths():
    conv = ConvSubsampling(4, 3, 6)
    y, lengths = conv(torch.randn(2, 10, 4), torch.tensor([10, 4]))
    assert y.shape == (2, 4, 6) and lengths.tolist() == [4, 2]
    assert torch.all(y[1, 2:] == 0)


def test_conv2d_subsampling_shapes_and_time_context():
    conv = Conv2dSubsampling(13, 2, 4)  # frequency 13 -> 7 -> 4 bins, 4 channels each
    assert conv.output_dim == 16
    x = torch.randn(2, 10, 13)
    y, lengths = conv(x, torch.tensor([10, 5]))
    assert y.shape == (2, 5, 16) and lengths.tolist() == [5, 3]
    assert torch.all(y[1, 3:] == 0)
    # output k sees frames 2k-1 .. 2k+1 only (as ConvSubsampling), which is what streaming relies on
    changed = x.clone()
    changed[:, 6:] += 1.0
    y2, _ = conv(changed, torch.tensor([10, 5]))
    torch.testing.assert_close(y2[0, :3], y[0, :3])
    assert not torch.allclose(y2[0, 3], y[0, 3])


# --------------------------------------------------------------------------- parameter counts


def gru(inputs: int, hidden: int) -> int:
    """One GRU direction: 3 gates x (input weights + hidden weights + input bias + hidden bias)."""
    return 3 * (inputs * hidden + hidden * hidden + 2 * hidden)


def test_tiny_classifier_parameter_count_is_pinned():
    """13 MFCCs, frame stacking x2 -> 26 inputs; 2 bidirectional layers of 8; attention pooling; 5 classes.

    layer 1: 2 x 3 x (26*8 + 8*8 + 2*8) = 2 x 864 = 1728
    layer 2: 2 x 3 x (16*8 + 8*8 + 2*8) = 2 x 624 = 1248
    attention Linear(16, 1) = 17; output Linear(16, 5) = 85
    front end: no parameters (mean/std are buffers)         total = 3078
    """
    model = SpeechModel(ModelConfig(hidden_size=8), FeatureConfig(kind="mfcc"), list("abcde"))
    assert 2 * gru(26, 8) + 2 * gru(16, 8) + (16 + 1) + (16 * 5 + 5) == 3078
    assert count_parameters(model) == 3078
    assert count_parameters(model.front_end) == 0


def test_tiny_ctc_parameter_count_is_pinned():
    """13 MFCCs, conv subsampling x2 (Conv1d(13, 8, kernel 3)); 1 unidirectional layer of 8; CTC over 5
    tokens + blank.

    conv: 13*8*3 + 8 = 320; GRU: 3 x (8*8 + 8*8 + 2*8) = 432; output Linear(8, 6) = 54   total = 806
    """
    config = ModelConfig(head="ctc", hidden_size=8, num_layers=1, bidirectional=False, subsampling="conv")
    model = SpeechModel(config, FeatureConfig(kind="mfcc"), list("abcde"))
    assert (13 * 8 * 3 + 8) + gru(8, 8) + (8 * 6 + 6) == 806
    assert count_parameters(model) == 806


def test_default_models_stay_small():
    """Defaults: 40 log-mels, stack x2 -> 80 inputs; 2 bidirectional GRU layers of 128.
    classifier (12 classes): 2*gru(80,128) + 2*gru(256,128) + 257 + 3084 = 461,069 (< 500k)."""
    classifier = SpeechModel(ModelConfig(), FeatureConfig(), [str(i) for i in range(12)])
    assert count_parameters(classifier) == 2 * gru(80, 128) + 2 * gru(256, 128) + 257 + (256 * 12 + 12) == 461069
    ctc = SpeechModel(ModelConfig(head="ctc"), FeatureConfig(), CHARACTERS)
    assert count_parameters(ctc) < 500_000
    assert count_parameters(classifier) < 500_000


# --------------------------------------------------------------------------- streaming


def test_unidirectional_encoder_chunked_equals_whole():
    torch.manual_seed(0)
    encoder = Encoder(13, hidden_size=12, num_layers=3, dropout=0.3, bidirectional=False, subsampling="none").eval()
    x = torch.randn(2, 37, 13)
    lengths = torch.tensor([37, 37])
    with torch.no_grad():
        whole, whole_lengths, whole_states = encoder.forward_with_state(x, lengths)
        pieces, states = [], None
        for start, stop in ((0, 1), (1, 10), (10, 11), (11, 30), (30, 37)):
            chunk = x[:, start:stop]
            out, out_lengths, states = encoder.forward_with_state(chunk, torch.full((2,), stop - start), states)
            assert out_lengths.tolist() == [stop - start] * 2
            pieces.append(out)
    assert len(states) == 3 and states[0].shape == (1, 2, 12)
    torch.testing.assert_close(torch.cat(pieces, 1), whole, rtol=0, atol=1e-5)
    for a, b in zip(states, whole_states):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-5)


def test_bidirectional_layer_backward_direction_sees_only_valid_frames():
    """The backward GRU of a padded clip starts at the clip's last valid frame: equal to running the
    backward GRU on the clip alone, flipped."""
    torch.manual_seed(0)
    layer = GRULayer(5, 4, bidirectional=True)
    x = torch.randn(1, 9, 5)
    x_padded = torch.cat([x, torch.randn(1, 4, 5)], 1)  # garbage after the valid frames
    with torch.no_grad():
        out, _ = layer(x_padded, torch.tensor([9]))
        back, _ = layer.backward_rnn(x.flip(1))
    torch.testing.assert_close(out[0, :9, 4:], back[0].flip(0), rtol=0, atol=1e-6)
    torch.testing.assert_close(out[0, :9, :4], layer.forward_rnn(x)[0][0], rtol=0, atol=1e-6)


def test_heads_shapes():
    encoded = torch.randn(3, 6, 10)
    lengths = torch.tensor([6, 2, 4])
    logits = ClassificationHead(10, 4, dropout=0.0)(encoded, lengths)
    assert logits.shape == (3, 4)
    log_probs = CTCHead(10, 7, dropout=0.0)(encoded, lengths)
    assert log_probs.shape == (3, 6, 8) and log_probs.dtype == torch.float32
    mask = lengths_to_mask(lengths, 6)
    # attention pooling ignores padded steps: changing them does not change the logits
    head = ClassificationHead(10, 4, dropout=0.0)
    changed = encoded.clone()
    changed[~mask] = 100.0
    torch.testing.assert_close(head(encoded, lengths), head(changed, lengths))


def test_filler_classes_fold_into_unknown():
    """``model.filler_classes``: the head learns each filler as a class; ``forward`` reports the labels only,
    ``_unknown_``'s probability the sum of its own and the fillers'; the targets fold the same way; a
    warm start from the model without fillers begins with that model's posteriors."""
    from speech.models import expanded_head

    labels = ["yes", "no", "_unknown_", "_silence_"]
    torch.manual_seed(0)
    plain = SpeechModel(ModelConfig(hidden_size=16, num_layers=1), TINY_FEATURES, labels).eval()
    config = ModelConfig(hidden_size=16, num_layers=1, filler_classes=["four", "nine", "go"])
    model = SpeechModel(config, TINY_FEATURES, labels).eval()
    assert model.train_labels == labels + ["four", "nine", "go"] and model.head.output.out_features == 7
    wave, lengths = torch.randn(3, 16000) * 0.1, torch.tensor([16000, 11000, 6000])
    with torch.no_grad():
        reported, _ = model(wave, lengths)
        fine, _ = model.forward_features(*model.front_end(wave, lengths), fold=False)
    assert reported.shape == (3, 4) and fine.shape == (3, 7)
    p, q = torch.softmax(fine, -1), torch.softmax(reported, -1)
    torch.testing.assert_close(q[:, 2], p[:, 2] + p[:, 4:].sum(-1))
    torch.testing.assert_close(q[:, [0, 1, 3]], p[:, [0, 1, 3]])
    assert model.fold_targets(torch.tensor([0, 2, 4, 6, 3])).tolist() == [0, 2, 2, 2, 3]
    without = fine[:, :4]  # a model without fillers folds nothing
    assert plain.fold_fillers(without) is without and plain.fold_targets(torch.tensor([3])).tolist() == [3]

    state = {k: v for k, v in plain.state_dict().items() if not k.startswith("head.output")}
    state.update(expanded_head(plain, model))
    model.load_state_dict(state)
    with torch.no_grad():
        torch.testing.assert_close(torch.softmax(model(wave, lengths)[0], -1), torch.softmax(plain(wave, lengths)[0], -1))
    assert expanded_head(model, model) == {} and expanded_head(model, plain) == {}

    with pytest.raises(ValueError, match="_unknown_"):
        SpeechModel(config, TINY_FEATURES, ["yes", "no"])
    with pytest.raises(ValueError, match="new and distinct"):
        SpeechModel(ModelConfig(filler_classes=["yes"]), TINY_FEATURES, labels)
