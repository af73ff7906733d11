"""ensemble.py MANIFEST A.pt [B.pt ...]: clip accuracy of each model and of their mean posterior on MANIFEST
(`Recognizer.forward`: the padding of `speech evaluate`); the ensembles of README.md, "What moved the number"."""
import json, sys
import numpy as np, torch
from speech.audio import load_audio
from speech.recognizer import Recognizer
torch.set_num_threads(1)
manifest, models = sys.argv[1], sys.argv[2:]
rows = [json.loads(l) for l in open(manifest)]
recs = [Recognizer(m) for m in models]
labels = recs[0].labels
waves = [torch.as_tensor(load_audio(r["audio_filepath"], recs[0].sample_rate)).reshape(-1) for r in rows]
ref = np.array([labels.index(r.get("label", r.get("text"))) for r in rows])
probs = []
with torch.no_grad():
    for m, rec in zip(models, recs):
        p = torch.stack([torch.softmax(o, -1) for o in rec.forward(waves)]).numpy()
        probs.append(p)
        print(f"{m}: {100*(p.argmax(1)==ref).mean():.1f} %")
print(f"mean of all: {100*(np.mean(probs,0).argmax(1)==ref).mean():.1f} %")
