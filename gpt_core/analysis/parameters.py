"""Parameter counts per module and the float32 memory they take."""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn

from ..model import GPTModel


@dataclass(frozen=True)
class ParameterCount:
    total: int  # distinct parameters in the model
    tied_total: int  # the same if out_head shared tok_emb's weights (GPT-2's own scheme)
    by_module: dict[str, int]  # module path ("" is the whole model) -> its parameters, nested
    float32_bytes: int  # memory of `total` parameters in float32

    @property
    def float32_megabytes(self) -> float:
        return self.float32_bytes / 2**20


def count_parameters(model: nn.Module) -> ParameterCount:
    by_module = {}
    for name, module in model.named_modules():
        by_module[name] = sum(p.numel() for p in module.parameters())  # shared ones once
    total = by_module[""]
    tied_total = total
    if isinstance(model, GPTModel) and model.out_head.weight is not model.tok_emb.weight:
        tied_total = total - model.out_head.weight.numel()
    return ParameterCount(total, tied_total, by_module, total * 4)
