"""Typed configs: nested dataclasses from dicts, errors that name the field, overrides, safe YAML."""

from dataclasses import dataclass, field
from typing import Literal

import pytest

from more_common.typed_config import ConfigError, apply_overrides, build, load_yaml, to_dict


@dataclass(frozen=True)
class Optim:
    lr: float = 1e-3
    steps: int = 10

    def __post_init__(self) -> None:
        if self.lr <= 0:
            raise ValueError(f"lr must be > 0, got {self.lr}")


@dataclass(frozen=True)
class Run:
    name: str
    objective: Literal["rl", "il"] = "rl"
    optim: Optim = field(default_factory=Optim)
    tasks: tuple[str, ...] = ("go_to",)
    note: str | None = None


def test_build_nested_and_round_trip():
    cfg = build(Run, {"name": "a", "optim": {"lr": 1, "steps": 3}, "tasks": ["crawl", "unload"]})
    assert cfg.optim == Optim(lr=1.0, steps=3)
    assert isinstance(cfg.optim.lr, float)
    assert cfg.tasks == ("crawl", "unload")
    assert build(Run, to_dict(cfg)) == cfg


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"name": "a", "optim": {"lr": "fast"}}, "optim.lr: expected float"),
        ({"name": "a", "optim": {"steps": 2.5}}, "optim.steps: expected int"),
        ({"name": "a", "optim": {"steps": True}}, "optim.steps: expected int"),
        ({"name": "a", "optim": {"momentum": 0.9}}, r"optim\.momentum"),
        ({"name": "a", "objective": "bc"}, "objective: must be one of"),
        ({"name": "a", "tasks": "go_to"}, "tasks: expected a list"),
        ({}, "missing required key.*name"),
        ({"name": "a", "optim": {"lr": -1.0}}, "lr must be > 0"),
    ],
)
def test_errors_name_the_field(data, message):
    with pytest.raises(ConfigError, match=message):
        build(Run, data)


def test_overrides_parse_yaml_scalars():
    data = apply_overrides({"name": "a"}, ["optim.lr=3e-4", "objective=il", "tasks=[crawl]"])
    cfg = build(Run, data)
    assert cfg.optim.lr == pytest.approx(3e-4)
    assert cfg.objective == "il"
    assert cfg.tasks == ("crawl",)
    with pytest.raises(ConfigError, match=r"key\.path=value"):
        apply_overrides({}, ["oops"])
    with pytest.raises(ConfigError, match=r"data\.train=\[a, b.*not valid YAML"):
        apply_overrides({}, ["data.train=[a, b"])


def test_load_yaml_is_safe(tmp_path):
    evil = tmp_path / "evil.yaml"
    evil.write_text("!!python/object/apply:os.system ['echo pwned']\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_yaml(evil)
    listy = tmp_path / "list.yaml"
    listy.write_text("- 1\n- 2\n")
    with pytest.raises(ConfigError, match="mapping"):
        load_yaml(listy)
    with pytest.raises(ConfigError, match="cannot read"):
        load_yaml(tmp_path / "missing.yaml")
