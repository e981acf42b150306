"""`more-train --config CONFIG.yaml [key.path=value ...]`: offline RL/IL training (single process or torchrun)."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

EPILOG = """examples:
  more-train --config training/configs/tiny_rl.yaml data.train=[data/sim] run.out_dir=runs/demo
  more-train --config training/configs/tiny_rl.yaml objective.kind=il          # w/o RL (Table II)
  torchrun --nproc_per_node 8 -m more_training.cli --config training/configs/fuyu8b_rl.yaml
exit status: 0 done, 2 configuration error, 1 data or training error"""


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
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

    from .config import load_config
    from .trainer import TrainingError, train

    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        cfg = load_config(args.config, args.overrides)
        if args.print_config:
            import yaml

            print(yaml.safe_dump(cfg.to_dict(), sort_keys=False))
            return 0
        last = train(cfg)
    except ConfigError as err:
        print(f"more-train: configuration error: {err}", file=sys.stderr)
        return 2
    except (DatasetError, TrainingError) as err:
        print(f"more-train: {type(err).__name__}: {err}", file=sys.stderr)
        return 1
    if last is not None:
        print(f"last checkpoint: {last}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
