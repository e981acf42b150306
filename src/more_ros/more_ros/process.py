"""Child processes that end with their parent (pure Python).

`die_with_parent` is a `preexec_fn` for subprocess.Popen: on Linux the kernel sends the child SIGINT when the
process that started it dies in any way (PR_SET_PDEATHSIG), so a killed supervisor or test run never leaves a
node running: a node's SIGINT is its clean exit, and the bridge damps on it.
"""

import contextlib
import ctypes
import signal

_PR_SET_PDEATHSIG = 1


def die_with_parent() -> None:  # runs in the child between fork and exec
    with contextlib.suppress(OSError):  # not Linux: the parent's own signal handling stops its children
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGINT)
