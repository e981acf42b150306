"""`more-train --config CONFIG.yaml [key.path=value ...]`: offline RL/IL training (single process or torchrun)."""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import sys
from collections.abc import Sequence
from pathlib import Path

from more_common.cli import OneLineArgumentParser

EPILOG = """examples:
  more-train --config training/configs/tiny_rl.yaml data.train=[data/sim] run.out_dir=runs/demo
  more-train --config training/configs/tiny_rl.yaml objective.kind=il          # w/o RL (Table II)
  torchrun --nproc_per_node 8 -m more_training.cli --config training/configs/fuyu8b_rl.yaml
  more-train ablations run --config training/configs/ablations.yaml   # Table II matrix (see --help there)
  more-train q-report --checkpoint CKPT --data data/six_a --tasks go_to  # Q of the stored vs the other bins
  more-train label-reasoning --checkpoint models/demo --data data/teleop --out data/teleop_labelled
  more-train average --out runs/soup runs/a/checkpoints/step-00003000 runs/b/checkpoints/step-00003000
exit status: 0 done; 2 bad input: a configuration error, or a dataset or checkpoint that cannot be read
(one line naming the file or field; a run directory this command created is removed again unless it holds
a checkpoint); 1 training error (e.g. a non-finite loss)"""


def error_reason(err: BaseException) -> str:
    """One line for `err`. An error raised in a DataLoader worker arrives re-wrapped with the worker's traceback
    in its message: the original error's own last line is kept."""
    from more_common.errors import one_line

    text = str(err)
    if "Original Traceback" in text:
        last = text.strip().splitlines()[-1]
        text = last.split(": ", 1)[1] if ": " in last and last.split(": ", 1)[0].endswith("Error") else last
    return one_line(text)


def _snapshot(out: Path) -> set[str] | None:
    return {p.name for p in out.iterdir()} if out.is_dir() else None


def _undo_run_dir(out: Path, before: set[str] | None) -> None:
    """Remove what a failed run wrote into `out` (the whole directory if it created it), unless a checkpoint
    was saved: that is a complete, resumable result."""
    if os.environ.get("RANK", "0") != "0" or not out.is_dir():
        return
    ckpts = out / "checkpoints"
    if ckpts.is_dir() and any(p.name.startswith("step-") for p in ckpts.iterdir()):
        return
    if before is None:
        shutil.rmtree(out, ignore_errors=True)
        return
    for p in out.iterdir():
        if p.name in before:
            continue
        if p.is_dir():
            shutil.rmtree(p, ignore_errors=True)
        else:
            p.unlink(missing_ok=True)


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["ablations"]:  # the Table II matrix (more_training.ablations); a sub-command, not a config
        from .ablations import main as ablations_main

        return ablations_main(argv[1:])
    if argv[:1] == ["q-report"]:  # what a trained Q-function prefers along stored episodes
        from .q_report import main as q_report_main

        return q_report_main(argv[1:])
    if argv[:1] == ["label-reasoning"]:  # a reasoning model's own text as the labels of data without them
        from .reasoning_labels import main as label_main

        return label_main(argv[1:])
    if argv[:1] == ["average"]:  # a model soup: the mean of checkpoints' weights
        from .average import main as average_main

        return average_main(argv[1:])
    parser = OneLineArgumentParser(
        prog="more-train",
        description="Train the MoRE policy offline (RL by default) from sharded episode datasets.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--config", default=None, help="YAML TrainConfig (see training/configs/)")
    parser.add_argument("--print-config", action="store_true", help="print the resolved config and exit")
    parser.add_argument("overrides", nargs="*", help="key.path=value overrides, e.g. optim.lr=1e-3")
    args = parser.parse_args(argv)

    from more_common.dataset import DatasetError
    from more_common.typed_config import ConfigError
    from more_model.checkpoint import CheckpointError as ModelCheckpointError

    from .checkpoint import CheckpointError as TrainCheckpointError
    from .config import load_config
    from .trainer import TrainingError, train

    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        cfg = load_config(args.config, args.overrides)
    except ConfigError as err:
        print(f"more-train: configuration error: {error_reason(err)}", file=sys.stderr)
        return 2
    if args.print_config:
        import yaml

        print(yaml.safe_dump(cfg.to_dict(), sort_keys=False))
        return 0
    out = Path(cfg.run.out_dir)
    before = _snapshot(out)
    try:
        last = train(cfg)
    except ConfigError as err:
        _undo_run_dir(out, before)
        print(f"more-train: configuration error: {error_reason(err)}", file=sys.stderr)
        return 2
    except (DatasetError, ModelCheckpointError, TrainCheckpointError) as err:
        _undo_run_dir(out, before)
        print(f"more-train: {type(err).__name__}: {error_reason(err)}", file=sys.stderr)
        return 2
    except TrainingError as err:
        print(f"more-train: {type(err).__name__}: {error_reason(err)}", file=sys.stderr)
        return 1
    if last is not None:
        print(f"last checkpoint: {last}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
