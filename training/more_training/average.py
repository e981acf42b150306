"""`more-train average --out DIR CKPT CKPT [...]`: the weighted mean of checkpoints' weights as one checkpoint.

A "model soup" (Wortsman et al. 2022) of runs fine-tuned from one starting point, or the tail of one run's
checkpoints: no training, and often less dependent on the training seed than any one run. What is averaged: every
tensor a checkpoint holds (the adapters, and a tiny backbone's own weights); a Fuyu checkpoint's frozen backbone is
referenced by path and must be the same for all (it is not loaded: the output is the averaged adapters with the
first checkpoint's JSON). The checkpoints must agree on the model, the action tokenizer and the tokenizer: a mean of
different architectures is not a model, and is refused naming the first field that differs.
Averaging is in float64, then cast to each tensor's dtype: weights (1, 0) give the first checkpoint bit for bit.
The output is written like `more-export`'s (no target, no optimizer) and replaces OUT only once complete.
"""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Sequence
from pathlib import Path

import torch

from more_common.cli import OneLineArgumentParser

from .config import CONFIG_FILE
from .export import SUMMARY_FILE, replace_directory

# what must be equal for a mean of the tensors to mean anything (more_checkpoint.json keys)
MUST_MATCH = ("model", "action_tokenizer", "tokenizer", "backbone_dir")


def parse_weights(text: str | None, count: int) -> list[float]:
    """'1,2' -> [1/3, 2/3]; None -> uniform. ValueError names the bad value."""
    if text is None:
        return [1.0 / count] * count
    try:
        raw = [float(w) for w in text.split(",")]
    except ValueError as err:
        raise ValueError(f"--weights {text!r}: not comma-separated numbers") from err
    if len(raw) != count:
        raise ValueError(f"--weights {text!r}: {len(raw)} weights for {count} checkpoints")
    if any(not (w >= 0.0) or w == float("inf") for w in raw) or not (0.0 < sum(raw) < math.inf):
        raise ValueError(f"--weights {text!r}: weights must be finite, >= 0, not all 0, with a finite sum")
    total = sum(raw)
    return [w / total for w in raw]


def average_weights(checkpoints: Sequence[str | Path], weights: Sequence[float]) -> dict[str, torch.Tensor]:
    """{state_dict name: sum_i weights[i] * tensor_i} over the checkpoints' tensors (CPU, their dtype)."""
    from more_model.checkpoint import read_weights
    from more_model.checkpoint_meta import CheckpointError, read_meta

    assert len(checkpoints) == len(weights) and len(checkpoints) >= 2
    first_meta = read_meta(checkpoints[0])
    total: dict[str, torch.Tensor] = {}
    dtypes: dict[str, torch.dtype] = {}
    for path, w in zip(checkpoints, weights, strict=True):
        meta = read_meta(path)
        for key in MUST_MATCH:
            if meta.get(key) != first_meta.get(key):
                what = _first_difference(key, meta.get(key), first_meta.get(key))
                raise CheckpointError(f"{path}: its {what} differs from {checkpoints[0]}'s: they cannot be averaged")
        tensors = read_weights(path)
        if total and set(tensors) != set(total):
            odd = sorted(set(tensors) ^ set(total))
            raise CheckpointError(f"{path}: holds other tensors than {checkpoints[0]} (e.g. {odd[0]})")
        for name, t in tensors.items():
            if not t.is_floating_point() or not torch.isfinite(t).all():
                raise CheckpointError(f"{path}: {name} is not finite floating point ({t.dtype})")
            if name not in total:
                total[name], dtypes[name] = torch.zeros(t.shape, dtype=torch.float64), t.dtype
            elif t.shape != total[name].shape:
                raise CheckpointError(f"{path}: {name} has shape {tuple(t.shape)}, not {tuple(total[name].shape)}")
            total[name] += w * t.double()
    return {name: t.to(dtypes[name]) for name, t in total.items()}


def _first_difference(key: str, a: object, b: object) -> str:
    """'model.rank' for dicts that differ in their field rank; `key` otherwise."""
    if isinstance(a, dict) and isinstance(b, dict):
        field = next((k for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k)), None)
        return f"{key}.{field}" if field is not None else key
    return key


def average_checkpoints(
    checkpoints: Sequence[str | Path], out_dir: str | Path, weights: Sequence[float] | None = None
) -> Path:
    """Write the (weighted, default uniform) mean of `checkpoints` as an inference checkpoint in `out_dir`."""
    from more_model.checkpoint import ADAPTERS_FILE, load_checkpoint, save_checkpoint
    from more_model.checkpoint_meta import META_FILE, CheckpointError, read_meta
    from more_model.config import MoREConfig

    if len(checkpoints) < 2:
        raise CheckpointError(f"averaging needs at least two checkpoints, got {len(checkpoints)}")
    weights = list(weights) if weights is not None else parse_weights(None, len(checkpoints))
    mean = average_weights(checkpoints, weights)
    sources = [{"checkpoint": str(Path(c)), "weight": w} for c, w in zip(checkpoints, weights, strict=True)]
    meta = read_meta(checkpoints[0])
    tiny = MoREConfig.from_dict(meta["model"]).backbone == "tiny"  # valid: read_weights built it already
    if tiny:  # the backbone's own weights are averaged too: written through the model, as `more-export` does
        policy = load_checkpoint(checkpoints[0]).policy  # the frame the mean is written into
        state = policy.state_dict()
        unknown = sorted(set(mean) - set(state))
        if unknown:
            raise CheckpointError(f"{checkpoints[0]}: {unknown[0]} is not a tensor of the model it describes")
        with torch.no_grad():
            for name, t in mean.items():
                state[name].copy_(t)  # state_dict tensors share storage with the parameters

    def write(tmp: Path) -> None:
        if tiny:
            save_checkpoint(tmp, policy, target=None, extra={"averaged_from": sources})
        else:  # adapters only, on a backbone referenced by path: no 8B model to load for that
            from safetensors.torch import save_file

            tmp.mkdir(parents=True)
            save_file({k: t.contiguous() for k, t in mean.items()}, str(tmp / ADAPTERS_FILE))
            out_meta = {**meta, "has_target": False, "extra": {"averaged_from": sources}}
            (tmp / META_FILE).write_text(json.dumps(out_meta, indent=2))  # tmp becomes OUT only once complete
        if (Path(checkpoints[0]) / CONFIG_FILE).is_file():  # the recipe of the first run, next to the weights
            (tmp / CONFIG_FILE).write_bytes((Path(checkpoints[0]) / CONFIG_FILE).read_bytes())
        (tmp / SUMMARY_FILE).write_text(json.dumps({"averaged_from": sources}, indent=2) + "\n")

    return replace_directory(out_dir, write, inputs=checkpoints)


def main(argv: Sequence[str] | None = None) -> int:
    parser = OneLineArgumentParser(prog="more-train average", description=__doc__.splitlines()[0].split(": ", 1)[1])
    parser.add_argument("checkpoints", nargs="+", help="checkpoint directories (runs/<run>/checkpoints/step-N)")
    parser.add_argument(
        "--out",
        required=True,
        help="where the averaged checkpoint goes (a checkpoint there is replaced, other files refused)",
    )
    parser.add_argument(
        "--weights", default=None, help="comma-separated, one per checkpoint, normalised (default: equal)"
    )
    args = parser.parse_args(argv)
    from more_common.errors import one_line
    from more_model.checkpoint_meta import CheckpointError

    try:
        weights = parse_weights(args.weights, len(args.checkpoints))
        print(average_checkpoints(args.checkpoints, args.out, weights))
    except (CheckpointError, ValueError, OSError) as err:
        print(f"more-train average: {one_line(err)}", file=sys.stderr)
        return 2
    return 0
