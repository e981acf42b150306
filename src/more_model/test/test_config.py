"""MoREConfig: validation names the bad field, JSON round trip, derived values."""

import json

import pytest

from more_common.typed_config import ConfigError
from more_model.config import QUART_PROMPT, MoREConfig, TinyBackboneConfig, fuyu_8b_config


def test_defaults_are_valid_and_round_trip_through_json():
    cfg = MoREConfig(layers=(2, 0), dtype="float32")
    assert cfg.layers == (0, 2)  # normalised
    again = MoREConfig.from_json(cfg.to_json())
    assert again == cfg
    assert json.loads(cfg.to_json())["tiny"]["hidden_size"] == 128


def test_fuyu_preset_is_the_papers_setting():
    cfg = fuyu_8b_config()
    assert (cfg.num_experts, cfg.top_k, cfg.rank, cfg.attn_rank) == (8, 2, 32, 32)
    assert cfg.patch_size == 30 and cfg.image_size == (240, 240)
    assert cfg.resolve_dtype() == "bfloat16"
    assert MoREConfig().resolve_dtype() == "float32"
    assert cfg.lora_scale == pytest.approx(2.0)


def test_prompt_template_is_quarts():
    assert QUART_PROMPT.format(instruction="go to the red ball") == (
        "What action should the legged robot take to go to the red ball?\n"
    )


@pytest.mark.parametrize(
    ("changes", "needle"),
    [
        ({"top_k": 9}, "top_k"),
        ({"num_experts": 0}, "num_experts"),
        ({"rank": 0}, "rank"),
        ({"attn_rank": -1}, "attn_rank"),
        ({"dropout": 1.0}, "dropout"),
        ({"alpha": 0.0}, "alpha"),
        ({"image_height": 50}, "multiples of the patch size"),
        ({"prompt_template": "no placeholder"}, "{instruction}"),
        ({"prompt_template": "{instruction} {other}"}, "does not format"),
        ({"use_moe": False}, "num_experts=1"),
        ({"layers": (1, 1)}, "layers"),
        ({"backbone": "gpt"}, "backbone"),
    ],
)
def test_invalid_values_are_rejected_by_name(changes, needle):
    with pytest.raises(ValueError, match=needle.replace("{", r"\{").replace("}", r"\}")):
        MoREConfig(**changes)


def test_dense_lora_variant_is_one_expert_without_router():
    cfg = MoREConfig(use_moe=False, num_experts=1, top_k=1)
    assert not cfg.use_moe


def test_from_dict_errors_name_the_field():
    with pytest.raises(ConfigError, match="rank"):
        MoREConfig.from_dict({"rank": "eight"})
    with pytest.raises(ConfigError, match=r"tiny\.hidden_size"):
        MoREConfig.from_dict({"tiny": {"hidden_size": 1.5}})
    with pytest.raises(ConfigError, match="unknown"):
        MoREConfig.from_dict({"experts": 4})


def test_tiny_backbone_config_checks_head_dim():
    with pytest.raises(ValueError, match="divisible by num_heads"):
        TinyBackboneConfig(hidden_size=130, num_heads=4)
    with pytest.raises(ValueError, match="divisible by 4"):
        TinyBackboneConfig(hidden_size=24, num_heads=4)


def test_adapted_layers():
    assert MoREConfig().adapted_layers(3) == (0, 1, 2)
    assert MoREConfig(layers=(1,)).adapted_layers(3) == (1,)
    with pytest.raises(ValueError, match="do not exist"):
        MoREConfig(layers=(5,)).adapted_layers(3)
