# Let the exported MAML conv net play one 5-way 1-shot round of the quiz with onnxruntime.
# Run from the repository root, with the project installed:
#   python docs/snippets/use_glyphs_onnxruntime.py
import json

import numpy as np
import onnxruntime as ort

from site_builder.glyphs import split_glyphs

manifest = json.load(open("exported/manifest.json"))
model = next(m for m in manifest["models"] if m["name"] == "maml-glyphs")
session = ort.InferenceSession("exported/" + model["file"], providers=["CPUExecutionProvider"])

# The quiz's first alphabet at the net's size: ink[character, hand, 28, 28], uint8, 255 = ink.
# Drawings of your own work too: 28x28 grayscale scaled to ink 1.0 and paper 0.0.
ink = split_glyphs("held-out", 1)[0]
characters = [2, 5, 9, 14, 17]                 # this round's five characters: class i is characters[i]
order = [3, 0, 4, 1, 2]                        # the classes of the queries, shuffled
support_images = ink[characters, 0] / 255.0    # each character once, by the first hand
query_images = ink[[characters[c] for c in order], 1] / 255.0   # the same five by another hand

feeds = {
    "support_images": support_images[:, None].astype(np.float32),   # [5, 1, 28, 28]
    "support_labels": np.arange(5, dtype=np.float32),               # 0..4, whole numbers as float32
    "query_images": query_images[:, None].astype(np.float32),       # [5, 1, 28, 28]
    "inner_lr": np.array(model["inner_lr"], dtype=np.float32),      # a scalar, shape []
}
# Check each input against the type and shape the manifest documents ("N" and "M" may be any size).
for spec in model["graph"]["inputs"]:
    value = feeds[spec["name"]]
    if value.dtype != np.float32 or value.ndim != len(spec["shape"]) or any(
            size != want for size, want in zip(value.shape, spec["shape"]) if isinstance(want, int)):
        raise ValueError(f"{spec['name']} must be float32 shaped {spec['shape']}, "
                         f"got {value.dtype} shaped {list(value.shape)}")
output_names = [spec["name"] for spec in model["graph"]["outputs"]]   # probabilities, support_loss
probabilities, support_loss = session.run(output_names, feeds)
# probabilities[s, q, c]: query q's probability of class c after s steps; shape [S + 1, 5, 20],
# and the 15 classes that no support label names get 0.
last = model["steps"]
print(f"support loss {support_loss[0]:.3f} before adapting, {support_loss[last]:.3f} after {last} steps")
for q, truth in enumerate(order):
    first, guess = int(probabilities[0, q].argmax()), int(probabilities[last, q].argmax())
    print(f"query {q}: drawn as class {truth}; before adapting class {first} "
          f"({probabilities[0, q, first]:.0%} sure), after {last} steps class {guess} "
          f"({probabilities[last, q, guess]:.0%} sure)")
