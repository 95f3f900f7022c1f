#!/usr/bin/python3
"""Makes a Python-side suspect: loads an SDK model, fine-tunes it briefly on random data as a
PyTorch user would, and saves it with torch.jit.save.  Usage: finetune.py IN.pt OUT.pt"""
import sys

import torch

torch.manual_seed(0)
model = torch.jit.load(sys.argv[1])
model.train()
opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
for _ in range(3):
    x = torch.rand(16, 3, 28, 28)
    y = torch.randint(0, 10, (16,))
    opt.zero_grad()
    torch.nn.functional.cross_entropy(model(x), y).backward()
    opt.step()
model.eval()
torch.jit.save(model, sys.argv[2])
