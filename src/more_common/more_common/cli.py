"""The argument parser every command-line tool of the workspace uses: a bad argument is one line, not a usage block.

argparse prints its whole usage and then the error; with a dozen options the line that says what is wrong scrolls
away. Here the error is the one line `prog: error: argument --batch: must be an integer >= 1, got '0' (--help
lists the options)`, exit status 2, as every tool reports bad input. `--help` is unchanged.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import NoReturn


class OneLineArgumentParser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {' '.join(message.split())} (--help lists the options)\n")


def int_at_least(minimum: int, maximum: int | None = None):  # noqa: ANN201 - an argparse type
    """An argparse type: an integer >= `minimum` (and <= `maximum`); argparse names the option in its error."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = None
        if value is None or value < minimum or (maximum is not None and value > maximum):
            bound = f">= {minimum}" if maximum is None else f"in [{minimum}, {maximum}]"
            raise argparse.ArgumentTypeError(f"must be an integer {bound}, got {text!r}")
        return value

    return parse


def torch_device(text: str) -> str:
    """An argparse type: a torch device this machine has (cpu, cuda, cuda:1, mps), checked before any work."""
    if text == "cpu":  # the default: argparse applies the type to it, and a tool that needs no torch stays light
        return text
    import torch

    try:
        device = torch.device(text)
    except (RuntimeError, ValueError):
        raise argparse.ArgumentTypeError(f"not a torch device: {text!r} (e.g. cpu, cuda, cuda:0)") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise argparse.ArgumentTypeError(f"{text!r}: this machine has no CUDA device (torch {torch.__version__})")
    if device.type == "cuda" and device.index is not None and device.index >= torch.cuda.device_count():
        raise argparse.ArgumentTypeError(f"{text!r}: this machine has {torch.cuda.device_count()} CUDA device(s)")
    if device.type not in ("cpu", "cuda", "mps"):
        raise argparse.ArgumentTypeError(f"{text!r}: only cpu, cuda and mps devices are supported")
    return text


def file_in_the_way(directory: str | Path) -> Path | None:
    """The file that keeps `directory` from being one (it, or the nearest existing folder above it, is a file), or
    None: an output directory a long run will write is checked before the run."""
    for path in (Path(directory), *Path(directory).parents):
        if path.exists():
            return None if path.is_dir() else path
    return None


def task_label(text: str) -> str:
    """An argparse type: a task name a dataset accepts (more_common.dataset.task_name_error), checked before the
    conversion runs rather than after it."""
    from more_common.dataset import task_name_error

    error = task_name_error(text)
    if error:
        raise argparse.ArgumentTypeError(error)
    return text
