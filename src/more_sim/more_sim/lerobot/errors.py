"""The one error type of the LeRobot converters."""

from __future__ import annotations


class LeRobotError(ValueError):
    """Input that cannot be converted; the message is one line naming the file, feature or episode."""

    def __init__(self, message: str) -> None:
        super().__init__(" ".join(str(message).split()))  # one line, whatever a library put in it
