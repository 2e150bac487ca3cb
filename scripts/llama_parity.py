"""Reference side of the Llama-family tests (tests/llama.rs): tiny random decoders saved with
transformers, their logits and greedy continuations, GGUF files read by transformers, and
LoRA adapters loaded with peft. Each command prints one JSON line.

  tiny OUT --type llama|mistral|qwen2|qwen3 [--seed S]
  logits DIR IDS            logits of the token ids IDS (JSON list) at every position
  greedy DIR IDS N          N greedy tokens after IDS (no cache settings changed)
  gguf FILE PROMPT N        transformers loading FILE (gguf_file=): prompt ids, greedy ids,
                            text, last-position logits
  peft BASE ADAPTER IDS N   greedy tokens of BASE with the PEFT adapter folder ADAPTER
"""
import json
import pathlib
import sys

import torch

CHAT_TEMPLATE = (
    "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + message['content']"
    " + '<|im_end|>' + '\\n'}}{% endfor %}{% if add_generation_prompt %}"
    "{{ '<|im_start|>assistant\\n' }}{% endif %}"
)
TEXT = (
    "The quick brown fox jumps over the lazy dog. Colours: red, green, blue. "
    "Numbers 0123456789. Hello world! How are you today? I am fine, thank you.\n"
) * 20


def tiny(out, kind, seed):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import AutoConfig, AutoModelForCausalLM, PreTrainedTokenizerFast

    torch.manual_seed(seed)
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=320,
        special_tokens=["<|endoftext|>", "<|im_start|>", "<|im_end|>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    tok.train_from_iterator([TEXT], trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        eos_token="<|im_end|>",
        bos_token="<|im_start|>",
        pad_token="<|endoftext|>",
    )
    fast.chat_template = CHAT_TEMPLATE
    vocab = tok.get_vocab_size()
    shape = dict(
        vocab_size=vocab,
        hidden_size=64,
        intermediate_size=96,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=256,
        rms_norm_eps=1e-6,
        tie_word_embeddings=kind != "mistral",
        eos_token_id=fast.eos_token_id,
        bos_token_id=fast.bos_token_id,
    )
    if kind == "qwen3":
        shape["head_dim"] = 24
    if kind == "llama":
        shape["rope_theta"] = 50000.0
    config = AutoConfig.for_model(kind, **shape)
    model = AutoModelForCausalLM.from_config(config)
    with torch.no_grad():
        for p in model.parameters():
            # Norm gains and biases off their defaults, so a missed one shows.
            p.add_(torch.randn_like(p) * 0.05)
    model.save_pretrained(out, safe_serialization=True)
    fast.save_pretrained(out)
    print(json.dumps({"vocab": vocab, "type": kind}))


def load(path):
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(path, torch_dtype=torch.float32)
    model.eval()
    return model


def logits(path, ids):
    model = load(path)
    with torch.no_grad():
        out = model(torch.tensor([ids])).logits[0]
    print(json.dumps({"logits": out.tolist()}))


def greedy(model, ids, n, eos=None):
    with torch.no_grad():
        out = model.generate(
            torch.tensor([ids]),
            max_new_tokens=n,
            do_sample=False,
            eos_token_id=eos,
            pad_token_id=0,
        )
    return out[0, len(ids):].tolist()


def gguf(file, prompt, n):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    file = pathlib.Path(file)
    tok = AutoTokenizer.from_pretrained(file.parent, gguf_file=file.name)
    model = AutoModelForCausalLM.from_pretrained(
        file.parent, gguf_file=file.name, torch_dtype=torch.float32
    )
    model.eval()
    ids = tok(prompt, add_special_tokens=False)["input_ids"]
    with torch.no_grad():
        last = model(torch.tensor([ids])).logits[0, -1]
    new = greedy(model, ids, n, eos=-1)
    print(
        json.dumps(
            {
                "ids": ids,
                "greedy": new,
                "text": tok.decode(new),
                "last_logits": last.tolist(),
            }
        )
    )


def check(spec, n):
    """For each {"folder", "ids"} of `spec`: the logits of `ids` and the greedy continuation of
    `n` tokens, one JSON line per folder (one Python start for several models)."""
    for item in spec:
        model = load(item["folder"])
        with torch.no_grad():
            out = model(torch.tensor([item["ids"]])).logits[0]
        print(
            json.dumps(
                {
                    "folder": item["folder"],
                    "logits": out.tolist(),
                    "greedy": greedy(model, item["ids"], n, eos=-1),
                }
            )
        )


def peft_greedy(base, adapter, ids, n):
    from peft import PeftModel

    model = PeftModel.from_pretrained(load(base), adapter)
    model.eval()
    print(json.dumps({"greedy": greedy(model, ids, n, eos=-1)}))


if __name__ == "__main__":
    cmd, args = sys.argv[1], sys.argv[2:]
    if cmd == "tiny":
        kind = args[args.index("--type") + 1] if "--type" in args else "llama"
        seed = int(args[args.index("--seed") + 1]) if "--seed" in args else 0
        tiny(args[0], kind, seed)
    elif cmd == "tinies":
        # tinies ROOT KIND...: ROOT/KIND for each kind.
        for kind in args[1:]:
            tiny(str(pathlib.Path(args[0]) / kind), kind, 0)
    elif cmd == "check":
        check(json.loads(args[0]), int(args[1]))
    elif cmd == "logits":
        logits(args[0], json.loads(args[1]))
    elif cmd == "greedy":
        print(json.dumps({"greedy": greedy(load(args[0]), json.loads(args[1]), int(args[2]), eos=-1)}))
    elif cmd == "gguf":
        gguf(args[0], args[1], int(args[2]))
    elif cmd == "peft":
        peft_greedy(args[0], args[1], json.loads(args[2]), int(args[3]))
    else:
        sys.exit(f"unknown command {cmd}")
