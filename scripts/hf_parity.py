"""Parity of Hearth's Hugging Face exports and imports with `transformers` (run by tests/hf.rs).

    python scripts/hf_parity.py check CASES.json
        For each case: AutoTokenizer gives Hearth's ids (and decodes them to Hearth's text), the
        model loads with no missing, unexpected or mismatched keys, and its outputs (token
        logits, or pooled embeddings) are Hearth's within the case's tolerance. Prints one JSON
        line per case with the largest absolute difference; exits 1 if any case fails.

    python scripts/hf_parity.py make-gpt2 OUT_DIR
        Writes tiny random GPT-2 folders with `GPT2LMHeadModel(config).save_pretrained`
        (activation "gelu", tied and untied heads, random biases), each with a byte-level BPE
        tokenizer.json, plus OUT_DIR/expected.json: probe texts, their ids and transformers'
        logits, for Hearth's import to match.

Case fields: name, dir, kind ("causal-lm" | "masked-lm" | "embedding"), texts, ids, decoded,
inputs and logits (language models) or embeddings (embedding models), tolerance.
"""

import json
import os
import sys

os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import torch  # noqa: E402
import transformers  # noqa: E402
from transformers import (  # noqa: E402
    AutoModel,
    AutoModelForCausalLM,
    AutoModelForMaskedLM,
    AutoTokenizer,
)

torch.set_grad_enabled(False)
torch.manual_seed(0)


def load(kind, path):
    cls = {
        "causal-lm": AutoModelForCausalLM,
        "masked-lm": AutoModelForMaskedLM,
        "embedding": AutoModel,
    }[kind]
    model, info = cls.from_pretrained(path, output_loading_info=True)
    model.eval()
    problems = {k: sorted(v) for k, v in info.items() if v}
    return model, problems


def pooled(model, tokenizer, texts, path):
    """Embeddings through sentence-transformers when installed, else the model plus the
    pooling the export's 1_Pooling/config.json names, normalised."""
    try:
        from sentence_transformers import SentenceTransformer
    except ImportError:
        SentenceTransformer = None
    if SentenceTransformer is not None:
        st = SentenceTransformer(path, device="cpu")
        return torch.tensor(st.encode(texts, batch_size=len(texts))), "sentence-transformers"
    with open(os.path.join(path, "1_Pooling", "config.json")) as f:
        pooling = json.load(f)
    batch = tokenizer(texts, padding=True, truncation=True, return_tensors="pt")
    hidden = model(**batch).last_hidden_state
    mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
    if pooling["pooling_mode_mean_tokens"]:
        emb = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
    elif pooling["pooling_mode_cls_token"]:
        emb = hidden[:, 0]
    elif pooling["pooling_mode_max_tokens"]:
        emb = hidden.masked_fill(mask == 0, -1e9).max(1).values
    elif pooling["pooling_mode_lasttoken"]:
        last = batch["attention_mask"].sum(1) - 1
        emb = hidden[torch.arange(hidden.shape[0]), last]
    else:
        raise ValueError(f"unexpected pooling {pooling}")
    return torch.nn.functional.normalize(emb, p=2, dim=1), "transformers + 1_Pooling"


def check_case(case):
    failures = []
    path = case["dir"]
    tokenizer = AutoTokenizer.from_pretrained(path)
    for text, want, decoded in zip(case["texts"], case["ids"], case["decoded"]):
        got = tokenizer(text)["input_ids"]
        if got != want:
            failures.append(f"AutoTokenizer ids of {text!r}: {got} != Hearth's {want}")
        back = tokenizer.decode(want)
        if back != decoded:
            failures.append(f"decode of {want}: {back!r} != Hearth's {decoded!r}")
    model, problems = load(case["kind"], path)
    if problems:
        failures.append(f"loading {type(model).__name__}: {problems}")
    worst = 0.0
    via = type(model).__name__
    if case["kind"] == "embedding":
        got, via = pooled(model, tokenizer, case["texts"], path)
        want = torch.tensor(case["embeddings"])
        worst = (got - want).abs().max().item()
    else:
        for inputs, want in zip(case["inputs"], case["logits"]):
            logits = model(torch.tensor([inputs])).logits[0]
            worst = max(worst, (logits - torch.tensor(want)).abs().max().item())
    if not worst <= case["tolerance"]:
        failures.append(f"max |difference| {worst:.3g} > {case['tolerance']}")
    return {"name": case["name"], "class": type(model).__name__, "via": via,
            "max_abs_diff": worst, "failures": failures}


def check(cases_path):
    with open(cases_path) as f:
        cases = json.load(f)["cases"]
    failed = False
    for case in cases:
        result = check_case(case)
        failed |= bool(result["failures"])
        print(json.dumps(result), flush=True)
    return 1 if failed else 0


def byte_level_tokenizer(texts, vocab_size):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=["<|endoftext|>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(texts, trainer)
    return tok


def make_gpt2(out_dir):
    from transformers import GPT2Config, GPT2LMHeadModel, PreTrainedTokenizerFast

    corpus = [
        "Once upon a time a small cat sat by the fire and told stories to the mice.",
        "The mice listened, and the fire burned low; then the cat fell asleep.",
        "In the morning the stories were gone, but the warmth of the fire remained.",
    ] * 20
    texts = ["Once upon a time, the fire", "Mice and cats!\nA story.", "zebra quartz 42"]
    expected = {"transformers_version": transformers.__version__, "models": []}
    for name, tied in [("gpt2-tied", True), ("gpt2-untied", False)]:
        tok = byte_level_tokenizer(corpus, 300)
        eos = tok.token_to_id("<|endoftext|>")
        config = GPT2Config(
            vocab_size=tok.get_vocab_size(),
            n_positions=32,
            n_embd=32,
            n_layer=2,
            n_head=4,
            activation_function="gelu",
            tie_word_embeddings=tied,
            bos_token_id=eos,
            eos_token_id=eos,
        )
        model = GPT2LMHeadModel(config).eval()
        # Random biases and LayerNorm weights too, so every tensor's mapping is exercised.
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.05)
        path = os.path.join(out_dir, name)
        model.save_pretrained(path)
        fast = PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<|endoftext|>",
                                       bos_token="<|endoftext|>")
        fast.save_pretrained(path)
        cases = []
        for text in texts:
            ids = tok.encode(text).ids
            logits = model(torch.tensor([ids])).logits[0]
            cases.append({"text": text, "ids": ids, "logits": logits.tolist()})
        expected["models"].append({"name": name, "dir": path, "tied": tied, "probes": cases})
    with open(os.path.join(out_dir, "expected.json"), "w") as f:
        json.dump(expected, f)
    print(json.dumps({"transformers": transformers.__version__, "torch": torch.__version__}))
    return 0


def main(argv):
    if len(argv) == 3 and argv[1] == "check":
        return check(argv[2])
    if len(argv) == 3 and argv[1] == "make-gpt2":
        return make_gpt2(argv[2])
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
