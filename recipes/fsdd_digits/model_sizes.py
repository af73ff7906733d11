"""model_sizes.py: parameters and compute per live hop (one 1 s window, onnxruntime, one thread) of the classifier
at several sizes, the recipe's MFCC front end; ratios against the default size (2 x 128) timed in the same run,
interleaved. Weights do not change the compute, so untrained models serve. Prints the table of recipes/fsdd_digits/README.md, "Model size":
    python recipes/fsdd_digits/model_sizes.py [ROUNDS]"""
import time, sys
import torch
from speech.features import FeatureConfig
from speech.models.model import ModelConfig, SpeechModel, count_parameters
from speech.backends import onnx_backend
torch.set_num_threads(1)
labels = [f"c{i}" for i in range(12)]
sizes = [(64, 2), (128, 2), (192, 2), (256, 2), (128, 3)]
feat = FeatureConfig(kind="mfcc", n_mfcc=13, deltas=2)
backends, params = {}, {}
for h, l in sizes:
    m = SpeechModel(ModelConfig(hidden_size=h, num_layers=l), feat, labels).eval()
    params[(h, l)] = count_parameters(m)
    backends[(h, l)] = onnx_backend(m, threads=1)
x = torch.randn(1, 16000) * 0.1
n = torch.tensor([16000])
times = {s: [] for s in sizes}
for rnd in range(int(sys.argv[1]) if len(sys.argv) > 1 else 5):
    for s in sizes:
        b = backends[s]
        b(x, n)
        t0 = time.perf_counter()
        for _ in range(100):
            b(x, n)
        times[s].append((time.perf_counter() - t0) / 100 * 1000)
ref = sorted(times[(128, 2)])[len(times[(128, 2)]) // 2]
print("| GRU (hidden x layers) | parameters | ms per 1 s window (median of rounds) | x the default |")
print("|---|---:|---:|---:|")
for s in sizes:
    med = sorted(times[s])[len(times[s]) // 2]
    print(f"| {s[0]} x {s[1]}{' (default)' if s == (128, 2) else ''} | {params[s]:,} | {med:.2f} | {med / ref:.2f} |")
