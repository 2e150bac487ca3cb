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


def masked_accuracy(train, val, width):
    """Fill in the middle token from `width` neighbours each side; back off to fewer."""
    tables = [dict() for _ in range(width + 1)]
    for at in range(width, len(train) - width):
        for w in range(width + 1):
            key = tuple(train[at - w:at]) + ("|",) + tuple(train[at + 1:at + 1 + w])
            tables[w].setdefault(key, Counter())[train[at]] += 1
    best = [{k: min(c, key=lambda t: (-c[t], t)) for k, c in table.items()} for table in tables]
    correct = scored = 0
    for at in range(width, len(val) - width):
        guess = None
        for w in range(width, -1, -1):
            key = tuple(val[at - w:at]) + ("|",) + tuple(val[at + 1:at + 1 + w])
            if key in best[w]:
                guess = best[w][key]
                break
        scored += 1
        correct += guess == val[at]
    return correct / scored


def tfidf(queries, candidates):
    import re
    bags = [Counter(re.findall(r"\w+", t.lower())) for t in queries + candidates]
    df = Counter(w for b in bags for w in b)
    n = len(bags)
    vecs = []
    for b in bags:
        v = {w: (1 + math.log(tf)) * math.log((1 + n) / (1 + df[w])) for w, tf in b.items()}
        norm = math.sqrt(sum(x * x for x in v.values()))
        vecs.append({w: x / norm for w, x in v.items()} if norm > 0 else v)
    q, c = vecs[:len(queries)], vecs[len(queries):]
    r1 = r10 = rr = 0.0
    for i, a in enumerate(q):
        sims = [sum(x * b.get(w, 0.0) for w, x in a.items()) for b in c]
        rank = 1 + sum(1 for s in sims if s > sims[i])
        r1 += rank == 1
        r10 += rank <= 10
        rr += 1 / rank
    return {"recall_at_1": r1 / len(q), "recall_at_10": r10 / len(q), "mrr": rr / len(q)}


masked = {str(w): masked_accuracy(train, val, w) for w in (1, 2)}
half = 64
windows = [TEXT[i:i + 2 * half] for i in range(0, len(TEXT) - 2 * half + 1, 2 * half)]
pairs = {"queries": [w[:half] for w in windows], "candidates": [w[half:] for w in windows]}
pairs["tfidf"] = tfidf(pairs["queries"], pairs["candidates"])

path = os.path.join(os.path.dirname(__file__), "..", "crates", "engine", "tests", "fixtures", "ngram_reference.json")
with open(path, "w") as f:
    json.dump({"text": TEXT, "vocab": vocab, "n_val": n_val, "baselines": out,
               "masked_accuracy": masked, "pairs": pairs}, f)
print(out, masked, pairs["tfidf"])
