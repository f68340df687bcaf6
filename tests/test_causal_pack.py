import numpy as np
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from gpt_core.probe._causal_pack import PackedCausal, pack_causal


def _causal(heads, size, seed):
    g = torch.Generator().manual_seed(seed)
    scores = torch.randn(heads, size, size, generator=g)
    scores.masked_fill_(torch.ones(size, size, dtype=torch.bool).triu(1), -torch.inf)
    return torch.softmax(scores, dim=-1)


@settings(max_examples=60, deadline=None)
@given(heads=st.integers(1, 4), size=st.integers(1, 40), seed=st.integers(0, 1000))
def test_pack_unpack_is_lossless(heads, size, seed):
    weights = _causal(heads, size, seed)
    packed = PackedCausal.from_parts(pack_causal(weights))
    assert packed.shape == (heads, size, size)
    assert np.array_equal(packed.unpack(), weights.numpy())
    for h in range(heads):
        assert np.array_equal(packed.unpack(h), weights[h].numpy())


def test_packed_size_is_about_half():
    weights = _causal(12, 1024, 0)
    packed = PackedCausal.from_parts(pack_causal(weights))
    assert packed.nbytes / weights.numpy().nbytes < 0.501
