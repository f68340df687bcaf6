"""The probed model, the prompt's ids and its trace, shared by test_probe.py and
test_probe_backward.py (registered in conftest.py; a module's own fixture of the same name
wins)."""

import pytest

from gpt_core import capture
from tests.probe_helpers import PROMPT, probe_model


@pytest.fixture(scope="module")
def model():
    return probe_model()


@pytest.fixture(scope="module")
def ids(tokenizer):
    return tokenizer.encode(PROMPT)


@pytest.fixture(scope="module")
def trace(model, ids):
    return capture(model, ids)
