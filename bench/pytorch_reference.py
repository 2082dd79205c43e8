#!/usr/bin/python3
"""PyTorch reference for bench/policy.ts: the same Llama architecture, config, data and steps.

    /usr/bin/python3 bench/pytorch_reference.py --layers 2 --dim 128 --heads 4 --vocab 2048 --ctx 64 --batch 16

Prints one JSON line with the fields of `corgi bench`:
{"backend", "config", "train_tokens_per_s", "gen_tokens_per_s_b1", "gen_tokens_per_s_b32"}.

Written independently of src/model/llama.ts from Hugging Face's modeling_llama.py (RMSNorm, RoPE with
rotate_half, SwiGLU MLP, grouped K/V heads via repeat_kv); test/fixtures/make_llama_fixture.py uses
it to produce the parity fixture. Needs Debian's python3-torch (1.13) and libopenblas0-pthread:
    apt-get install -y python3-torch libopenblas0-pthread
One thread by default: on a 2-core machine two threads were slower.
"""
import argparse
import json
import math
import statistics
import sys
import time

import torch
import torch.nn.functional as F
from torch import nn


def default_intermediate(dim):
    # Meta's Llama rule with multiple_of=256 (512 for dim 128); bench.ts uses the same.
    return 256 * math.ceil((8 * dim / 3) / 256)


class RMSNorm(nn.Module):
    def __init__(self, dim, eps):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(dim))
        self.eps = eps

    def forward(self, x):
        variance = x.pow(2).mean(-1, keepdim=True)
        return self.weight * (x * torch.rsqrt(variance + self.eps))


def rotate_half(x):
    x1, x2 = x.chunk(2, dim=-1)
    return torch.cat((-x2, x1), dim=-1)


def rope_inverse_frequencies(cfg):
    hd = head_dim(cfg)
    inv = 1.0 / (cfg["rope_theta"] ** (torch.arange(0, hd, 2, dtype=torch.float64) / hd))
    scaling = cfg.get("rope_scaling")
    if scaling:  # Llama 3: HF _compute_llama3_parameters
        assert scaling["rope_type"] == "llama3", scaling
        factor, low, high = scaling["factor"], scaling["low_freq_factor"], scaling["high_freq_factor"]
        old = scaling["original_max_position_embeddings"]
        wavelen = 2 * math.pi / inv
        scaled = torch.where(wavelen > old / low, inv / factor, inv)
        smooth = (old / wavelen - low) / (high - low)
        smoothed = (1 - smooth) * scaled / factor + smooth * scaled
        medium = (wavelen >= old / high) & (wavelen <= old / low)
        inv = torch.where(medium, smoothed, scaled)
    return inv


def head_dim(cfg):
    return cfg.get("head_dim") or cfg["hidden_size"] // cfg["num_attention_heads"]


class Attention(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        D, H = cfg["hidden_size"], cfg["num_attention_heads"]
        self.H, self.KV, self.hd = H, cfg["num_key_value_heads"], head_dim(cfg)
        self.q_proj = nn.Linear(D, H * self.hd, bias=False)
        self.k_proj = nn.Linear(D, self.KV * self.hd, bias=False)
        self.v_proj = nn.Linear(D, self.KV * self.hd, bias=False)
        self.o_proj = nn.Linear(H * self.hd, D, bias=False)

    def forward(self, x, cos, sin, cache=None):
        B, T, _ = x.shape
        q = self.q_proj(x).view(B, T, self.H, self.hd).transpose(1, 2)  # (B, H, T, hd)
        k = self.k_proj(x).view(B, T, self.KV, self.hd).transpose(1, 2)  # (B, KV, T, hd)
        v = self.v_proj(x).view(B, T, self.KV, self.hd).transpose(1, 2)
        q = q * cos + rotate_half(q) * sin
        k = k * cos + rotate_half(k) * sin
        if cache is not None:
            if "k" in cache:
                k = torch.cat([cache["k"], k], dim=2)
                v = torch.cat([cache["v"], v], dim=2)
            cache["k"], cache["v"] = k, v
        groups = self.H // self.KV
        k = k.repeat_interleave(groups, dim=1)  # HF repeat_kv: head h uses K/V head h // groups
        v = v.repeat_interleave(groups, dim=1)
        Tk = k.shape[2]
        att = (q @ k.transpose(-2, -1)) / math.sqrt(self.hd)  # (B, H, T, Tk)
        past = Tk - T
        mask = torch.ones(T, Tk, dtype=torch.bool).tril(diagonal=past)
        att = att.masked_fill(~mask, float("-inf"))
        y = F.softmax(att, dim=-1) @ v  # (B, H, T, hd)
        y = y.transpose(1, 2).contiguous().view(B, T, self.H * self.hd)
        return self.o_proj(y)


class MLP(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        D, I = cfg["hidden_size"], cfg["intermediate_size"]
        self.gate_proj = nn.Linear(D, I, bias=False)
        self.up_proj = nn.Linear(D, I, bias=False)
        self.down_proj = nn.Linear(I, D, bias=False)

    def forward(self, x):
        return self.down_proj(F.silu(self.gate_proj(x)) * self.up_proj(x))


class Layer(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.input_layernorm = RMSNorm(cfg["hidden_size"], cfg["rms_norm_eps"])
        self.self_attn = Attention(cfg)
        self.post_attention_layernorm = RMSNorm(cfg["hidden_size"], cfg["rms_norm_eps"])
        self.mlp = MLP(cfg)

    def forward(self, x, cos, sin, cache=None):
        x = x + self.self_attn(self.input_layernorm(x), cos, sin, cache)
        return x + self.mlp(self.post_attention_layernorm(x))


class Inner(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.embed_tokens = nn.Embedding(cfg["vocab_size"], cfg["hidden_size"])
        self.layers = nn.ModuleList([Layer(cfg) for _ in range(cfg["num_hidden_layers"])])
        self.norm = RMSNorm(cfg["hidden_size"], cfg["rms_norm_eps"])


class Llama(nn.Module):
    """Parameter names match HF LlamaForCausalLM (model.layers.0.self_attn.q_proj.weight, lm_head.weight)."""

    def __init__(self, cfg):
        super().__init__()
        self.cfg = cfg
        self.model = Inner(cfg)
        if not cfg["tie_word_embeddings"]:
            self.lm_head = nn.Linear(cfg["hidden_size"], cfg["vocab_size"], bias=False)
        self.register_buffer("inv_freq", rope_inverse_frequencies(cfg), persistent=False)

    def rope(self, start, T):
        pos = torch.arange(start, start + T, dtype=torch.float64)
        freqs = torch.outer(pos, self.inv_freq)
        emb = torch.cat([freqs, freqs], dim=-1)
        return emb.cos().float(), emb.sin().float()

    def head_weight(self):
        return self.model.embed_tokens.weight if self.cfg["tie_word_embeddings"] else self.lm_head.weight

    def forward(self, ids, caches=None, start=0, last_only=False):
        B, T = ids.shape
        cos, sin = self.rope(start, T)
        x = self.model.embed_tokens(ids)
        for i, layer in enumerate(self.model.layers):
            x = layer(x, cos, sin, None if caches is None else caches[i])
        x = self.model.norm(x)
        if last_only:
            x = x[:, -1:, :]
        return x @ self.head_weight().t()


@torch.no_grad()
def greedy(model, prompts, new_tokens):
    caches = [{} for _ in model.model.layers]
    ids = prompts
    start = 0
    out = []
    for _ in range(new_tokens):
        logits = model(ids, caches, start, last_only=True)
        start += ids.shape[1]
        ids = logits[:, -1, :].argmax(-1, keepdim=True)
        out.append(ids)
    return torch.cat(out, dim=1)


def random_tokens(count, vocab, seed):
    """The xorshift stream bench.ts uses, so both benches train on the same tokens."""
    out = []
    s = ((seed * 2654435761 + 1) & 0xFFFFFFFF) or 1
    for _ in range(count):
        s ^= (s << 13) & 0xFFFFFFFF
        s ^= s >> 17
        s ^= (s << 5) & 0xFFFFFFFF
        out.append(s % vocab)
    return out


def bench_config(a):
    heads = a.heads
    return {
        "vocab_size": a.vocab,
        "hidden_size": a.dim,
        "intermediate_size": a.intermediate or default_intermediate(a.dim),
        "num_hidden_layers": a.layers,
        "num_attention_heads": heads,
        "num_key_value_heads": a.kv_heads or heads,
        "max_position_embeddings": a.ctx,
        "rms_norm_eps": 1e-5,
        "rope_theta": 10000.0,
        "tie_word_embeddings": False,
        "bos_token_id": 1,
        "eos_token_id": 2,
        "hidden_act": "silu",
        "model_type": "llama",
        "architectures": ["LlamaForCausalLM"],
        "torch_dtype": "float32",
        "head_dim": a.dim // heads,
    }


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--layers", type=int, default=2)
    p.add_argument("--dim", type=int, default=128)
    p.add_argument("--heads", type=int, default=4)
    p.add_argument("--kv-heads", type=int, default=None)
    p.add_argument("--vocab", type=int, default=2048)
    p.add_argument("--ctx", type=int, default=64)
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--intermediate", type=int, default=None)
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", action="store_true", help="accepted for symmetry with bench/policy.ts")
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    cfg = bench_config(a)
    model = Llama(cfg)
    for name, param in model.named_parameters():  # HF init: normal(0, 0.02), norms at 1
        if param.dim() >= 2:
            nn.init.normal_(param, 0.0, 0.02)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, betas=(0.9, 0.95), eps=1e-8, weight_decay=0.1)
    B, T, V = a.batch, a.ctx, a.vocab

    tokens = torch.tensor(random_tokens(B * (T + 1), V, a.seed)).view(B, T + 1)
    x, y = tokens[:, :-1].contiguous(), tokens[:, 1:].contiguous()

    def step():
        logits = model(x)
        loss = F.cross_entropy(logits.view(B * T, V), y.view(B * T))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        return loss.item()

    for _ in range(2):
        step()
    times = []
    for _ in range(a.steps):
        t0 = time.perf_counter()
        loss = step()
        times.append(time.perf_counter() - t0)
    step_s = statistics.median(times)  # as bench.ts: the median step, the machine is shared
    print(f"pytorch: train {step_s * 1000:.1f} ms/step (median of {a.steps}), loss {loss:.3f}", file=sys.stderr)

    model.eval()
    prompt_len = min(8, T - 1)
    new_tokens = T - prompt_len

    def gen_rate(batch):
        prompts = torch.tensor([random_tokens(prompt_len, V, a.seed + 100 + b) for b in range(batch)])
        greedy(model, prompts, 2)
        runs = []
        for _ in range(3):
            t = time.perf_counter()
            greedy(model, prompts, new_tokens)
            runs.append(time.perf_counter() - t)
        return batch * new_tokens / statistics.median(runs)

    result = {
        "backend": f"pytorch-{torch.__version__}-cpu-{a.threads}thread",
        "config": cfg,
        "train_tokens_per_s": round(B * T / step_s, 1),
        "gen_tokens_per_s_b1": round(gen_rate(1), 1),
        "gen_tokens_per_s_b32": round(gen_rate(32), 1),
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
