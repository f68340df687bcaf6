"""The lens at every sub-layer, recomputed in numpy float64 from the captured residual
streams and the model's weights; its last point is the model's own output."""

import numpy as np
import pytest
import torch

from gpt_core import Interventions, capture, get_tokenizer, load_model, stage_key
from gpt_core.analysis import sublayer_lens
from tests.cli_helpers import run_cli  # in-process: test_cli runs the entry point

PROMPT = "The cat sat on the mat and looked at the dog"


@pytest.fixture(scope="module")
def sharp():
    """The tiny model with a sharper head and a random final norm, so that the lens rows
    differ visibly and a lens that skipped the norm's scale and shift would be caught."""
    model, _ = load_model(None, "tiny", seed=5)
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        model.out_head.weight.mul_(60)
        model.final_norm.scale.copy_(1 + 0.3 * torch.randn(32, generator=generator))
        model.final_norm.shift.copy_(0.2 * torch.randn(32, generator=generator))
    return model


def _numpy_lens(model, stream: np.ndarray):
    x = stream.astype(np.float64)  # [T, E]
    mean = x.mean(-1, keepdims=True)
    var = ((x - mean) ** 2).mean(-1, keepdims=True)
    scale = model.final_norm.scale.detach().double().numpy()
    shift = model.final_norm.shift.detach().double().numpy()
    y = scale * (x - mean) / np.sqrt(var + 1e-5) + shift
    logits = y @ model.out_head.weight.detach().double().numpy().T  # [T, V]
    logits -= logits.max(-1, keepdims=True)
    return logits - np.log(np.exp(logits).sum(-1, keepdims=True))  # log p


def test_every_point_recomputed_in_numpy(sharp):
    ids = get_tokenizer().encode(PROMPT)
    trace = capture(sharp, ids)
    target = int(trace["logits/topk_ids"][3, 1])
    lens = sublayer_lens(sharp, trace, target)
    keys = ["embeddings/sum"]
    for layer in range(sharp.cfg.n_layers):
        keys += [stage_key("resid_mid", layer), stage_key("out", layer)]
    assert lens.labels == ("embeddings", "B0 mid", "B0 out", "B1 mid", "B1 out")
    final = _numpy_lens(sharp, trace[keys[-1]])
    for row, key in enumerate(keys):
        log_p = _numpy_lens(sharp, trace[key])
        p = np.exp(log_p)
        assert lens.top1_ids[row].tolist() == log_p.argmax(-1).tolist()
        assert np.allclose(lens.top1_probs[row], p.max(-1), rtol=1e-4, atol=1e-6)
        assert np.allclose(lens.entropy[row], -(p * log_p).sum(-1), rtol=1e-4, atol=1e-5)
        kl = (np.exp(final) * (final - log_p)).sum(-1)
        assert np.allclose(lens.kl[row], kl, rtol=1e-3, atol=1e-4)
        rank = (log_p > log_p[:, target : target + 1]).sum(-1)
        assert lens.target_rank[row].tolist() == rank.tolist()
        top5 = np.argsort(-log_p, axis=-1, kind="stable")[:, :5]
        assert lens.topk_ids[row].tolist() == top5.tolist()
        assert np.allclose(lens.topk_probs[row], np.take_along_axis(p, top5, -1), atol=1e-6)
    # the last point is the model's own output
    assert lens.top1_ids[-1].tolist() == trace["logits/topk_ids"][:, 0].tolist()
    assert np.allclose(lens.top1_probs[-1], trace["logits/topk_probs"][:, 0], atol=1e-5)
    assert np.array_equal(lens.kl[-1], np.zeros(len(ids)))
    assert len(set(map(tuple, lens.top1_ids.tolist()))) > 1  # the rows differ


def test_a_subset_of_positions_equals_those_columns_of_the_whole(sharp):
    trace = capture(sharp, get_tokenizer().encode(PROMPT))
    whole = sublayer_lens(sharp, trace, target=7)
    columns = [5, 0, trace.n_tokens - 1]
    part = sublayer_lens(sharp, trace, target=7, positions=columns)
    assert part.positions.tolist() == columns
    for name in ("top1_ids", "top1_probs", "topk_ids", "topk_probs", "entropy", "kl"):
        assert np.allclose(getattr(part, name), getattr(whole, name)[:, columns], atol=1e-6)
    assert np.array_equal(part.target_rank, whole.target_rank[:, columns])
    with pytest.raises(ValueError, match="positions"):
        sublayer_lens(sharp, trace, positions=[trace.n_tokens])


def test_the_lens_command_writes_its_arrays(tmp_path):
    done = run_cli("lens", "--preset", "tiny", "--seed", "5", "--prompt", PROMPT,
                   "--target", " the", "--ablate", "0.1", "--out", str(tmp_path))  # fmt: skip
    assert done.returncode == 0, done.stderr
    model, _ = load_model(None, "tiny", seed=5)
    tokenizer = get_tokenizer()
    trace = capture(model, tokenizer.encode(PROMPT), Interventions.parse("0.1"))
    expected = sublayer_lens(model, trace, tokenizer.encode(" the")[0])
    ids = np.load(tmp_path / "lens_top1_ids.npy")
    assert ids.dtype == np.int64 and ids.shape == (5, len(tokenizer.encode(PROMPT)))
    assert np.array_equal(ids, expected.top1_ids)
    assert np.allclose(np.load(tmp_path / "lens_kl.npy"), expected.kl, atol=1e-6)
    assert np.array_equal(np.load(tmp_path / "lens_target_rank.npy"), expected.target_rank)
    assert np.load(tmp_path / "lens_entropy.npy").dtype == np.float32
    bad = run_cli("lens", "--preset", "tiny", "--prompt", "x", "--target", " two words",
                  "--out", str(tmp_path))  # fmt: skip
    assert bad.returncode == 2 and "exactly one" in bad.stderr
