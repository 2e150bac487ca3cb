"""Writes crates/engine/tests/fixtures/objectives_reference.json: PyTorch values of each objective's loss and
of the retrieval and correlation metrics on fixed inputs (float64). Hearth's tests compare
their own values against these, so the fixtures are committed and the tests need no PyTorch."""
import json
import math
import os

import torch
import torch.nn.functional as F


def grid(shape, phase):
    n = math.prod(shape)
    return torch.tensor([math.sin(0.91 * k + phase) * 2.0 for k in range(n)], dtype=torch.float64).reshape(shape)


def average_ranks(values):
    order = sorted(range(len(values)), key=lambda i: values[i])
    ranks = [0.0] * len(values)
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and values[order[j + 1]] == values[order[i]]:
            j += 1
        for k in order[i : j + 1]:
            ranks[k] = (i + j) / 2 + 1
        i = j + 1
    return ranks


def spearman(x, y):
    rx, ry = torch.tensor(average_ranks(x)), torch.tensor(average_ranks(y))
    rx, ry = rx - rx.mean(), ry - ry.mean()
    return float((rx * ry).sum() / torch.sqrt((rx * rx).sum() * (ry * ry).sum()))


def main():
    torch.set_default_dtype(torch.float64)
    out = {}

    # Masked token: cross-entropy over chosen positions only (-1 = not chosen).
    logits = grid((2, 5, 7), 0.3)
    labels = torch.tensor([[3, -1, -1, 6, -1], [-1, 0, 2, -1, -1]])
    out["masked"] = {
        "logits": logits.tolist(),
        "labels": labels.tolist(),
        "loss": F.cross_entropy(logits.reshape(-1, 7), labels.reshape(-1), ignore_index=-1).item(),
    }

    # Mean pooling over real tokens, then L2 normalisation.
    hidden = grid((2, 4, 3), 1.1)
    keep = torch.tensor([[1.0, 1.0, 1.0, 0.0], [1.0, 1.0, 1.0, 1.0]])
    pooled = (hidden * keep[:, :, None]).sum(1) / keep.sum(1, keepdim=True)
    out["pooling"] = {
        "hidden": hidden.tolist(),
        "keep": keep.tolist(),
        "mean_normalized": F.normalize(pooled, dim=1).tolist(),
        # Max pooling as sentence-transformers does it: padding set far below every state.
        "max_normalized": F.normalize(
            hidden.masked_fill(keep[:, :, None] == 0, -1e9).max(1).values, dim=1
        ).tolist(),
    }

    # InfoNCE with in-batch and hard negatives at temperature 0.05.
    q = F.normalize(grid((4, 6), 0.2), dim=1)
    p = F.normalize(grid((4, 6), 0.7), dim=1)
    h = F.normalize(grid((3, 6), 2.5), dim=1)
    tau = 0.05
    sim = q @ torch.cat([p, h]).T / tau
    info_nce = F.cross_entropy(sim, torch.arange(4)).item()
    info_nce_plain = F.cross_entropy(q @ p.T / tau, torch.arange(4)).item()
    out["info_nce"] = {
        "q": q.tolist(),
        "p": p.tolist(),
        "h": h.tolist(),
        "temperature": tau,
        "loss_with_hard": info_nce,
        "loss_in_batch": info_nce_plain,
    }

    # Next-token loss and the GRIT total L_emb + lambda * L_gen.
    gen_logits = grid((2, 3, 5), 0.9)
    targets = torch.tensor([[1, 4, 0], [2, 2, 3]])
    gen = F.cross_entropy(gen_logits.reshape(-1, 5), targets.reshape(-1)).item()
    out["grit"] = {
        "logits": gen_logits.tolist(),
        "targets": targets.tolist(),
        "gen_loss": gen,
        "gen_weight": 0.5,
        "total": info_nce + 0.5 * gen,
    }

    # Retrieval: candidate i matches query i; rank = 1 + #(candidates scoring strictly higher).
    sims = grid((12, 12), 0.4)
    for i in range(12):
        sims[i, i] += 1.5 if i % 3 else -0.5
    ranks = [1 + int((sims[i] > sims[i, i]).sum()) for i in range(12)]
    out["retrieval"] = {
        "sims": sims.tolist(),
        "recall_at_1": sum(r <= 1 for r in ranks) / 12,
        "recall_at_10": sum(r <= 10 for r in ranks) / 12,
        "mrr": sum(1.0 / r for r in ranks) / 12,
    }

    x = [0.3, 0.1, 0.3, 0.9, 0.5, 0.2, 0.9]
    y = [1.0, 2.0, 3.0, 5.0, 4.0, 2.0, 4.5]
    out["spearman"] = {"x": x, "y": y, "value": spearman(x, y)}

    path = os.path.join(
        os.path.dirname(__file__), "..", "crates", "engine", "tests", "fixtures", "objectives_reference.json"
    )
    with open(path, "w") as f:
        json.dump(out, f)
    print(f"written {os.path.normpath(path)}")


if __name__ == "__main__":
    main()
