"""Trace.load against damaged and hostile files (issue 11): every inconsistency is a
TraceError with a message that names it, raised before the file's arrays are read; a good
trace still round-trips losslessly. Attention-weight gradients are kept packed (below the
mask), in memory and in the file."""

import io
import json
import zipfile

import numpy as np
import pytest

from gpt_core import Trace, backward_step
from gpt_core.probe._causal_pack import PackedCausal
from tests.probe_helpers import CFG, assert_close, autograd_reference, to_np
from tests.trace_files import META, edited, members, npy, refused, stored, version_1, write

# ---- a good trace ----


def test_a_good_trace_round_trips_losslessly(good, saved):
    loaded = Trace.load(saved)
    assert set(loaded.keys()) == set(good.keys())
    for key in good:
        assert loaded[key].dtype == good[key].dtype and loaded[key].shape == good[key].shape
        assert np.array_equal(loaded[key], good[key]), key
    for field in ("token_strings", "stages", "config", "device", "interventions", "loss"):
        assert getattr(loaded, field) == getattr(good, field), field
    assert loaded.backward == good.backward and loaded.top_k == good.top_k


def test_attention_gradients_are_kept_packed_and_equal_autograd_below_the_mask(
    model, ids, tmp_path
):
    trace = backward_step(model, ids)
    loaded = Trace.load(trace.save(tmp_path / "plain.npz"))
    _, reference, _ = autograd_reference(model, ids)
    order = dict(trace.backward.order)
    for layer in range(CFG.n_layers):
        key = f"blocks/{layer}/attn/weights"
        assert isinstance(trace.store["grad/" + key], PackedCausal)
        dense = to_np(reference[key][0])  # [H, T, T], autograd's, masked half included
        assert np.any(np.triu(dense, 1) != 0)  # so keeping only the lower half is a choice
        assert_close(trace.grad(key), np.tril(dense), rtol=0, atol=1e-6)
        assert np.array_equal(loaded.grad(key), trace.grad(key))
        assert order[key] == pytest.approx(np.linalg.norm(trace.grad(key)), rel=1e-5)


def test_the_file_holds_attention_and_its_gradient_at_about_half_their_dense_size(good, saved):
    T = good.n_tokens
    with zipfile.ZipFile(saved) as archive:
        for key in ("blocks/1/attn/weights", "grad/blocks/1/attn/weights"):
            info = archive.getinfo(key + ".npy")
            dense_bytes = good[key].nbytes if key in good else good.grad(key[5:]).nbytes
            assert stored(saved, key).shape == (CFG.n_heads, T * (T + 1) // 2)
            header = 128  # the .npy header
            assert info.file_size - header == dense_bytes * (T + 1) // (2 * T)


# ---- inconsistent contents ----


def test_non_causal_attention_is_refused_not_zeroed(good, saved, tmp_path):
    weights = good["blocks/1/attn/weights"].copy()
    weights[2, 3, 7] = 0.25  # token 3 attending to token 7
    path = version_1(good, saved, tmp_path, **{"blocks/1/attn/weights": weights})
    refused(path, "blocks/1/attn/weights", "not causal")
    weights = good["blocks/1/attn/weights"].copy()
    weights[0, 5, 6] = 0.25  # just past the diagonal: the very next token
    path = version_1(good, saved, tmp_path, **{"blocks/1/attn/weights": weights})
    refused(path, "blocks/1/attn/weights", "not causal")


def test_complex_arrays_are_refused_not_cast(saved, tmp_path):
    token = stored(saved, "embeddings/token").astype(np.complex64) + 1j
    refused(
        edited(saved, tmp_path, arrays={"embeddings/token": token}), "embeddings/token", "complex64"
    )


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("emb_dim", 64, "embeddings/token is float32 [19, 48], but the file's config"),
        ("n_layers", 2, "block 2 does not exist"),  # `good` skips block 2
        ("n_layers", 4, "lacks 'blocks/3/"),
        ("n_heads", 8, "[19, 8, 6]"),  # the queries, the first array split into heads
        ("vocab_size", 1000, "logits/last"),
        ("context_length", 10, "1 to 10 int64 token ids"),
    ],
)
def test_a_config_that_disagrees_with_the_arrays(saved, tmp_path, field, value, message):
    refused(edited(saved, tmp_path, meta=lambda m: m["config"].update({field: value})), message)


def test_out_of_vocabulary_token_ids(saved, tmp_path):
    ids = stored(saved, "tokens/ids").copy()
    ids[4] = CFG.vocab_size + 7
    refused(
        edited(saved, tmp_path, arrays={"tokens/ids": ids}), "tokens/ids holds 50264", "vocabulary"
    )
    ids[4] = CFG.vocab_size  # one past the last id
    refused(edited(saved, tmp_path, arrays={"tokens/ids": ids}), f"holds {CFG.vocab_size}")
    topk = stored(saved, "logits/topk_ids").copy()
    topk[0, 0] = -1
    refused(edited(saved, tmp_path, arrays={"logits/topk_ids": topk}), "logits/topk_ids holds -1")
    tracked = stored(saved, "logits/tracked_ids").copy()
    tracked[0] = CFG.vocab_size + 1
    refused(edited(saved, tmp_path, arrays={"logits/tracked_ids": tracked}), "logits/tracked_ids")


def test_token_strings_that_do_not_match_the_ids(saved, tmp_path):
    def swap(meta):
        meta["token_strings"][1] = "bogus"

    refused(edited(saved, tmp_path, meta=swap), "token string 1 is 'bogus'", "token id")

    def pad(meta):
        meta["token_strings"][2] += " "

    refused(edited(saved, tmp_path, meta=pad), "token string 2 is")
    refused(
        edited(saved, tmp_path, meta=lambda m: m.update(token_strings=["The"])),
        "1 token strings for 19 tokens",
    )


def test_missing_extra_and_unpaired_arrays(saved, tmp_path):
    refused(edited(saved, tmp_path, drop=["blocks/0/ff/gelu"]), "lacks 'blocks/0/ff/gelu'")
    refused(edited(saved, tmp_path, arrays={"surprise": np.zeros(3)}), "'surprise'")
    refused(edited(saved, tmp_path, drop=["logits/tracked_probs"]), "without its partner")
    no_backward = edited(saved, tmp_path, meta=lambda m: m.update(backward=None))
    refused(no_backward, "holds 'grad/")


# ---- odd metadata ----


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda m: m.update(version=5), "format version 5"),
        (lambda m: m.update(dropout_seed="3"), "'dropout_seed' is str"),
        (lambda m: m.update(backward=m["backward"] | {"eval_loss": "x"}), "'eval_loss' is str"),
        (lambda m: m.update(version="2"), "'version' is str"),
        (lambda m: m.update(config="gpt2"), "'config' is str"),
        (lambda m: m["config"].update(emb_dim="48"), "emb_dim must be a whole number"),
        (lambda m: m["config"].update(bogus=1), "unknown config field"),
        (lambda m: m.update(top_k=True), "'top_k' is bool"),
        (lambda m: m.update(top_k=0), "top_k (0)"),
        (lambda m: m.pop("device"), "lack 'device'"),
        (lambda m: m.update(token_strings="The cat"), "'token_strings' is str"),
        (lambda m: m.update(token_strings=[1] * 19), "token_strings hold int"),
        (lambda m: m.update(loss="low"), "'loss' is str"),
        (lambda m: m.update(interventions=[]), "'interventions' is list"),
        (lambda m: m["interventions"].update(ablate_heads=[["a", 1]]), "ablated heads hold str"),
        (lambda m: m["interventions"].update(ablate_heads=[[0, 9]]), "do not fit its model"),
        (lambda m: m["interventions"].update(mode="half"), "do not fit its model"),
        (lambda m: m.update(backward=5), "'backward' is int"),
        (lambda m: m["backward"].update(target=[1]), "backward target is [1]"),
        (lambda m: m["backward"].update(order=[["x"]]), "backward order holds"),
        (lambda m: m["backward"]["params"].__setitem__(0, "w"), "parameter list holds 'w'"),
        (lambda m: m["backward"]["params"][0].update(shape=[4.5]), "parameter shapes hold float"),
        (lambda m: m["backward"].pop("sgd_lr"), "lack 'sgd_lr'"),
    ],
)
def test_odd_metadata(saved, tmp_path, change, message):
    refused(edited(saved, tmp_path, meta=change), message)


def test_metadata_that_is_not_a_json_string(saved, tmp_path):
    raw = members(saved)
    raw[META + ".npy"] = npy(np.arange(3))
    refused(write(tmp_path / "a.npz", raw), "meta/json is not a JSON string")
    raw[META + ".npy"] = npy(np.array(json.dumps([{"format": "gpt-explorer-trace"}])))
    refused(write(tmp_path / "list.npz", raw), "not a GPT Explorer trace")
    raw[META + ".npy"] = npy(np.array("{not json"))
    refused(write(tmp_path / "b.npz", raw), "not valid JSON")
    raw[META + ".npy"] = npy(np.array("[" * 100_000 + "]" * 100_000))
    refused(write(tmp_path / "c.npz", raw), "not valid JSON")


# ---- headers that lie ----


def _header_only(shape, descr="<f4", data=b"\0" * 64) -> bytes:
    buffer = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        buffer, {"descr": descr, "fortran_order": False, "shape": shape}
    )
    return buffer.getvalue() + data


@pytest.mark.parametrize(
    ("key", "header", "message"),
    [
        ("embeddings/token", _header_only((19, 10**12 // 19)), "does not fit its data"),
        ("tokens/ids", _header_only((10**12,), "<i8"), "does not fit its data"),
        ("embeddings/token", _header_only((19, 48), "|O"), "does not fit its data"),
        (META, _header_only((), "<U16777217"), "does not fit its data"),
        ("embeddings/sum", b"\x93NUMPY\x09\x00" + b"\0" * 64, "not a readable array"),
        ("blocks/1/attn/keys", _header_only((19, 4, 10**11)), "does not fit its data"),
    ],
)
def test_a_header_claiming_terabytes_is_refused_before_allocating(
    saved, tmp_path, monkeypatch, key, header, message
):
    raw = members(saved)
    raw[key + ".npy"] = header

    original = np.lib.format.read_array

    def read_array(f, **kwargs):
        assert f.name != key + ".npy", "the lying array was read"
        return original(f, **kwargs)

    monkeypatch.setattr(np.lib.format, "read_array", read_array)
    refused(write(tmp_path / "lying.npz", raw), key, message)


def test_a_member_that_is_not_an_array_or_a_file_cut_short(saved, tmp_path):
    raw = members(saved)
    raw["notes.txt"] = b"hello"
    refused(write(tmp_path / "a.npz", raw), "'notes.txt'")
    cut = tmp_path / "b.npz"
    cut.write_bytes(saved.read_bytes()[:-100])
    refused(cut, "b.npz is not a readable trace file")


def _with_sizes(path, name: str, compressed: int | None, uncompressed: int) -> None:
    """Rewrite the sizes the zip's central directory gives member `name`."""
    data = bytearray(path.read_bytes())
    entry = data.index(b"PK\x01\x02")  # the first central-directory entry
    while data[entry + 46 : entry + 46 + len(name)] != name.encode():
        entry = data.index(b"PK\x01\x02", entry + 4)
    if compressed is not None:
        data[entry + 20 : entry + 24] = compressed.to_bytes(4, "little")
    data[entry + 24 : entry + 28] = uncompressed.to_bytes(4, "little")
    path.write_bytes(bytes(data))


@pytest.mark.parametrize(
    ("compression", "compressed", "message"),
    [
        (zipfile.ZIP_STORED, None, "has two sizes"),
        (zipfile.ZIP_STORED, 2**32 - 1, "claim more than the file holds"),
        (zipfile.ZIP_DEFLATED, None, "claims an impossible size"),
    ],
)
def test_zip_sizes_that_lie_are_refused_before_reading(
    saved, tmp_path, compression, compressed, message
):
    path = tmp_path / "sizes.npz"
    with zipfile.ZipFile(path, "w", compression) as archive:
        for name, data in members(saved).items():
            archive.writestr(name, data)
    _with_sizes(path, "embeddings/token.npy", compressed, 2**32 - 1)  # 4 GB
    refused(path, message)


def test_a_good_file_is_read_once_checked(saved, monkeypatch):
    """The checks read headers; the data of each array is read exactly once."""
    reads = []
    original = np.lib.format.read_array
    monkeypatch.setattr(
        np.lib.format, "read_array", lambda f, **kw: reads.append(1) or original(f, **kw)
    )
    Trace.load(saved)
    assert len(reads) == len(members(saved))


def test_a_deflated_trace_still_loads(good, saved, tmp_path):
    """The members' stored sizes are checked against the file, not their unpacked sizes."""
    path = tmp_path / "deflated.npz"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members(saved).items():
            archive.writestr(name, data)
    assert path.stat().st_size < saved.stat().st_size
    loaded = Trace.load(path)
    for key in good:
        assert np.array_equal(loaded[key], good[key]), key


def test_a_trace_that_fills_the_context_loads(good, saved, tmp_path):
    full = edited(saved, tmp_path, meta=lambda m: m["config"].update(context_length=good.n_tokens))
    assert Trace.load(full).config.context_length == good.n_tokens
