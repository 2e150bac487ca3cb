"""Reference side of Hearth's BERT tests and benchmarks, with sentence-transformers.

    bert_parity.py tiny OUT POOLING   a small random BERT saved as a sentence-transformers folder
    bert_parity.py embed DIR TEXTS    embeddings of the JSON list of texts in TEXTS, as JSON
    bert_parity.py sts DIR FILE       STS of the tab-separated FILE: pairs, Pearson, Spearman,
                                      and the seconds embedding took (2 threads)
    bert_parity.py keys DIR           the weights BertModel misses or does not use in DIR
Offline: nothing is downloaded.
"""
import json
import os
import sys
import tempfile
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import torch  # noqa: E402
from sentence_transformers import SentenceTransformer, models  # noqa: E402


def tiny(out, pooling):
    from transformers import BertConfig, BertModel, BertTokenizerFast

    torch.manual_seed(0)
    words = "the a man woman child dog cat is are was riding eating playing guitar horse " \
            "on in with and of to ##s ##ing ##ed big small red green".split()
    letters = list("abcdefghijklmnopqrstuvwxyz.,!?'") + ["##" + c for c in "abcdefghijklmnopqrstuvwxyz"]
    vocab = list(dict.fromkeys(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + words + letters))
    with tempfile.TemporaryDirectory() as tmp:
        with open(os.path.join(tmp, "vocab.txt"), "w") as f:
            f.write("\n".join(vocab) + "\n")
        tok = BertTokenizerFast(os.path.join(tmp, "vocab.txt"), do_lower_case=True)
        config = BertConfig(vocab_size=len(vocab), hidden_size=32, num_hidden_layers=2,
                            num_attention_heads=4, intermediate_size=48,
                            max_position_embeddings=64, layer_norm_eps=1e-12)
        model = BertModel(config, add_pooling_layer=True)
        # Random LayerNorm gains and biases, so a mix-up of weight and bias shows.
        with torch.no_grad():
            for name, p in model.named_parameters():
                if "LayerNorm" in name:
                    p.add_(torch.randn_like(p) * 0.1)
        base = os.path.join(tmp, "bert")
        model.save_pretrained(base, safe_serialization=True)
        tok.save_pretrained(base)
        dim = config.hidden_size
        st = SentenceTransformer(modules=[
            models.Transformer(base, max_seq_length=48),
            models.Pooling(dim, pooling_mode=pooling),
            models.Normalize(),
        ], device="cpu")
        st.save(out)


def embed(path, texts_file):
    texts = json.load(open(texts_file, encoding="utf-8"))
    model = SentenceTransformer(path, device="cpu")
    out = model.encode(texts, batch_size=64, normalize_embeddings=True)
    print(json.dumps([[float(x) for x in row] for row in out]))


def keys(path):
    from transformers import BertModel

    _, info = BertModel.from_pretrained(path, output_loading_info=True)
    print(json.dumps({k: sorted(v) for k, v in info.items() if k in
                      ("missing_keys", "unexpected_keys", "mismatched_keys")}))


def sts(path, file):
    from scipy.stats import pearsonr, spearmanr

    torch.set_num_threads(2)
    model = SentenceTransformer(path, device="cpu")
    a, b, gold = [], [], []
    for line in open(file, encoding="utf-8"):
        cols = line.rstrip("\n").split("\t")
        if len(cols) < 7:
            continue
        gold.append(float(cols[4]))
        a.append(cols[5])
        b.append(cols[6])
    start = time.perf_counter()
    ea = model.encode(a, batch_size=64, convert_to_tensor=True, normalize_embeddings=True)
    eb = model.encode(b, batch_size=64, convert_to_tensor=True, normalize_embeddings=True)
    seconds = time.perf_counter() - start
    cos = (ea * eb).sum(1).numpy()
    print(json.dumps({"pairs": len(gold), "pearson": float(pearsonr(cos, gold)[0]),
                      "spearman": float(spearmanr(cos, gold)[0]), "seconds": seconds}))


if __name__ == "__main__":
    command = sys.argv[1]
    if command == "tiny":
        tiny(sys.argv[2], sys.argv[3])
    elif command == "embed":
        embed(sys.argv[2], sys.argv[3])
    elif command == "keys":
        keys(sys.argv[2])
    elif command == "sts":
        sts(sys.argv[2], sys.argv[3])
    else:
        sys.exit(f"unknown command {command}")
