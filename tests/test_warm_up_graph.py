"""The graph lib/ort-runner.js opens to start onnxruntime-web early (issue 11).

loadOrt() starts the runtime on a graph written into the script as bytes, so
that the runtime starts while a widget's own graph is still being fetched. The
bytes must stay a valid ONNX model that onnxruntime opens and runs.
"""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort

RUNNER = Path(__file__).resolve().parents[1] / "docs" / "javascripts" / "lib" / "ort-runner.js"


def warm_up_bytes() -> bytes:
    found = re.search(r"const WARM_UP_GRAPH = new Uint8Array\(\[([\d,\s]+)\]\);", RUNNER.read_text())
    assert found, f"{RUNNER} has no WARM_UP_GRAPH byte list"
    return bytes(int(b) for b in found.group(1).replace("\n", " ").split(",") if b.strip())


def test_the_warm_up_graph_is_an_identity_model_onnxruntime_runs():
    data = warm_up_bytes()
    model = onnx.load_from_string(data)
    onnx.checker.check_model(model, full_check=True)
    assert [node.op_type for node in model.graph.node] == ["Identity"]
    session = ort.InferenceSession(data, providers=["CPUExecutionProvider"])
    (out,) = session.run(None, {"x": np.array([2.5], dtype=np.float32)})
    assert out.tolist() == [2.5]
