"""The guided tour's reference: every intermediate a step quotes, from a plain float64
numpy forward of the model's state dict (no hooks, no probe), and what each step must quote."""

import math

import numpy as np
import regex

from explorer.state.tour_ends import EXAMPLE_TOP_K
from gpt_core.model.tokenizer import GPT2_PATTERN, resources_dir
from tests.test_bpe_walk import reference_bpe


def layer_norm(x, scale, shift):
    mean, var = x.mean(-1, keepdims=True), x.var(-1, keepdims=True)
    return (x - mean) / np.sqrt(var + 1e-5) * scale + shift


def gelu(x):
    return 0.5 * x * (1 + np.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x**3)))


def numpy_forward(model, ids):
    """Every intermediate the tour quotes, per block: {name: array}."""
    w = {k: v.detach().double().numpy() for k, v in model.state_dict().items()}
    cfg = model.cfg
    T, H, d = len(ids), cfg.n_heads, cfg.head_dim
    tok, pos = w["tok_emb.weight"][ids], w["pos_emb.weight"][:T]
    x = tok + pos
    run = {"tok": tok, "pos": pos, "x0": x, "blocks": []}
    for layer in range(cfg.n_layers):
        p = f"trf_blocks.{layer}."

        def lin(name, v, p=p):
            bias = w.get(p + name + ".bias")
            return v @ w[p + name + ".weight"].T + (0 if bias is None else bias)

        ln1 = layer_norm(x, w[p + "norm1.scale"], w[p + "norm1.shift"])
        q, k, v = (lin(f"att.W_{n}", ln1).reshape(T, H, d) for n in ("query", "key", "value"))
        scores = np.einsum("thd,shd->hts", q, k) / math.sqrt(d)  # [H, T, T]
        scores[:, np.triu(np.ones((T, T), bool), 1)] = -np.inf
        weights = np.exp(scores - scores.max(-1, keepdims=True))
        weights /= weights.sum(-1, keepdims=True)
        context = np.einsum("hts,shd->thd", weights, v)  # [T, H, d]
        attn_out = lin("att.out_proj", context.reshape(T, H * d))
        mid = x + attn_out
        ln2 = layer_norm(mid, w[p + "norm2.scale"], w[p + "norm2.shift"])
        pre = lin("ff.layers.0", ln2)
        ff_out = lin("ff.layers.2", gelu(pre))
        block = dict(x=x, ln1=ln1, q=q, k=k, v=v, scores=scores, weights=weights)
        block.update(context=context, attn_out=attn_out, mid=mid, ln2=ln2, pre=pre, ff=ff_out)
        run["blocks"].append(block)
        x = mid + ff_out
    run["final_in"] = x
    final = layer_norm(x, w["final_norm.scale"], w["final_norm.shift"])
    logits = final @ w["out_head.weight"].T
    probs = np.exp(logits - logits.max(-1, keepdims=True))
    run["probs"] = probs / probs.sum(-1, keepdims=True)
    return run


def norm(v):
    return float(np.linalg.norm(v))


def expected_quotes(run, ids, layer, head, t, s):
    """What each step must quote, recomputed: step -> {name: (value, style)}."""
    b, x0 = run["blocks"][layer], run["x0"]
    row = b["weights"][head, t, : t + 1]
    order = [i for i in np.argsort(-row, kind="stable") if i != s]
    T = x0.shape[0]
    pos = run["pos"]
    top = np.argsort(-run["probs"][t])[:2]
    pre, after_gelu = b["pre"][t], gelu(b["pre"][t])
    unit = int(np.argmax(after_gelu))
    return {
        "token_embedding": {
            "tokens": (T, "int"),
            "id": (ids[t], "int"),
            "norm": (norm(run["tok"][t]), "num"),
        },
        "position_embedding": {
            "norm_0": (norm(pos[0]), "num"),
            "norm_t": (norm(pos[t]), "num"),
            "cosine": (pos[0] @ pos[t] / (norm(pos[0]) * norm(pos[t])), "num"),
        },
        "embedding_sum": {
            "token": (norm(run["tok"][t]), "num"),
            "position": (norm(pos[t]), "num"),
            "sum": (norm(x0[t]), "num"),
        },
        "ln1": ln_quotes(b["x"][t], b["ln1"][t]),
        "qkv": {
            "query_norm": (norm(b["q"][t, head]), "num"),
            "key_norm": (norm(b["k"][s, head]), "num"),
        },
        "scores": {
            "dot": (b["q"][t, head] @ b["k"][s, head], "num"),
            "score": (b["scores"][head, t, s], "num"),
            "row_max": (b["scores"][head, t, : t + 1].max(), "num"),
        },
        "mask": {
            "masked": (T * (T - 1) // 2, "int"),
            "cells": (T * T, "int"),
            "visible": (t + 1, "int"),
            "masked_weight": (0.0, "num"),
        },
        "softmax": {
            "weight": (row[s], "pct"),
            "second": (row[order[0]], "pct"),
            "row_sum": (1.0, "num"),
        },
        "context": {
            "context_norm": (norm(b["context"][t, head]), "num"),
            "value_norm": (norm(b["v"][s, head]), "num"),
            "weight": (row[s], "pct"),
            "out_norm": (norm(b["attn_out"][t]), "num"),
        },
        "resid_mid": residual_quotes(b["x"][t], b["attn_out"][t]),
        "ln2": ln_quotes(b["mid"][t], b["ln2"][t]),
        "feed_forward": {
            "negative": ((pre < 0).mean(), "pct"),
            "unit_pre": (pre[unit], "num"),
            "unit_gelu": (after_gelu[unit], "num"),
            "out_norm": (norm(b["ff"][t]), "num"),
        },
        "block_out": residual_quotes(b["mid"][t], b["ff"][t]),
        "output": {
            "mean": (run["final_in"][t].mean(), "num"),
            "var": (run["final_in"][t].var(), "num"),
            "top": (run["probs"][t, top[0]], "pct"),
            "second": (run["probs"][t, top[1]], "pct"),
        },
        "sampling": {  # the state's settings: temperature 0, greedy
            **softmax_quotes(run["probs"][t]),
            "example_possible": (EXAMPLE_TOP_K, "int"),
            "example_top": (
                run["probs"][t].max() / np.sort(run["probs"][t])[-EXAMPLE_TOP_K:].sum(),
                "pct",
            ),
        },
    }


def softmax_quotes(p):
    return {
        "before_top": (p.max(), "pct"),
        "entropy_before": (-(p * np.log(p)).sum(), "num"),
    }


def ln_quotes(x, out):
    return {
        "mean": (x.mean(), "num"),
        "var": (x.var(), "num"),
        "out_mean": (out.mean(), "num"),
        "out_std": (out.std(), "num"),
    }


def residual_quotes(before, branch):
    return {
        "before": (norm(before), "num"),
        "branch": (norm(branch), "num"),
        "after": (norm(before + branch), "num"),
    }


def bytes_to_unicode() -> dict[int, str]:
    """openai's GPT-2 byte map: printable bytes stand for themselves, the rest from 256 up."""
    keep = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1)]
    keep += range(ord("®"), ord("ÿ") + 1)
    chars, extra = {}, 0
    for b in range(256):
        if b in keep:
            chars[b] = chr(b)
        else:
            chars[b] = chr(256 + extra)
            extra += 1
    return chars


def tokens_quotes(text, ids):
    """The tokens step's numbers for the last token's piece: the pieces by GPT-2's split
    pattern; its bytes; as many merges as bytes less its tokens (each merge joins two
    symbols into one); the first merge's rank, from openai's bpe() and vocab.bpe's lines."""
    pieces = regex.findall(GPT2_PATTERN, text)
    piece = pieces[-1].encode()
    byte_map = bytes_to_unicode()
    rounds = reference_bpe("".join(byte_map[b] for b in piece))
    final = rounds[-1][1] if rounds else tuple(piece)
    lines = (resources_dir() / "gpt2" / "vocab.bpe").read_text(encoding="utf-8").splitlines()
    ranks = {tuple(line.split()): rank for rank, line in enumerate(lines[1:]) if line}
    return {
        "pieces": (len(pieces), "int"),
        "tokens": (len(ids), "int"),
        "bytes": (len(piece), "int"),
        "rank": (ranks[rounds[0][0]], "int"),
        "merges": (len(piece) - len(final), "int"),
        "id": (ids[-1], "int"),
    }
