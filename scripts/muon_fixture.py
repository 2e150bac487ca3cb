"""Writes crates/engine/tests/fixtures/muon_reference.json: two Muon updates of one weight
matrix, computed with PyTorch in float64 exactly as the reference implementation does it
(Jordan et al. 2024, github.com/KellerJordan/Muon: momentum lerp, Nesterov lerp, five quintic
Newton-Schulz iterations with (a, b, c) = (3.4445, -4.7750, 2.0315), scaled by
max(1, rows / cols) ** 0.5, decoupled weight decay), except that the iterations run in float64
rather than bfloat16, so the Rust test (float32) compares against the exact values at 1e-5.

Weights and gradients are a formula of the row-major index, so nothing random is shared."""
import json
import math
import os

import torch

ROWS, COLS = 12, 8  # PyTorch layout: [out, in]
LR, WD, BETA, STEPS = 0.02, 0.1, 0.95, 5


def matrix(phase, scale):
    vals = [scale * math.sin(0.37 * k + phase) for k in range(ROWS * COLS)]
    return torch.tensor(vals, dtype=torch.float64).reshape(ROWS, COLS)


def newton_schulz(g, steps=STEPS):
    a, b, c = (3.4445, -4.7750, 2.0315)
    x = g.clone()
    if g.size(-2) > g.size(-1):
        x = x.mT
    x = x / (x.norm(dim=(-2, -1), keepdim=True) + 1e-7)
    for _ in range(steps):
        m = x @ x.mT
        n = b * m + c * m @ m
        x = a * x + n @ x
    if g.size(-2) > g.size(-1):
        x = x.mT
    return x


def muon_step(w, grad, momentum):
    momentum.lerp_(grad, 1 - BETA)
    update = grad.lerp(momentum, BETA)
    update = newton_schulz(update)
    update = update * max(1, grad.size(-2) / grad.size(-1)) ** 0.5
    w.mul_(1 - LR * WD)
    w.add_(update, alpha=-LR)


w = matrix(0.3, 0.2)
w0 = w.clone()
momentum = torch.zeros_like(w)
grads = [matrix(1.1, 0.05), matrix(2.3, 0.04)]
after = []
for g in grads:
    muon_step(w, g, momentum)
    after.append(w.clone())

out = {
    "rows": ROWS,
    "cols": COLS,
    "lr": LR,
    "weight_decay": WD,
    "momentum": BETA,
    "weight": w0.flatten().tolist(),
    "grads": [g.flatten().tolist() for g in grads],
    "after": [a.flatten().tolist() for a in after],
    "orthogonalized": newton_schulz(grads[0]).flatten().tolist(),
}
path = os.path.join(os.path.dirname(__file__), "..", "crates", "engine", "tests", "fixtures", "muon_reference.json")
with open(path, "w") as f:
    json.dump(out, f)
print("wrote", os.path.normpath(path))
