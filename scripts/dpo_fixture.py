"""Writes crates/engine/tests/fixtures/dpo_reference.json: the sigmoid DPO loss (Rafailov et al.
2023) as TRL's DPOTrainer computes it (label smoothing 0), with PyTorch autograd in float64,
for a batch of preference pairs given as answer logits.

Each answer's log-probability is the sum, over its labelled positions, of the log-softmax of
the logits at the label (label -1: not part of the answer). Then

    logits = (pc - pr) - (rc - rr)
    loss = mean(-logsigmoid(beta * logits))
    chosen_rewards = beta * (pc - rc), rejected_rewards = beta * (pr - rr)

The fixture holds the loss, the rewards and the gradient of the loss with respect to the
chosen and rejected logits. Logits are a formula of the row-major index, so nothing random
is shared."""
import json
import math
import os

import torch
import torch.nn.functional as F

PAIRS, LEN, VOCAB = 3, 5, 7


def values(phase, scale, n):
    return [scale * math.sin(0.71 * k + phase) + 0.3 * math.cos(0.13 * k * k + phase) for k in range(n)]


def labels(shift):
    out = []
    for b in range(PAIRS):
        row = []
        for t in range(LEN):
            # The first positions are prompt (not labelled); the answer length varies by row.
            row.append(-1 if t < 1 + (b + shift) % 3 else (3 * b + 2 * t + shift) % VOCAB)
        out.append(row)
    return out


def logps(logits, lab):
    lab = torch.tensor(lab)
    mask = lab >= 0
    picked = torch.log_softmax(logits, -1).gather(-1, lab.clamp(min=0).unsqueeze(-1)).squeeze(-1)
    return (picked * mask).sum(-1)


def case(beta):
    n = PAIRS * LEN * VOCAB
    chosen = torch.tensor(values(0.2, 1.5, n), dtype=torch.float64).reshape(PAIRS, LEN, VOCAB).requires_grad_()
    rejected = torch.tensor(values(1.3, 1.2, n), dtype=torch.float64).reshape(PAIRS, LEN, VOCAB).requires_grad_()
    chosen_labels, rejected_labels = labels(0), labels(1)
    ref_chosen = torch.tensor([-6.1, -4.3, -7.7], dtype=torch.float64)
    ref_rejected = torch.tensor([-5.2, -6.9, -4.4], dtype=torch.float64)
    pc, pr = logps(chosen, chosen_labels), logps(rejected, rejected_labels)
    logits = (pc - pr) - (ref_chosen - ref_rejected)
    losses = -F.logsigmoid(beta * logits)
    loss = losses.mean()
    loss.backward()
    return {
        "beta": beta,
        "chosen_logits": chosen.detach().flatten().tolist(),
        "rejected_logits": rejected.detach().flatten().tolist(),
        "chosen_labels": [x for row in chosen_labels for x in row],
        "rejected_labels": [x for row in rejected_labels for x in row],
        "ref_chosen": ref_chosen.tolist(),
        "ref_rejected": ref_rejected.tolist(),
        "policy_chosen_logps": pc.detach().tolist(),
        "policy_rejected_logps": pr.detach().tolist(),
        "loss": loss.item(),
        "chosen_rewards": (beta * (pc - ref_chosen)).detach().tolist(),
        "rejected_rewards": (beta * (pr - ref_rejected)).detach().tolist(),
        "grad_chosen": chosen.grad.flatten().tolist(),
        "grad_rejected": rejected.grad.flatten().tolist(),
    }


out = {"pairs": PAIRS, "len": LEN, "vocab": VOCAB, "cases": [case(0.1), case(0.5)]}
path = os.path.join(os.path.dirname(__file__), "..", "crates", "engine", "tests", "fixtures", "dpo_reference.json")
with open(path, "w") as f:
    json.dump(out, f)
print("wrote", os.path.normpath(path))
