"""Writes crates/engine/tests/fixtures/ngram_reference.json: validation cross-entropies of
add-k n-gram count models (orders 1-5) on a fixed text, char tokens, computed independently of
Hearth in plain Python with the same definition: counts from the training split; a position
with fewer than n-1 tokens before it uses the context it has; P = (c(ctx, w) + k) /
(c(ctx) + k V); k from the grid, chosen on the last tenth of train with counts from the rest."""
import json
import math
import os
from collections import Counter

TEXT = (
    "First Citizen: Before we proceed any further, hear me speak. All: Speak, speak. "
    "First Citizen: You are all resolved rather to die than to famish? All: Resolved. resolved. "
    "First Citizen: First, you know Caius Marcius is chief enemy to the people. All: We know't, "
    "we know't. First Citizen: Let us kill him, and we'll have corn at our own price. "
    "Is't a verdict? All: No more talking on't; let it be done: away, away! "
) * 6
GRID = [1e-4, 1e-3, 3e-3, 0.01, 0.03, 0.1, 0.3, 1.0]

vocab = sorted(set(TEXT))
ids = [vocab.index(c) for c in TEXT]
n_val = len(ids) // 10
train, val = ids[:-n_val], ids[-n_val:]


def fit(tokens, order):
    ctx, ngram = Counter(), Counter()
    for at in range(len(tokens)):
        c = tuple(tokens[max(0, at - (order - 1)):at])
        ctx[c] += 1
        ngram[c + (tokens[at],)] += 1
    return ctx, ngram


def xent(model, tokens, order, k):
    ctx, ngram = model
    total = 0.0
    for at in range(len(tokens)):
        c = tuple(tokens[max(0, at - (order - 1)):at])
        total -= math.log((ngram[c + (tokens[at],)] + k) / (ctx[c] + k * len(vocab)))
    return total / len(tokens)


cut = len(train) - len(train) // 10
out = []
for order in range(1, 6):
    probe = fit(train[:cut], order)
    k = min(GRID, key=lambda k: xent(probe, train[cut:], order, k))
    out.append({"order": order, "k": k, "val_loss": xent(fit(train, order), val, order, k)})

path = os.path.join(os.path.dirname(__file__), "..", "crates", "engine", "tests", "fixtures", "ngram_reference.json")
with open(path, "w") as f:
    json.dump({"text": TEXT, "vocab": vocab, "n_val": n_val, "baselines": out}, f)
print(out)
