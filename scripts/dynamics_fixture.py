"""Writes crates/engine/tests/fixtures/dynamics_reference.json: three steps of
torch.optim.AdamW on one weight matrix in float64, with torch.nn.utils.clip_grad_norm_ before
each step (the matrix is the only parameter, so its norm is the global one), and after each step
the norms Hearth records: the gradient before clipping, the change the step made and the weights
before it, and their update-to-weight ratio.

Weights and gradients are a formula of the row-major index, so nothing random is shared."""
import json
import math
import os

import torch

ROWS, COLS = 6, 5  # PyTorch layout: [out, in]
LR, BETAS, EPS, WD, CLIP = 0.01, (0.9, 0.95), 1e-8, 0.1, 1.0
# The first gradient's norm is above CLIP (clipped), the others below it.
GRAD_SCALES = [0.5, 0.05, 0.08]


def matrix(phase, scale):
    vals = [scale * math.sin(0.37 * k + phase) for k in range(ROWS * COLS)]
    return torch.tensor(vals, dtype=torch.float64).reshape(ROWS, COLS)


def main():
    w = torch.nn.Parameter(matrix(0.3, 0.2))
    opt = torch.optim.AdamW([w], lr=LR, betas=BETAS, eps=EPS, weight_decay=WD)
    steps = []
    for i, scale in enumerate(GRAD_SCALES):
        grad = matrix(1.1 + i, scale)
        before = w.detach().clone()
        w.grad = grad.clone()
        norm = torch.nn.utils.clip_grad_norm_([w], CLIP)
        opt.step()
        change = w.detach() - before
        steps.append(
            {
                "grad": grad.flatten().tolist(),
                "grad_norm": float(norm),
                "update_norm": float(change.norm()),
                "weight_norm": float(before.norm()),
                "ratio": float(change.norm() / before.norm()),
                "after": w.detach().flatten().tolist(),
            }
        )
    fixture = {
        "rows": ROWS,
        "cols": COLS,
        "lr": LR,
        "betas": BETAS,
        "eps": EPS,
        "weight_decay": WD,
        "grad_clip": CLIP,
        "weights": matrix(0.3, 0.2).flatten().tolist(),
        "steps": steps,
    }
    out = os.path.join(
        os.path.dirname(__file__), "..", "crates", "engine", "tests", "fixtures", "dynamics_reference.json"
    )
    with open(out, "w") as f:
        json.dump(fixture, f, indent=1)
    print(out)


if __name__ == "__main__":
    main()
