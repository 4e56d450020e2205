"""One BiLSTM student step (Tang et al.: 384-d embeddings of 30,522 rows, hidden 300, packed; 64 sentences
of up to 40 tokens, concat head, AdamW): seconds of forward, backward and optimizer step, fp32 and bf16.

Usage: .venv/bin/python experiments/paper_table/bf16_step/bilstm_step.py [fused]   (AdamW(fused=True))
"""

import sys
import time

import torch
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

torch.set_num_threads(1)
emb = torch.nn.Embedding(30522, 384)
lstm = torch.nn.LSTM(384, 300, batch_first=True, bidirectional=True)
head = torch.nn.Linear(2400, 1)
params = list(emb.parameters()) + list(lstm.parameters()) + list(head.parameters())
opt = torch.optim.AdamW(params, lr=1e-3, fused=len(sys.argv) > 1)
ids = torch.randint(1000, 20000, (64, 40))
lengths = torch.randint(10, 41, (64,))


def step(bf16: bool) -> tuple[float, float, float]:
    t0 = time.perf_counter()
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
        packed = pack_padded_sequence(emb(ids), lengths, batch_first=True, enforce_sorted=False)
        out, _ = lstm(packed)
        out, _ = pad_packed_sequence(out, batch_first=True, total_length=40)
        u = out.max(1).values
        z = head(torch.cat([u[:32], u[32:], u[:32] * u[32:], (u[:32] - u[32:]).abs()], -1))
        loss = z.float().pow(2).mean()
    t1 = time.perf_counter()
    loss.backward()
    t2 = time.perf_counter()
    opt.step()
    opt.zero_grad()
    return t1 - t0, t2 - t1, time.perf_counter() - t2


for bf16 in (False, True, False, True):  # twice each: the first pass of each warms its kernels
    step(bf16)
    step(bf16)
    times = [step(bf16) for _ in range(10)]
    print("bf16" if bf16 else "fp32", [round(sum(t[i] for t in times) / 10, 4) for i in range(3)], flush=True)
