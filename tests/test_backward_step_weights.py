"""backward_step and the model's weights (issue 11): a Ctrl+C anywhere inside the SGD step
leaves every parameter bit for bit as it was, and the weight norms follow edits made
through `p.data`, which no version counter sees."""

import contextlib

import pytest
import torch

from gpt_core import backward_step
from tests.probe_helpers import CFG, assert_pristine, snapshot

LR = 0.5


class Interrupter:
    """Raises KeyboardInterrupt on its `at`-th call (counting from 0); counts calls only
    when `at` is None."""

    def __init__(self, at: int | None = None):
        self.at = at
        self.calls = 0

    def __call__(self) -> None:
        call, self.calls = self.calls, self.calls + 1
        if call == self.at:
            raise KeyboardInterrupt


def _interrupt_everywhere(model, ids, install) -> int:
    """Run backward_step once per call of the patched function, interrupting at that call;
    after each the model must be pristine. Returns the number of calls a clean run makes."""
    saved = snapshot(model)
    counter = Interrupter()
    with install(counter):
        backward_step(model, ids, sgd_lr=LR)
    assert_pristine(model, saved)
    for at in range(counter.calls):
        with install(Interrupter(at)), pytest.raises(KeyboardInterrupt):
            backward_step(model, ids, sgd_lr=LR)
        assert_pristine(model, saved)
    return counter.calls


def test_ctrl_c_in_any_block_of_either_forward_leaves_the_weights(model, ids):
    """should_stop is polled before every block of the backward's forward and of the
    forward with the stepped weights; here it interrupts instead of asking to stop."""
    saved = snapshot(model)
    counter = Interrupter()
    backward_step(model, ids, sgd_lr=LR, should_stop=lambda: counter() or False)
    assert counter.calls == 2 * CFG.n_layers  # both forwards are polled
    for at in range(counter.calls):
        interrupter = Interrupter(at)
        with pytest.raises(KeyboardInterrupt):
            backward_step(model, ids, sgd_lr=LR, should_stop=lambda i=interrupter: i() or False)
        assert_pristine(model, saved)


@pytest.mark.parametrize(
    "where",
    [
        "copy_",  # an undo of the step in place: Tensor.copy_ once per parameter
        "clone",  # a saved copy to undo from
    ],
)
def test_ctrl_c_inside_the_step_or_its_undo_leaves_the_weights(model, ids, monkeypatch, where):
    """Interrupt at every call of a tensor method the SGD step or an undo of it would use."""
    original = getattr(torch.Tensor, where)

    @contextlib.contextmanager
    def patched_with(interrupter):
        def patched(*args, **kwargs):
            interrupter()
            return original(*args, **kwargs)

        monkeypatch.setattr(torch.Tensor, where, patched)
        try:
            yield
        finally:
            monkeypatch.setattr(torch.Tensor, where, original)

    _interrupt_everywhere(model, ids, patched_with)


def test_ctrl_c_in_the_loss_after_the_step_leaves_the_weights(model, ids, monkeypatch):
    from gpt_core.probe import _backward

    original = _backward.loss_of

    @contextlib.contextmanager
    def patched_with(interrupter):
        def loss_of(*args):
            interrupter()
            return original(*args)

        monkeypatch.setattr(_backward, "loss_of", loss_of)
        try:
            yield
        finally:
            monkeypatch.setattr(_backward, "loss_of", original)

    assert _interrupt_everywhere(model, ids, patched_with) == 1  # the loss after the step


def test_weight_norms_follow_an_edit_through_data(model, ids):
    first = backward_step(model, ids).backward.params
    param = next(model.parameters())
    try:
        param.data.mul_(10)  # no version counter sees this edit
        second = backward_step(model, ids).backward.params
    finally:
        param.data.div_(10)
    assert second[0].weight_norm == pytest.approx(10 * first[0].weight_norm, rel=1e-5)
    assert second[0].weight_norm == pytest.approx(10 * param.norm().item(), rel=1e-5)
    for before, after in zip(first[1:], second[1:], strict=True):
        assert after.weight_norm == before.weight_norm
