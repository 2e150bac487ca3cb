"""Writes tests/fixtures/next_token_reference.json: the loss and every parameter gradient of a
tiny GPT (nanoGPT's model, from bench_pytorch.py) on fixed weights and a fixed batch, computed
with PyTorch in float64. The Rust test sets the same weights in Hearth's model and compares.

Weights are a formula of each tensor's PyTorch name and row-major index, so nothing random has
to be shared:  value = scale * sin(0.37 * k + phase(name)) (+ 1 for LayerNorm gains)."""
import json
import math
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(__file__))
from bench_pytorch import GPT  # noqa: E402

VOCAB, BLOCK, LAYERS, HEADS, WIDTH, BATCH = 13, 8, 2, 2, 16, 3


def phase(name):
    return sum(ord(c) for c in name) % 17 * 0.1


def value(name, shape):
    n = math.prod(shape)
    scale = 0.1 if name.endswith("ln_1.weight") or name.endswith("ln_2.weight") or name == "ln_f.weight" else 0.2
    vals = [scale * math.sin(0.37 * k + phase(name)) for k in range(n)]
    if name.endswith("ln_1.weight") or name.endswith("ln_2.weight") or name == "ln_f.weight":
        vals = [1.0 + v for v in vals]
    return torch.tensor(vals, dtype=torch.float64).reshape(shape)


def batch():
    x = [[(b * 5 + t * 3) % VOCAB for t in range(BLOCK)] for b in range(BATCH)]
    y = [[(b * 7 + t * 2 + 1) % VOCAB for t in range(BLOCK)] for b in range(BATCH)]
    return torch.tensor(x), torch.tensor(y)


def main():
    torch.set_default_dtype(torch.float64)
    model = GPT(VOCAB, BLOCK, LAYERS, HEADS, WIDTH)
    with torch.no_grad():
        for name, p in model.named_parameters():
            p.copy_(value(name, tuple(p.shape)))
    x, y = batch()
    loss = model(x, y)
    loss.backward()
    out = {
        "config": {"vocab": VOCAB, "block": BLOCK, "layers": LAYERS, "heads": HEADS, "width": WIDTH},
        "inputs": x.tolist(),
        "targets": y.tolist(),
        "loss": loss.item(),
        "grads": {name: p.grad.flatten().tolist() for name, p in model.named_parameters()},
        "shapes": {name: list(p.shape) for name, p in model.named_parameters()},
    }
    # Two AdamW steps as nanoGPT takes them: clip the global norm to 1, decay matrices only.
    decay = [p for p in model.parameters() if p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.dim() < 2]
    opt = torch.optim.AdamW(
        [{"params": decay, "weight_decay": 0.1}, {"params": no_decay, "weight_decay": 0.0}],
        lr=1e-2, betas=(0.9, 0.99), eps=1e-8,
    )
    norms = []
    for _ in range(2):
        norms.append(torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0).item())
        opt.step()
        opt.zero_grad(set_to_none=True)
        model(x, y).backward()
    out["adamw"] = {
        "lr": 1e-2,
        "grad_norms": norms,
        "params": {name: p.detach().flatten().tolist() for name, p in model.named_parameters()},
    }
    path = os.path.join(os.path.dirname(__file__), "..", "tests", "fixtures", "next_token_reference.json")
    with open(path, "w") as f:
        json.dump(out, f)
    print(f"loss={loss.item():.10f} written to {os.path.normpath(path)}")


if __name__ == "__main__":
    main()
