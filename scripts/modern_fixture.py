"""Writes crates/engine/tests/fixtures/modern_reference.json: the modern architecture
(model.arch = "modern") in PyTorch, float64, on fixed weights and fixed batches:

- rotary position embeddings (Su et al. 2021, RoFormer), rotate-half layout, base 10000;
- RMSNorm (Zhang & Sennrich 2019) before attention, before the MLP and at the end, eps 1e-5;
- separate q, k, v projections, RMSNorm of each head's queries and keys (one gain of head
  width shared by the heads) before the rotation (QK-norm, as in modded-nanogpt);
- a SwiGLU MLP (Shazeer 2020): down(silu(gate(x)) * up(x)), hidden width 8/3 d rounded up to
  a multiple of 8;
- no biases, no position embedding, the head tied to the token embedding.

Parameters are named by their paths in Hearth's model and kept in Burn's layout (a linear
weight is [in, out], applied as x @ W), so the Rust test loads them by name with no mapping.
Their values are a formula of the name and the row-major index, so nothing random is shared:
value = 0.2 * sin(0.37 * k + phase(name)), and 1 + 0.1 * sin(...) for norm gains.

The fixture holds: causal logits, the next-token loss and every parameter gradient; logits of
bidirectional attention with right padding; and every parameter after one optimizer step with
optim.optimizer = "muon" (Muon on the 2-D block matrices, AdamW on the rest, global norm
clipping), as Hearth's optimizer takes it."""
import json
import math
import os

import torch
import torch.nn.functional as F

VOCAB, CONTEXT, LAYERS, HEADS, WIDTH, BATCH = 11, 8, 2, 2, 16, 3
HEAD_DIM = WIDTH // HEADS
HIDDEN = math.ceil(math.ceil(8 * WIDTH / 3) / 8) * 8
ROPE_BASE, EPS = 10000.0, 1e-5
# The optimizer step: OptimSpec's defaults with optimizer = "muon".
LR, MUON_LR, MUON_MOMENTUM, WD, BETA1, BETA2, ADAM_EPS, CLIP = 1e-3, 0.02, 0.95, 0.1, 0.9, 0.99, 1e-8, 1.0


def shapes():
    out = {"tok_emb.weight": [VOCAB, WIDTH]}
    for i in range(LAYERS):
        b = f"blocks.{i}"
        out[f"{b}.rms_1.gamma"] = [WIDTH]
        for p in "qkv":
            out[f"{b}.attn.{p}.weight"] = [WIDTH, WIDTH]
        out[f"{b}.attn.q_norm.gamma"] = [HEAD_DIM]
        out[f"{b}.attn.k_norm.gamma"] = [HEAD_DIM]
        out[f"{b}.attn.proj.weight"] = [WIDTH, WIDTH]
        out[f"{b}.rms_2.gamma"] = [WIDTH]
        out[f"{b}.mlp.gate.weight"] = [WIDTH, HIDDEN]
        out[f"{b}.mlp.up.weight"] = [WIDTH, HIDDEN]
        out[f"{b}.mlp.proj.weight"] = [HIDDEN, WIDTH]
    out["rms_f.gamma"] = [WIDTH]
    return out


def phase(name):
    return sum(ord(c) for c in name) % 17 * 0.1


def is_gain(name):
    return name.endswith(".gamma")


def value(name, shape):
    n = math.prod(shape)
    vals = [math.sin(0.37 * k + phase(name)) for k in range(n)]
    vals = [1.0 + 0.1 * v for v in vals] if is_gain(name) else [0.2 * v for v in vals]
    return torch.tensor(vals, dtype=torch.float64).reshape(shape)


def rms_norm(x, gain):
    return F.rms_norm(x, (x.shape[-1],), gain, EPS)


def rope(x):
    """x: [batch, head, seq, head_dim]; rotates (x_i, x_{i + half}) by pos * base^(-2i/d)."""
    seq, d = x.shape[-2], x.shape[-1]
    half = d // 2
    inv_freq = ROPE_BASE ** (-torch.arange(0, half, dtype=torch.float64) * 2 / d)
    angles = torch.arange(seq, dtype=torch.float64)[:, None] * inv_freq[None, :]
    cos, sin = angles.cos(), angles.sin()
    x1, x2 = x[..., :half], x[..., half:]
    return torch.cat([x1 * cos - x2 * sin, x1 * sin + x2 * cos], dim=-1)


def forward(p, tokens, causal=True, padding=None):
    """Logits [batch, seq, vocab]; padding [batch, seq] is True at padded keys."""
    b, t = tokens.shape
    x = p["tok_emb.weight"][tokens]
    allowed = torch.ones(b, 1, t, t, dtype=torch.bool)
    if causal:
        allowed = allowed & torch.tril(torch.ones(t, t, dtype=torch.bool))
    if padding is not None:
        allowed = allowed & ~padding[:, None, None, :]
    for i in range(LAYERS):
        pre = f"blocks.{i}"
        h = rms_norm(x, p[f"{pre}.rms_1.gamma"])

        def heads(name):
            return (h @ p[f"{pre}.attn.{name}.weight"]).view(b, t, HEADS, HEAD_DIM).transpose(1, 2)

        q = rope(rms_norm(heads("q"), p[f"{pre}.attn.q_norm.gamma"]))
        k = rope(rms_norm(heads("k"), p[f"{pre}.attn.k_norm.gamma"]))
        v = heads("v")
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=allowed)
        y = y.transpose(1, 2).reshape(b, t, WIDTH)
        x = x + y @ p[f"{pre}.attn.proj.weight"]
        h = rms_norm(x, p[f"{pre}.rms_2.gamma"])
        gated = F.silu(h @ p[f"{pre}.mlp.gate.weight"]) * (h @ p[f"{pre}.mlp.up.weight"])
        x = x + gated @ p[f"{pre}.mlp.proj.weight"]
    x = rms_norm(x, p["rms_f.gamma"])
    return x @ p["tok_emb.weight"].T


def newton_schulz(g, steps=5):
    """Muon's quintic iteration (Jordan et al. 2024) on the wide orientation."""
    a, b, c = (3.4445, -4.7750, 2.0315)
    tall = g.size(0) > g.size(1)
    x = g.T if tall else g
    x = x / (x.norm() + 1e-7)
    for _ in range(steps):
        m = x @ x.T
        x = a * x + (b * m + c * m @ m) @ x
    return x.T if tall else x


def optimizer_step(p, grads):
    """One step of Hearth's optimizer with optimizer = "muon", from fresh state."""
    norm = math.sqrt(sum(float((g * g).sum()) for g in grads.values()))
    scale = CLIP / (norm + 1e-6) if norm > CLIP else 1.0
    out = {}
    for name, w in p.items():
        g = grads[name] * scale
        w = w.detach().clone()
        if name.startswith("blocks.") and w.dim() == 2:
            # Burn layout [inputs, outputs]: momentum from zero, Nesterov, NS5, scaled by
            # sqrt(max(1, outputs / inputs)), decoupled decay.
            m = (1 - MUON_MOMENTUM) * g
            u = (1 - MUON_MOMENTUM) * g + MUON_MOMENTUM * m
            inputs, outputs = w.shape
            update = newton_schulz(u) * max(1.0, outputs / inputs) ** 0.5
            out[name] = w * (1 - MUON_LR * WD) - MUON_LR * update
        else:
            m = (1 - BETA1) * g
            v = (1 - BETA2) * g * g
            denom = v.sqrt() / math.sqrt(1 - BETA2) + ADAM_EPS
            if w.dim() >= 2:
                w = w * (1 - LR * WD)
            out[name] = w - (LR / (1 - BETA1)) * m / denom
    return out, norm


def main():
    torch.set_default_dtype(torch.float64)
    params = {name: value(name, shape).requires_grad_() for name, shape in shapes().items()}
    x = torch.tensor([[(b * 5 + t * 3) % VOCAB for t in range(CONTEXT)] for b in range(BATCH)])
    y = torch.tensor([[(b * 7 + t * 2 + 1) % VOCAB for t in range(CONTEXT)] for b in range(BATCH)])
    logits = forward(params, x)
    loss = F.cross_entropy(logits.reshape(-1, VOCAB), y.reshape(-1))
    loss.backward()
    grads = {name: p.grad.detach() for name, p in params.items()}

    # Bidirectional attention over right-padded rows (row b has CONTEXT - 2 b real tokens).
    lengths = [CONTEXT - 2 * b for b in range(BATCH)]
    padding = torch.tensor([[t >= n for t in range(CONTEXT)] for n in lengths])
    with torch.no_grad():
        bidirectional = forward(params, x, causal=False, padding=padding)
        stepped, norm = optimizer_step(params, grads)

    def flat(t):
        return [float(f"{v:.9g}") for v in t.detach().flatten().tolist()]

    out = {
        "config": {
            "vocab": VOCAB,
            "context": CONTEXT,
            "layers": LAYERS,
            "heads": HEADS,
            "width": WIDTH,
            "hidden": HIDDEN,
        },
        "shapes": shapes(),
        "inputs": x.tolist(),
        "targets": y.tolist(),
        "logits": flat(logits),
        "loss": loss.item(),
        "grads": {name: flat(g) for name, g in grads.items()},
        "padding": padding.tolist(),
        "bidirectional_logits": flat(bidirectional),
        "muon": {
            "lr": LR,
            "muon_lr": MUON_LR,
            "grad_norm": norm,
            "params": {name: flat(w) for name, w in stepped.items()},
        },
    }
    path = os.path.join(
        os.path.dirname(__file__), "..", "crates", "engine", "tests", "fixtures", "modern_reference.json"
    )
    with open(path, "w") as f:
        json.dump(out, f)
    print(f"loss={loss.item():.10f} grad_norm={norm:.6f} written to {os.path.normpath(path)}")


if __name__ == "__main__":
    main()
