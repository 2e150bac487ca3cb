"""PyTorch + peft side of `hearth bench lora`: one LoRA training step of a Llama-family
folder (random tokens, batch x context, AdamW on the adapters only), timed in rounds asked for
on stdin. Each line read is a number of steps; each answer is one JSON line
{"seconds": total, "loss": last, "cpu": CPU seconds of the process}.

  lora_bench.py FOLDER --batch B --context T --rank R --alpha A --targets q,k,v,o --threads N
"""
import argparse
import json
import sys
import time

import torch

NAMES = {"q": "q_proj", "k": "k_proj", "v": "v_proj", "o": "o_proj",
         "gate": "gate_proj", "up": "up_proj", "down": "down_proj"}


def main():
    p = argparse.ArgumentParser()
    p.add_argument("folder")
    p.add_argument("--batch", type=int, default=4)
    p.add_argument("--context", type=int, default=256)
    p.add_argument("--rank", type=int, default=8)
    p.add_argument("--alpha", type=float, default=16.0)
    p.add_argument("--targets", default="q,k,v,o")
    p.add_argument("--threads", type=int, default=2)
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(a.folder, torch_dtype=torch.float32)
    config = LoraConfig(
        r=a.rank,
        lora_alpha=a.alpha,
        lora_dropout=0.0,
        target_modules=[NAMES[t] for t in a.targets.split(",")],
        task_type="CAUSAL_LM",
    )
    model = get_peft_model(model, config)
    model.train()
    optim = torch.optim.AdamW([q for q in model.parameters() if q.requires_grad], lr=1e-4)
    vocab = model.config.vocab_size
    print(json.dumps({"ready": True}), flush=True)
    for line in sys.stdin:
        n = int(line)
        loss = None
        t0 = time.perf_counter()
        c0 = time.process_time()
        for _ in range(n):
            tokens = torch.randint(0, vocab, (a.batch, a.context + 1))
            x, y = tokens[:, :-1], tokens[:, 1:]
            logits = model(input_ids=x).logits
            loss = torch.nn.functional.cross_entropy(logits.reshape(-1, vocab), y.reshape(-1))
            loss.backward()
            optim.step()
            optim.zero_grad(set_to_none=True)
        seconds = time.perf_counter() - t0
        cpu = time.process_time() - c0
        print(json.dumps({"seconds": seconds, "loss": float(loss.detach()), "cpu": cpu}),
              flush=True)


if __name__ == "__main__":
    main()
