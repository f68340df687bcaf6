"""The slow reference for activation patching, written for the tests: one full forward of
the model per cell, with a plain forward hook that overwrites one activation with the
other run's. Nothing here shares code with gpt_core.analysis.patching."""

from __future__ import annotations

import numpy as np
import torch

# sweep -> (module path in a block, replace the module's input rather than its output)
POINTS = {
    "resid": ("", True),
    "attn": ("att", False),
    "mlp": ("ff", False),
    "heads": ("att.context_point", False),
    "heads_by_pos": ("att.context_point", False),
    "pattern": ("att.weights_point", False),
}


def sharpened(model):
    """Attention sharpened and the head scaled so that one changed word moves the metric by
    a visible amount."""
    with torch.no_grad():
        for block in model.trf_blocks:
            block.att.W_query.weight.mul_(4)
            block.att.W_key.weight.mul_(4)
            block.att.W_value.weight.mul_(3)
            block.att.out_proj.weight.mul_(3)
        model.out_head.weight.mul_(30)
    return model


def metric_of(logits_row: torch.Tensor, kind: str, answer: int, distractor: int | None) -> float:
    logits = logits_row.double()
    if kind == "logit_diff":
        return float(logits[answer] - logits[distractor])
    log_p = torch.log_softmax(logits, dim=-1)[answer]
    return float(log_p if kind == "logprob" else log_p.exp())


def activations(model, ids, name: str) -> list[torch.Tensor]:
    """The activation of `name` in every block, for one run (batch dim kept)."""
    path, is_input = POINTS[name]
    kept = []
    handles = []
    for block in model.trf_blocks:
        module = block.get_submodule(path) if path else block
        if is_input:
            handles.append(module.register_forward_pre_hook(lambda m, a: kept.append(a[0])))
        else:
            handles.append(module.register_forward_hook(lambda m, a, o: kept.append(o)))
    _run_with(model, ids, handles)
    return [t.clone() for t in kept]


def _run_with(model, ids, handles) -> torch.Tensor:
    """One plain forward with these hooks, which are then removed: the logits [T, vocab]."""
    try:
        with torch.no_grad():
            return model(torch.tensor([ids]))[0]
    finally:
        for handle in handles:
            handle.remove()


def patched_metric(model, ids, name, layer, where, source, metric) -> float:
    """One run of `ids` with the activation of `name` in block `layer` replaced by
    `source` at `where` (an index into the activation, batch dim first)."""
    path, is_input = POINTS[name]
    block = model.trf_blocks[layer]
    module = block.get_submodule(path) if path else block

    def replace(tensor):
        tensor = tensor.clone()
        tensor[where] = source[where]
        return tensor

    if is_input:
        handle = module.register_forward_pre_hook(lambda m, a: (replace(a[0]),))
    else:
        handle = module.register_forward_hook(lambda m, a, o: replace(o))
    logits = _run_with(model, ids, [handle])[metric.position]
    return metric_of(logits, metric.kind, metric.answer, metric.distractor)


def reference_sweep(model, base_ids, source_ids, name, metric) -> np.ndarray:
    """Every cell of sweep `name`, one full forward each."""
    cfg, n_tokens = model.cfg, metric.position + 1
    source = activations(model, source_ids, name)
    everything = slice(None)
    if name in ("resid", "attn", "mlp"):
        cells = {(l, p): (0, p) for l in range(cfg.n_layers) for p in range(n_tokens)}
        shape = (cfg.n_layers, n_tokens)
    elif name == "heads":  # context [B, T, H, d]
        cells = {
            (l, h): (0, everything, h) for l in range(cfg.n_layers) for h in range(cfg.n_heads)
        }
        shape = (cfg.n_layers, cfg.n_heads)
    elif name == "heads_by_pos":
        cells = {
            (l, h, p): (0, p, h)
            for l in range(cfg.n_layers)
            for h in range(cfg.n_heads)
            for p in range(n_tokens)
        }
        shape = (cfg.n_layers, cfg.n_heads, n_tokens)
    else:  # pattern [B, H, T, T]
        cells = {(l, h): (0, h) for l in range(cfg.n_layers) for h in range(cfg.n_heads)}
        shape = (cfg.n_layers, cfg.n_heads)
    out = np.zeros(shape)
    for cell, where in cells.items():
        out[cell] = patched_metric(model, base_ids, name, cell[0], where, source[cell[0]], metric)
    return out


def reference_path(model, base_ids, source_ids, receiver, metric, scale=1.0) -> np.ndarray:
    """Path patching the textbook way, three full runs per sender: (1) both runs cached;
    (2) the base run with the sender's context vector from the source and every other
    head and every feed-forward output frozen at the base run; (3) the base run with the
    receiver's q, k or v input (or the final stream, for the logits) taken from run 2."""
    cfg = model.cfg
    base_z = activations(model, base_ids, "heads")
    source_z = activations(model, source_ids, "heads")
    base_mlp = activations(model, base_ids, "mlp")
    out = np.full((cfg.n_layers, cfg.n_heads), np.nan)
    senders = cfg.n_layers if receiver.layer is None else receiver.layer
    for layer in range(senders):
        for head in range(cfg.n_heads):
            sender = (layer, head, scale)
            caught = _frozen_run(model, base_ids, base_z, base_mlp, sender, source_z, receiver)
            out[layer, head] = _receiving_run(model, base_ids, receiver, caught, metric)
    return out


def _frozen_run(model, ids, base_z, base_mlp, sender, source_z, receiver):
    handles, caught = [], {}
    for layer, block in enumerate(model.trf_blocks):

        def freeze_z(m, a, out, layer=layer):
            z = base_z[layer].clone()
            if layer == sender[0]:  # the base plus `scale` times the sender's change
                base, source = base_z[layer][:, :, sender[1]], source_z[layer][:, :, sender[1]]
                z[:, :, sender[1]] = base + sender[2] * (source - base)
            return z

        handles.append(block.att.context_point.register_forward_hook(freeze_z))
        handles.append(block.ff.register_forward_hook(lambda m, a, o, layer=layer: base_mlp[layer]))
    if receiver.layer is None:
        target = model.final_norm
        handles.append(target.register_forward_pre_hook(lambda m, a: caught.update(x=a[0])))
    else:
        linear = _qkv_linear(model, receiver)
        handles.append(linear.register_forward_hook(lambda m, a, o: caught.update(x=o)))
    _run_with(model, ids, handles)
    return caught["x"].clone()


def _receiving_run(model, ids, receiver, caught, metric) -> float:
    if receiver.layer is None:
        handle = model.final_norm.register_forward_pre_hook(lambda m, a: (caught,))
    else:
        d = model.trf_blocks[0].att.head_dim
        columns = slice(receiver.head * d, (receiver.head + 1) * d)

        def swap(m, a, out):
            out = out.clone()
            out[..., columns] = caught[..., columns]
            return out

        handle = _qkv_linear(model, receiver).register_forward_hook(swap)
    logits = _run_with(model, ids, [handle])[metric.position]
    return metric_of(logits, metric.kind, metric.answer, metric.distractor)


def _qkv_linear(model, receiver):
    att = model.trf_blocks[receiver.layer].att
    return {"q": att.W_query, "k": att.W_key, "v": att.W_value}[receiver.kind]
