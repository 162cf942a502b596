# The same model and task in PyTorch, from the exported weights.
# Run from the repository root, with the project installed: python docs/snippets/use_pytorch.py
import json

import torch

import meta

manifest = json.load(open("exported/manifest.json"))
model = next(m for m in manifest["models"] if m["name"] == "maml-sinusoid")
params = meta.load_params("exported/" + model["weights"]["file"])   # {"w1": [1, 40], ..., "b3": [1]}

support_x = torch.tensor([[-4.0], [-2.0], [0.0], [1.5], [3.5]])
support_y = 3.0 * torch.sin(support_x + 1.0)
query_x = torch.linspace(-5.0, 5.0, 100).reshape(-1, 1)
query_true = 3.0 * torch.sin(query_x + 1.0)

for steps in (0, 1, 10):
    tuned = meta.fine_tune(params, support_x, support_y, steps, model["inner_lr"])
    support_mse = torch.mean((meta.predict(tuned, support_x) - support_y) ** 2)
    query_mse = torch.mean((meta.predict(tuned, query_x) - query_true) ** 2)
    print(f"after {steps:2d} steps: support MSE {support_mse:#.3g}, query MSE {query_mse:#.3g}")
