#!/usr/bin/python3
"""The PyTorch side of the TorchScript interop test (run by tests/python_interop_test).

Usage: interop.py MODEL.pt INPUT.bin OUT_DIR

Loads a model the C++ SDK saved, runs it in eval mode on the float32 input (shape in
INPUT.bin.shape), writes the logits to OUT_DIR/python_out.bin, then fine-tunes it for three
SGD steps in train mode as a PyTorch user would, saves it to OUT_DIR/finetuned.pt and writes
that model's eval-mode logits to OUT_DIR/finetuned_out.bin for C++ to compare; the same
weights also go to OUT_DIR/finetuned_state_dict.pt (torch.save of the state dict) and
OUT_DIR/finetuned_checkpoint.pt (a training checkpoint with the optimizer state).
"""
import sys

import torch


def main():
    model_path, input_path, out_dir = sys.argv[1:4]
    shape = [int(v) for v in open(input_path + ".shape").read().split()]
    x = torch.frombuffer(bytearray(open(input_path, "rb").read()), dtype=torch.float32).reshape(shape)

    model = torch.jit.load(model_path)
    model.eval()
    with torch.no_grad():
        y = model(x)
    open(out_dir + "/python_out.bin", "wb").write(y.contiguous().numpy().tobytes())

    params = list(model.parameters())
    assert params and all(p.requires_grad for p in params), "parameters must be trainable"
    model.train()
    opt = torch.optim.SGD(params, lr=0.05, momentum=0.9)
    target = torch.arange(shape[0]) % y.shape[1]
    for _ in range(3):
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(model(x), target)
        loss.backward()
        opt.step()
    model.eval()
    torch.jit.save(model, out_dir + "/finetuned.pt")
    # The forms an opposing party may hand over: a state dict, a training checkpoint.
    torch.save(model.state_dict(), out_dir + "/finetuned_state_dict.pt")
    torch.save({"epoch": 3, "model_state_dict": model.state_dict(), "optimizer": opt.state_dict()},
               out_dir + "/finetuned_checkpoint.pt")
    with torch.no_grad():
        y2 = model(x)
    open(out_dir + "/finetuned_out.bin", "wb").write(y2.contiguous().numpy().tobytes())
    print("python ok", tuple(y.shape), float(loss))


if __name__ == "__main__":
    main()
