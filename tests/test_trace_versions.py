"""Trace files of every format version: older ones load without the stages they did not
record; queries, keys and values are checked like every other array; scores, derived from
them, are never accepted from a file."""

import numpy as np
import pytest

from gpt_core import Trace, TraceError
from tests.probe_helpers import CFG
from tests.trace_files import QKV, edited, older, refused, stored, version_1


@pytest.mark.parametrize("version", [1, 2])
def test_an_older_file_still_loads_without_the_newer_stages(good, saved, tmp_path, version):
    path = version_1(good, saved, tmp_path) if version == 1 else older(saved, tmp_path, 2)
    loaded = Trace.load(path)
    newer = {f"blocks/{i}/{name}" for i in range(CFG.n_layers) for name in (*QKV, "attn/scores")}
    assert set(loaded.keys()) == set(good.keys()) - newer - {"grad/" + key for key in newer}
    assert [s.key for s in loaded.stages] == [s.key for s in good.stages if s.key not in newer]
    for key in loaded:
        assert np.array_equal(loaded[key], good[key]), key
    for key in ("blocks/0/attn/queries", "blocks/1/attn/scores"):
        assert key not in loaded
        with pytest.raises(TraceError, match=f"no '{key}'.*older GPT Explorer"):
            loaded[key]
    with pytest.raises(TraceError, match="older GPT Explorer"):
        loaded.head_scores(1, 0)


def test_queries_keys_and_values_of_the_wrong_shape_are_refused(good, saved, tmp_path):
    T, H, d = good.n_tokens, CFG.n_heads, CFG.emb_dim // CFG.n_heads
    queries = stored(saved, "blocks/0/attn/queries")
    wrong = {
        "blocks/0/attn/queries": queries.transpose(1, 0, 2).copy(),  # [H, T, d]: not split so
        "blocks/1/attn/keys": queries.reshape(T, H * d),  # heads not split at all
        "blocks/1/attn/values": queries[:-1],  # a token short
        "grad/blocks/0/attn/keys": queries[:, :-1],  # a head short
    }
    for key, array in wrong.items():
        refused(
            edited(saved, tmp_path, arrays={key: array}),
            f"{key} is float32 {list(array.shape)}",
            f"make it float32 [{T}, {H}, {d}]",
        )
    scores = good["blocks/0/attn/scores"]
    refused(
        edited(saved, tmp_path, arrays={"blocks/0/attn/scores": scores}),
        "holds 'blocks/0/attn/scores', which no trace of its model holds",
    )
    refused(
        edited(saved, tmp_path, meta=lambda m: m.update(version=2)),
        "holds 'blocks/0/attn/queries', which no trace of its model holds",
    )
    refused(edited(saved, tmp_path, drop=["blocks/1/attn/values"]), "lacks 'blocks/1/attn/values'")


@pytest.mark.parametrize("version", [1, 2])
def test_an_older_file_saved_again_loads_again(good, saved, tmp_path, version):
    path = version_1(good, saved, tmp_path) if version == 1 else older(saved, tmp_path, 2)
    loaded = Trace.load(path)
    again = Trace.load(loaded.save(tmp_path / "again.npz"))  # as version 2: no q, k, v
    assert list(again.keys()) == list(loaded.keys())
    for key in again:
        assert np.array_equal(again[key], loaded[key]), key
