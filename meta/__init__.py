"""Pure-PyTorch meta-learning: tasks, a functional MLP, five meta-learning
algorithms, one training loop, the evaluation protocol and ONNX export.

Knows nothing about web sites; ``site_builder`` imports it, never the reverse.
"""
