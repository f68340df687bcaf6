"""A good trace file and the tools to damage it, shared by the trace-file tests
(test_trace_load_hostile.py, test_trace_versions.py); its fixtures are registered in
conftest.py."""

import io
import json
import zipfile

import numpy as np
import pytest

from gpt_core import Interventions, Trace, TraceError, backward_step

META = "meta/json"


@pytest.fixture(scope="module")
def good(model, ids):
    return backward_step(
        model, ids, interventions=Interventions({(0, 1)}, {2}), sgd_lr=0.1, track_token_ids=ids
    )


@pytest.fixture(scope="module")
def saved(good, tmp_path_factory):
    return good.save(tmp_path_factory.mktemp("hostile") / "good.npz")


def members(path) -> dict[str, bytes]:
    with zipfile.ZipFile(path) as archive:
        return {info.filename: archive.read(info) for info in archive.infolist()}


def npy(array) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=False)
    return buffer.getvalue()


def write(path, raw: dict[str, bytes]):
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in raw.items():
            archive.writestr(name, data)
    return path


def edited(saved, tmp_path, arrays=None, meta=None, drop=()):
    """A copy of the good file with some arrays replaced (or added), the metadata edited in
    place by `meta`, some arrays dropped."""
    raw = members(saved)
    for key in drop:
        del raw[key + ".npy"]
    for key, array in (arrays or {}).items():
        raw[key + ".npy"] = npy(array)
    if meta is not None:
        data = json.loads(np.load(io.BytesIO(raw[META + ".npy"])).item())
        meta(data)
        raw[META + ".npy"] = npy(np.array(json.dumps(data)))
    return write(tmp_path / "edited.npz", raw)


def stored(saved, key) -> np.ndarray:
    return np.load(io.BytesIO(members(saved)[key + ".npy"]), allow_pickle=False)


def refused(path, *fragments):
    with pytest.raises(TraceError) as caught:
        Trace.load(path)
    for fragment in fragments:
        assert fragment in str(caught.value), str(caught.value)
    assert "\n" not in str(caught.value)


QKV = ("attn/queries", "attn/keys", "attn/values")  # stored from version 3 on


def older(saved, tmp_path, version, arrays=None):
    """The good trace as an older version wrote it: no queries, keys or values."""
    stored_keys = {name.removesuffix(".npy") for name in members(saved)}
    qkv = [key for key in stored_keys if key.endswith(QKV)]
    return edited(saved, tmp_path, arrays, meta=lambda m: m.update(version=version), drop=qkv)


def version_1(good, saved, tmp_path, **changes):
    """The good trace as version 1 wrote it: attention and its gradients dense [H, T, T]."""
    dense = {key: good[key] for key in good if key.endswith("attn/weights")}
    return older(saved, tmp_path, 1, dense | changes)
