#!/usr/bin/python3
"""PyTorch peer of `corgi bench --policy <model> --train`: the same LoRA training step on the same weights.

    python3 bench/pytorch_lora_train.py --dir <dir written by src/training/lm/lora-bench.ts> --steps 3 --threads 1

The directory holds `config.json` (HF LlamaConfig), `model.safetensors` (the dequantized base weights
under HF names, float32), `adapter_model.safetensors` (the adapters' initial A and B under PEFT names)
and `batch.json` ({"ids": [[...]], "mask": [[...]], "r", "alpha", "target_modules", "lr"}), so both sides
start from identical parameters and data and their first losses must agree.

The step: forward of every position through the layers, the vocabulary head at the masked (completion)
positions only, mean cross-entropy there, backward into the LoRA A/B matrices (base weights frozen),
AdamW (betas 0.9/0.95, weight decay 0) with global-norm clipping at 1. Plain autograd (no activation
recomputation: memory is not the limit here). Prints one JSON line:
{"train_tokens_per_s", "step_ms", "loss", "threads", "torch"}; tokens/s counts every token of the batch.
The model is bench/pytorch_reference.py's (written from HF's modeling_llama.py); rows must have equal
lengths (its attention mask has no padding).
"""
import argparse
import json
import os
import statistics
import struct
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from pytorch_reference import Llama  # noqa: E402


def read_safetensors(path):
    """name -> float32 tensor, from the format's 8-byte header length, JSON header and raw data."""
    with open(path, "rb") as f:
        raw = f.read()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8 : 8 + n])
    base = 8 + n
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        if info["dtype"] != "F32":
            raise SystemExit(f"{path}: tensor {name} is {info['dtype']}, expected F32")
        start, end = info["data_offsets"]
        data = np.frombuffer(raw, dtype="<f4", count=(end - start) // 4, offset=base + start)
        out[name] = torch.from_numpy(data.copy()).view(*info["shape"])
    return out


class LoraLinear(nn.Module):
    """PEFT's LoRA: y = x·Wᵀ + scale·(x·Aᵀ)·Bᵀ with W frozen."""

    def __init__(self, base, a, b, scale):
        super().__init__()
        self.base = base
        self.base.weight.requires_grad_(False)
        self.lora_A = nn.Parameter(a.clone())
        self.lora_B = nn.Parameter(b.clone())
        self.scale = scale

    def forward(self, x):
        return self.base(x) + (x @ self.lora_A.t() @ self.lora_B.t()) * self.scale


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dir", required=True)
    p.add_argument("--steps", type=int, default=3)
    p.add_argument("--threads", type=int, default=1)
    a = p.parse_args()
    torch.set_num_threads(a.threads)

    with open(os.path.join(a.dir, "config.json")) as f:
        cfg = json.load(f)
    cfg.setdefault("num_key_value_heads", cfg["num_attention_heads"])
    cfg.setdefault("rope_theta", 10000.0)
    cfg.setdefault("tie_word_embeddings", False)
    with open(os.path.join(a.dir, "batch.json")) as f:
        job = json.load(f)
    model = Llama(cfg)
    missing, unexpected = model.load_state_dict(read_safetensors(os.path.join(a.dir, "model.safetensors")), strict=False)
    if unexpected or [m for m in missing if m != "lm_head.weight"]:
        raise SystemExit(f"weights do not match the model: missing {missing}, unexpected {unexpected}")
    for param in model.parameters():
        param.requires_grad_(False)

    adapters = read_safetensors(os.path.join(a.dir, "adapter_model.safetensors"))
    scale = job["alpha"] / job["r"]
    for i, layer in enumerate(model.model.layers):
        for short in job["target_modules"]:
            parent = layer.self_attn if short in ("q_proj", "k_proj", "v_proj", "o_proj") else layer.mlp
            module = f"model.layers.{i}.{'self_attn' if parent is layer.self_attn else 'mlp'}.{short}"
            A = adapters[f"base_model.model.{module}.lora_A.weight"]
            B = adapters[f"base_model.model.{module}.lora_B.weight"]
            setattr(parent, short, LoraLinear(getattr(parent, short), A, B, scale))
    params = [q for q in model.parameters() if q.requires_grad]
    opt = torch.optim.AdamW(params, lr=job["lr"], betas=(0.9, 0.95), eps=1e-8, weight_decay=0.0)

    ids = torch.tensor(job["ids"])  # [B, T]
    mask = torch.tensor(job["mask"], dtype=torch.bool)  # [B, T], aligned with ids
    x, y, m = ids[:, :-1], ids[:, 1:], mask[:, 1:]

    def hidden(tokens):
        B, T = tokens.shape
        cos, sin = model.rope(0, T)
        h = model.model.embed_tokens(tokens)
        for layer in model.model.layers:
            h = layer(h, cos, sin)
        return model.model.norm(h)

    def step():
        h = hidden(x)[m]  # [targets, D]: only completion positions reach the head
        logits = h @ model.head_weight().t()
        loss = F.cross_entropy(logits, y[m])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        return loss.item()

    first = step()  # warm-up; its loss is the one both sides compute from the same start
    times = []
    for _ in range(a.steps):
        t0 = time.perf_counter()
        step()
        times.append(time.perf_counter() - t0)
    step_s = statistics.median(times)
    print(
        json.dumps(
            {
                "train_tokens_per_s": round(ids.numel() / step_s, 1),
                "step_ms": round(step_s * 1000, 1),
                "loss": round(first, 4),
                "threads": a.threads,
                "torch": torch.__version__,
            }
        )
    )


if __name__ == "__main__":
    main()
