"""Training mode of the backward step: dropout on, seeded. Pinned by the book's GPTModel
(tests/book_reference.py) in train() mode run right after torch.manual_seed(S): the same loss,
parameter gradients and activation gradients. The recorded masks are exactly what the
model's dropout modules applied (read by the test's own hooks), the kept entries scaled by
1/(1 - p); evaluation mode is as it was; the caller's random state is left alone."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from gpt_core import Cancelled, Trace, backward_step, capture
from tests.book_reference import BookGPTModel
from tests.cli_helpers import TINY, assert_one_error_line, run_cli
from tests.probe_helpers import CFG, assert_close, probe_model, to_np
from tests.trace_files import edited, refused

P = 0.25  # a larger drop rate than GPT-2's 0.1: more entries dropped in a small model
DROPPY = CFG.replace(drop_rate=P)
SITES = ("attn/dropout", "attn/out_dropout", "ff/out_dropout")  # per block, in call order
BOOK_STAGES = {  # our stage -> the book module whose output it is
    "embeddings/sum": "drop_emb",
    "final_norm/out": "final_norm",
    **{f"blocks/{i}/{name}": f"trf_blocks.{i}{module}" for i in range(CFG.n_layers)
       for name, module in (("ln1/out", ".norm1"), ("attn/out", ".att"), ("ln2/out", ".norm2"),
                            ("ff/out", ".ff.layers"), ("out", ""))},
}  # fmt: skip


@pytest.fixture(scope="module")
def model():
    return probe_model(DROPPY)


@pytest.fixture(scope="module")
def book(model):
    book = BookGPTModel(DROPPY.to_dict())
    missing, unexpected = book.load_state_dict(model.state_dict(), strict=False)
    assert not unexpected and all(key.endswith("att.mask") for key in missing)
    return book


def mask_keys(n_layers=CFG.n_layers):
    return ["embeddings/dropout"] + [f"blocks/{i}/{s}" for i in range(n_layers) for s in SITES]


def book_run(book, ids, seed, device="cpu"):
    """The book's model in train() mode right after torch.manual_seed(seed): its loss, the
    gradient of every parameter and of each module output in BOOK_STAGES and of the attention
    weights (the input of att.dropout)."""
    modules = dict(book.named_modules())
    kept, handles = {}, []

    def keep(key):
        def hook(module, args, output):
            output.retain_grad()
            kept[key] = output

        return hook

    def keep_input(key):
        def hook(module, args):
            args[0].retain_grad()
            kept[key] = args[0]

        return hook

    for key, name in BOOK_STAGES.items():
        handles.append(modules[name].register_forward_hook(keep(key)))
    for i in range(CFG.n_layers):
        att_drop = book.trf_blocks[i].att.dropout
        handles.append(att_drop.register_forward_pre_hook(keep_input(f"blocks/{i}/attn/weights")))
    book.train()
    book.zero_grad()
    torch.manual_seed(seed)
    idx = torch.tensor([ids], device=device)
    try:
        loss = F.cross_entropy(book(idx)[0, :-1], idx[0, 1:])
        loss.backward()
    finally:
        for handle in handles:
            handle.remove()
        book.eval()
    params = {name: p.grad.clone() for name, p in book.named_parameters()}
    return float(loss.detach()), params, {key: to_np(t.grad[0].cpu()) for key, t in kept.items()}


def our_run(model, ids, seed, device="cpu", **options):
    """backward_step in training mode, with the full parameter gradients read by the test's
    own hooks (the trace keeps their norms only)."""
    grads, handles = {}, []
    for name, p in model.named_parameters():
        handles.append(
            p.register_post_accumulate_grad_hook(lambda p, name=name: grads.update({name: p.grad}))
        )
    try:
        trace = backward_step(model, ids, train=True, dropout_seed=seed, device=device, **options)
    finally:
        for handle in handles:
            handle.remove()
    return trace, {name: g.clone() for name, g in grads.items()}


def site_inputs_outputs(model, ids, seed, device="cpu"):
    """Each dropout call's (input, output), read by the test's own hooks, in call order (the
    training-mode forward's; not those of the evaluation-mode loss beside it)."""
    calls, handles = [], []

    def keep(module, args, output):
        if module.training:
            calls.append((to_np(args[0][0].cpu()), to_np(output[0].cpu())))

    for module in model.modules():
        if isinstance(module, nn.Dropout):
            handles.append(module.register_forward_hook(keep))
    try:
        trace = backward_step(model, ids, train=True, dropout_seed=seed, device=device)
    finally:
        for handle in handles:
            handle.remove()
    return trace, calls


# ---- the reference: the book's model in train() mode ----


@pytest.mark.parametrize("seed", [0, 7])
def test_loss_and_gradients_equal_the_books_in_train_mode(model, book, ids, seed):
    loss, book_params, book_acts = book_run(book, ids, seed)
    trace, params = our_run(model, ids, seed)
    assert trace.training and trace.dropout_seed == seed
    assert trace.backward.loss == pytest.approx(loss, rel=1e-5)
    assert set(params) == set(book_params)
    for name, grad in params.items():
        assert_close(to_np(grad), to_np(book_params[name]), rtol=1e-5, atol=1e-7)
    norms = {p.name: p.grad_norm for p in trace.backward.params}
    for name, grad in book_params.items():
        # abs: W_key's bias gets rounding noise only (the softmax ignores a shift)
        assert norms[name] == pytest.approx(float(grad.norm()), rel=1e-5, abs=1e-8)
    for key, grad in book_acts.items():
        ours = trace.grad(key)
        if ours.ndim == 3:  # attention weights: the trace keeps the causal lower triangle
            grad = np.tril(grad)
        assert_close(ours, grad, rtol=1e-5, atol=1e-8)
    # dropout really acted: the book's loss in eval mode is another number
    with torch.no_grad():
        idx = torch.tensor([ids])
        eval_loss = float(F.cross_entropy(book(idx)[0, :-1], idx[0, 1:]))
    assert abs(eval_loss - loss) > 1e-3
    assert trace.backward.eval_loss == pytest.approx(eval_loss, rel=1e-5)


def test_a_one_token_loss_and_the_sgd_step_in_training_mode(model, ids):
    target = (4, 262)
    trace = backward_step(model, ids, target, train=True, dropout_seed=3, sgd_lr=0.5)
    evaluated = backward_step(model, ids, target, sgd_lr=0.5)
    assert trace.backward.eval_loss == pytest.approx(evaluated.backward.loss, rel=1e-6)
    assert trace.backward.loss != pytest.approx(evaluated.backward.loss, rel=1e-3)
    # The step's loss, with the same masks: the stepped weights in train mode after the seed.
    stepped = probe_model(DROPPY)
    grads = {}
    handles = [
        p.register_post_accumulate_grad_hook(lambda p, n=n: grads.update({n: p.grad.clone()}))
        for n, p in stepped.named_parameters()
    ]
    backward_step(stepped, ids, target, train=True, dropout_seed=3)
    for handle in handles:
        handle.remove()
    with torch.no_grad():
        for name, p in stepped.named_parameters():
            p -= 0.5 * grads[name]
        stepped.train()
        torch.manual_seed(3)
        after = -torch.log_softmax(stepped(torch.tensor([ids]))[0, 4], -1)[262]
    assert trace.backward.loss_after_sgd == pytest.approx(float(after), rel=1e-5)


# ---- the masks ----


def test_each_mask_is_what_its_dropout_applied_kept_ones_scaled_by_1_over_1_minus_p(model, ids):
    check_masks(*site_inputs_outputs(model, ids, seed=11))


def check_masks(trace, calls):
    keys = mask_keys()
    assert len(calls) == len(keys)  # one recorded mask per dropout call, in call order
    scale = np.float32(1) / np.float32(1 - P)
    for key, (site_in, site_out) in zip(keys, calls, strict=True):
        mask = trace[key]
        if mask.ndim == 3:  # [H, T, T]: only the causal lower triangle is kept
            lower = np.tril(np.ones(mask.shape[1:], dtype=bool))
            mask, site_in, site_out = mask[:, lower], site_in[:, lower], site_out[:, lower]
        assert mask.shape == site_in.shape, key
        assert set(np.unique(mask)) == {0.0, scale}, key
        kept = mask != 0
        assert np.array_equal(site_out[~kept], np.zeros_like(site_out[~kept])), key
        # exactly: the float32 product the module computed
        kept_in = site_in[kept].astype(np.float32)
        assert np.array_equal(site_out[kept].astype(np.float32), kept_in * scale), key
        assert 0.1 < 1 - kept.mean() < 0.45, key  # about P of the entries dropped
    assert trace.stage("blocks/0/attn/dropout").layout == "causal_heads"


@pytest.mark.cuda
def test_on_cuda_the_books_loss_and_gradients_and_the_masks_applied(ids):
    """CUDA draws its masks with its own generator (and a fused kernel): the same checks."""
    model = probe_model(DROPPY)
    book = BookGPTModel(DROPPY.to_dict())
    book.load_state_dict(model.state_dict(), strict=False)
    book.to("cuda")
    cpu_state, cuda_state = torch.get_rng_state(), torch.cuda.get_rng_state()
    trace, params = our_run(model, ids, 5, device="cuda")
    assert torch.equal(cpu_state, torch.get_rng_state())
    assert torch.equal(cuda_state, torch.cuda.get_rng_state())
    loss, book_params, _ = book_run(book, ids, 5, device="cuda")
    assert trace.backward.loss == pytest.approx(loss, rel=1e-5)
    for name, grad in params.items():
        assert_close(to_np(grad.cpu()), to_np(book_params[name].cpu()), rtol=1e-5, atol=1e-7)
    check_masks(*site_inputs_outputs(model, ids, 6, device="cuda"))


def test_different_seeds_different_masks_same_seed_same_masks(model, ids):
    a = backward_step(model, ids, train=True, dropout_seed=1)
    b = backward_step(model, ids, train=True, dropout_seed=1)
    c = backward_step(model, ids, train=True, dropout_seed=2)
    for key in mask_keys():
        assert np.array_equal(a[key], b[key]), key
        assert not np.array_equal(a[key], c[key]), key
    assert a.backward.loss == b.backward.loss != c.backward.loss
    forward = capture(model, ids, train=True, dropout_seed=1)  # the forward alone draws alike
    for key in mask_keys():
        assert np.array_equal(a[key], forward[key]), key


def test_evaluation_mode_is_unchanged(model, ids):
    """No masks, no mode, bitwise the run of a model whose dropout modules are gone."""
    state = torch.get_rng_state()
    trace = backward_step(model, ids, sgd_lr=0.1)
    assert torch.equal(state, torch.get_rng_state())
    assert not trace.training and trace.dropout_seed is None
    assert trace.backward.eval_loss is None
    assert not [key for key in trace if "dropout" in key]
    without = probe_model(DROPPY)
    without.drop_emb = nn.Identity()
    for block in without.trf_blocks:
        block.att.dropout, block.drop_shortcut = nn.Identity(), nn.Identity()
    plain = backward_step(without, ids, sgd_lr=0.1)
    assert list(plain) == list(trace)
    for key in trace:
        assert np.array_equal(trace[key], plain[key]), key
    assert trace.backward == plain.backward


# ---- the caller's random state ----


def test_the_random_state_outside_the_run_is_as_it_was(model, ids):
    torch.manual_seed(1234)
    state = torch.get_rng_state()
    backward_step(model, ids, train=True, dropout_seed=5, sgd_lr=0.1)
    assert torch.equal(state, torch.get_rng_state())
    capture(model, ids, train=True, dropout_seed=6)
    assert torch.equal(state, torch.get_rng_state())
    drawn = torch.rand(4)
    torch.manual_seed(1234)
    assert torch.equal(drawn, torch.rand(4))
    assert not model.training


def test_the_random_state_is_restored_after_a_run_that_raised(model, ids):
    torch.manual_seed(99)
    state = torch.get_rng_state()
    calls = []

    def stop_in_the_middle():
        calls.append(1)
        return len(calls) == 2

    with pytest.raises(Cancelled):
        backward_step(model, ids, train=True, dropout_seed=5, should_stop=stop_in_the_middle)
    assert torch.equal(state, torch.get_rng_state())
    assert not model.training


# ---- trace files ----


def test_a_training_mode_trace_round_trips(model, ids, tmp_path):
    trace = backward_step(model, ids, train=True, dropout_seed=42)
    loaded = Trace.load(trace.save(tmp_path / "train.npz"))
    assert loaded.training and loaded.dropout_seed == 42
    assert loaded.backward == trace.backward and loaded.backward.eval_loss is not None
    assert set(loaded) == set(trace) and loaded.stages == trace.stages
    for key in mask_keys():
        assert np.array_equal(loaded[key], trace[key]), key
    evaluated = Trace.load(backward_step(model, ids).save(tmp_path / "eval.npz"))
    assert not evaluated.training and evaluated.dropout_seed is None


def test_trace_files_state_their_mode_and_older_ones_are_evaluation_mode(model, ids, tmp_path):
    saved = backward_step(model, ids, train=True, dropout_seed=3).save(tmp_path / "t.npz")
    evaluated = capture(model, ids).save(tmp_path / "e.npz")
    refused(edited(saved, tmp_path, meta=lambda m: m.update(mode="eval")), "does not fit")
    refused(edited(saved, tmp_path, meta=lambda m: m.update(dropout_seed=None)), "does not fit")
    refused(edited(saved, tmp_path, meta=lambda m: m.update(mode="dropout")), "does not fit")
    refused(edited(saved, tmp_path, meta=lambda m: m.pop("mode")), "lack 'mode'")
    refused(edited(saved, tmp_path, drop=["blocks/1/attn/dropout"]), "lacks 'blocks/1/attn")
    mask = np.ones((CFG.n_heads, len(ids) * (len(ids) + 1) // 2), np.float32)
    refused(
        edited(evaluated, tmp_path, arrays={"blocks/0/attn/dropout": mask}),
        "holds 'blocks/0/attn/dropout', which no trace of its model holds",
    )

    def as_version_3(meta):
        meta.update(version=3)
        del meta["mode"], meta["dropout_seed"]

    older = Trace.load(edited(evaluated, tmp_path, meta=as_version_3))
    assert not older.training


# ---- the command line ----


def test_trace_command_in_training_mode(tmp_path):
    out = tmp_path / "t.npz"
    prompt = ("--prompt", "The cat sat on the mat")
    result = run_cli("trace", *TINY, *prompt, "--out", str(out), "--backward", "--train",
                     "--dropout-seed", "9")  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "training mode, dropout seed 9" in result.stdout
    trace = Trace.load(out)
    assert trace.dropout_seed == 9 and "blocks/0/attn/dropout" in trace
    run_cli("trace", *TINY, *prompt, "--out", str(out), "--backward", "--train")
    assert Trace.load(out).dropout_seed == 0  # the default seed
    run_cli("trace", *TINY, *prompt, "--out", str(out), "--backward")
    assert not Trace.load(out).training
    bad = run_cli("trace", *TINY, *prompt, "--out", str(out), "--train")
    assert_one_error_line(bad, "--train", "add --backward")
    bad = run_cli("trace", *TINY, *prompt, "--out", str(out), "--backward", "--dropout-seed", "2")
    assert_one_error_line(bad, "add --train")
