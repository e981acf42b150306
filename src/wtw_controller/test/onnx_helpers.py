"""Test helper: ONNX files of a known affine map y = x W + b, written by hand (no `onnx` package needed).

An ONNX model is a protobuf message; this writes the few fields a MatMul + Add graph needs (field numbers from
onnx.proto: ModelProto ir_version 1, graph 7, opset_import 8; GraphProto node 1, name 2, initializer 5,
input 11, output 12; NodeProto input 1, output 2, op_type 4; TensorProto dims 1, data_type 2, name 8,
raw_data 9; ValueInfoProto name 1, type 2; TypeProto tensor_type 1 -> elem_type 1, shape 2 -> dim 1 ->
dim_value 1; OperatorSetIdProto domain 1, version 2).
"""

from pathlib import Path

import numpy as np

FLOAT = 1


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _field(number: int, payload: bytes | int | str) -> bytes:
    if isinstance(payload, int):
        return _varint(number << 3) + _varint(payload)
    data = payload.encode() if isinstance(payload, str) else payload
    return _varint(number << 3 | 2) + _varint(len(data)) + data


def _tensor(name: str, array: np.ndarray) -> bytes:
    a = np.ascontiguousarray(array, dtype="<f4")
    return b"".join(_field(1, d) for d in a.shape) + _field(2, FLOAT) + _field(8, name) + _field(9, a.tobytes())


def _value_info(name: str, shape: tuple[int, ...]) -> bytes:
    dims = b"".join(_field(1, _field(1, d)) for d in shape)
    tensor_type = _field(1, FLOAT) + _field(2, dims)
    return _field(1, name) + _field(2, _field(1, tensor_type))


def _node(inputs: list[str], output: str, op: str) -> bytes:
    return b"".join(_field(1, i) for i in inputs) + _field(2, output) + _field(4, op)


def write_affine_onnx(path: Path, weight: np.ndarray, bias: np.ndarray) -> Path:
    """ONNX file computing obs [1, n_in] -> obs @ weight + bias [1, n_out] (input named 'obs')."""
    n_in, n_out = weight.shape
    graph = (
        _field(1, _node(["obs", "W"], "xw", "MatMul"))
        + _field(1, _node(["xw", "b"], "actions", "Add"))
        + _field(2, "affine")
        + _field(5, _tensor("W", weight))
        + _field(5, _tensor("b", bias))
        + _field(11, _value_info("obs", (1, n_in)))
        + _field(12, _value_info("actions", (1, n_out)))
    )
    model = _field(1, 8) + _field(7, graph) + _field(8, _field(1, "") + _field(2, 13))
    path.write_bytes(model)
    return path
