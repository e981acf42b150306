"""The argument parser every command-line tool of the workspace uses: a bad argument is one line, not a usage block.

argparse prints its whole usage and then the error; with a dozen options the line that says what is wrong scrolls
away. Here the error is the one line `prog: error: argument --batch: must be an integer >= 1, got '0' (--help
lists the options)`, exit status 2, as every tool reports bad input. `--help` is unchanged.
"""

from __future__ import annotations

import argparse
from typing import NoReturn


class OneLineArgumentParser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {' '.join(message.split())} (--help lists the options)\n")
