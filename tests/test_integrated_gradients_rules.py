"""Integrated gradients' two rules: Gauss–Legendre nodes and weights on [0, 1] checked
against exact integrals of polynomials, and the completeness gap of each rule as the steps
grow (Gauss–Legendre's must fall much faster, which a midpoint rule in disguise would not);
the attribute command's --integration option."""

import numpy as np
import pytest
import torch

from gpt_core.analysis.input_attribution import (
    DEFAULT_STEPS,
    Explained,
    attribute,
    quadrature,
)
from tests.cli_helpers import run_cli
from tests.patching_reference import sharpened
from tests.probe_helpers import probe_model

IDS = [464, 3797, 3332, 319, 262, 2603, 13, 3244, 340, 3114]


@pytest.mark.parametrize("steps", [1, 2, 3, 5, 8, 13])
def test_gauss_legendre_integrates_polynomials_to_degree_2n_minus_1_on_0_1(steps):
    nodes, weights = quadrature("gauss", steps)
    assert nodes.shape == weights.shape == (steps,)
    assert np.all((nodes > 0) & (nodes < 1)) and np.all(weights > 0)
    for degree in range(2 * steps):
        assert weights @ nodes**degree == pytest.approx(1 / (degree + 1), abs=1e-13)
    if steps <= 5:  # and no further: degree 2N is the first it gets wrong (visibly)
        assert abs(weights @ nodes ** (2 * steps) - 1 / (2 * steps + 1)) > 1e-9


def test_the_midpoint_rule_is_the_midpoints():
    nodes, weights = quadrature("midpoint", 4)
    assert nodes.tolist() == [0.125, 0.375, 0.625, 0.875]
    assert weights.tolist() == [0.25] * 4


def test_the_gauss_completeness_gap_falls_much_faster_than_the_midpoint_rules():
    model = sharpened(probe_model())
    with torch.no_grad():
        target = int(model(torch.tensor([IDS]))[0, -1].argmax())
    explained = Explained(target, None, len(IDS) - 1)

    def gap(integration, steps):
        methods = ("integrated_gradients",)
        result = attribute(model, IDS, explained, methods, steps=steps, integration=integration)
        return result.completeness_gap

    gauss = {n: gap("gauss", n) for n in (3, 4, 8)}
    midpoint = {n: gap("midpoint", n) for n in (4, 8)}
    assert gauss[4] < gauss[3] / 10
    assert gauss[4] < midpoint[4] / 20
    assert gauss[8] < 1e-5 < 1e-4 < midpoint[8]


def test_the_default_rule_and_steps():
    model = sharpened(probe_model())
    explained = Explained(5, None, len(IDS) - 1)
    chosen = attribute(
        model, IDS, explained, ("integrated_gradients",), steps=DEFAULT_STEPS["gauss"]
    )
    default = attribute(model, IDS, explained, ("integrated_gradients",))
    assert np.array_equal(
        default.scores["integrated_gradients"], chosen.scores["integrated_gradients"]
    )
    with pytest.raises(ValueError, match="integration must be one of gauss, midpoint"):
        attribute(model, IDS, explained, ("integrated_gradients",), integration="simpson")


def test_the_attribute_command_takes_the_rule(tmp_path):
    common = ("attribute", "--preset", "tiny", "--prompt", "The cat sat", "--target", " the",
              "--method", "integrated_gradients")  # fmt: skip
    done = run_cli(*common, "--integration", "midpoint", "--steps", "4", "--out", str(tmp_path))
    assert done.returncode == 0, done.stderr
    bad = run_cli(*common, "--integration", "simpson", "--out", str(tmp_path))
    assert bad.returncode == 2
    assert bad.stderr.count("error:") == 1 and "simpson" in bad.stderr
