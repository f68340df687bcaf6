import pytest

from gpt_core import GPTConfig


def test_gpt2_small_is_the_seed_config():
    cfg = GPTConfig.preset("gpt2-small")
    assert cfg == GPTConfig(
        vocab_size=50257,
        context_length=1024,
        emb_dim=768,
        n_heads=12,
        n_layers=12,
        drop_rate=0.1,
        qkv_bias=False,
    )


@pytest.mark.parametrize(
    ("name", "emb", "layers", "heads"),
    [("gpt2-medium", 1024, 24, 16), ("gpt2-large", 1280, 36, 20), ("gpt2-xl", 1600, 48, 25)],
)
def test_larger_presets(name, emb, layers, heads):
    cfg = GPTConfig.preset(name)
    assert (cfg.emb_dim, cfg.n_layers, cfg.n_heads) == (emb, layers, heads)


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"emb_dim": 770}, "emb_dim"),
        ({"n_heads": 0}, "n_heads"),
        ({"vocab_size": 0}, "vocab_size"),
        ({"context_length": -1}, "context_length"),
        ({"n_layers": 0}, "n_layers"),
        ({"emb_dim": 0}, "emb_dim"),
        ({"drop_rate": 1.0}, "drop_rate"),
        ({"drop_rate": -0.1}, "drop_rate"),
        ({"qkv_bias": "yes"}, "qkv_bias"),
    ],
)
def test_invalid_values_name_the_field(changes, field):
    with pytest.raises(ValueError, match=field):
        GPTConfig(**changes)


def test_unknown_preset_lists_the_known_ones():
    with pytest.raises(ValueError, match="gpt2-small"):
        GPTConfig.preset("gpt5")


def test_dict_round_trip():
    cfg = GPTConfig.preset("tiny")
    assert GPTConfig.from_dict(cfg.to_dict()) == cfg
