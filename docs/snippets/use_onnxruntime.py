# Adapt the exported MAML model to five points of a sine wave with onnxruntime.
# Run from the repository root: python docs/snippets/use_onnxruntime.py
import json

import numpy as np
import onnxruntime as ort

manifest = json.load(open("exported/manifest.json"))
model = next(m for m in manifest["models"] if m["name"] == "maml-sinusoid")
session = ort.InferenceSession("exported/" + model["file"], providers=["CPUExecutionProvider"])

# One task, y = 3 sin(x + 1), seen at five points; judged on 100 points across [-5, 5].
support_x = np.array([[-4.0], [-2.0], [0.0], [1.5], [3.5]], dtype=np.float32)
support_y = 3.0 * np.sin(support_x + 1.0)
query_x = np.linspace(-5.0, 5.0, 100, dtype=np.float32).reshape(-1, 1)
query_true = 3.0 * np.sin(query_x + 1.0)

feeds = {
    "support_x": support_x,
    "support_y": support_y,
    "query_x": query_x,
    "inner_lr": np.array(model["inner_lr"], dtype=np.float32),  # a scalar, shape []
}
# The manifest documents each input's type and shape: check them here rather
# than read an onnxruntime stack trace ("N" and "M" may be any size).
for spec in model["graph"]["inputs"]:
    value = feeds[spec["name"]]
    if value.dtype != np.float32 or value.ndim != len(spec["shape"]) or any(
            size != want for size, want in zip(value.shape, spec["shape"]) if isinstance(want, int)):
        raise ValueError(f"{spec['name']} must be float32 shaped {spec['shape']}, "
                         f"got {value.dtype} shaped {list(value.shape)}")
query_y, support_loss = session.run(["query_y", "support_loss"], feeds)
# query_y holds the predictions after 0, 1, ..., S steps: shape [S + 1, 100, 1].
for steps in (0, 1, 10):
    query_mse = np.mean((query_y[steps] - query_true) ** 2)
    print(f"after {steps:2d} steps: support MSE {support_loss[steps]:#.3g}, query MSE {query_mse:#.3g}")
