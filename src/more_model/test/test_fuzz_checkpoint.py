"""Corrupt checkpoints through `load_checkpoint` (library level, for breadth; `more-sim eval --policy`, `more-export`
and `more-train init.init_from=` run them as a user does in training/tests/test_fuzz_train.py): every file cut at
the offset classes, flipped bytes, more_checkpoint.json with wrong types, safetensors headers damaged field by
field. Every defect is a CheckpointError with one line naming the file; a flipped byte inside tensor data (no
checksum in this format) may load, but never anything else escapes."""

import json
import shutil
import struct

import pytest

from more_common.fuzz import flips, offsets
from more_model.checkpoint import ADAPTERS_FILE, META_FILE, TARGET_FILE, CheckpointError, load_checkpoint
from more_model.testing import make_tiny_checkpoint


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory):
    return make_tiny_checkpoint(tmp_path_factory.mktemp("fuzz") / "ckpt", seed=3)


def _copy(ckpt, tmp_path):
    d = tmp_path / "c"
    shutil.rmtree(d, ignore_errors=True)
    shutil.copytree(ckpt, d)
    return d


def _refused(d, name, context):
    with pytest.raises(CheckpointError) as info:
        load_checkpoint(d)
    msg = str(info.value)
    assert "\n" not in msg, f"multi-line error ({context}): {msg}"
    assert str(name) in msg, f"the error does not name {name} ({context}): {msg}"


def _outcome(d, name, context):
    """Loads, or refuses with one line naming `name` (where damage can leave valid content)."""
    try:
        load_checkpoint(d)
    except CheckpointError as err:
        assert "\n" not in str(err) and str(name) in str(err), f"{context}: {err}"


def test_cut_files_are_named(ckpt, tmp_path):
    for rel in (META_FILE, ADAPTERS_FILE, TARGET_FILE, "backbone/model.safetensors", "backbone/config.json"):
        data = (ckpt / rel).read_bytes()
        cuts = [c for c in offsets(len(data)) if c in (0, 8, 9, 64) or c >= len(data) // 2]
        for cut in cuts:
            d = _copy(ckpt, tmp_path)
            (d / rel).write_bytes(data[:cut])
            name = d / "backbone" if rel.startswith("backbone/") else d / rel
            if rel == "backbone/config.json" and data[:cut].rstrip() == data.rstrip():
                continue  # only the final newline cut: the same JSON
            _refused(d, name, f"{rel} cut at {cut}")
    d = _copy(ckpt, tmp_path)
    (d / ADAPTERS_FILE).unlink()
    _refused(d, d / ADAPTERS_FILE, "adapters missing")


def test_flipped_bytes(ckpt, tmp_path):
    for rel in (META_FILE, ADAPTERS_FILE, "backbone/tokenizer.json"):
        data = (ckpt / rel).read_bytes()
        named = "backbone" if rel.startswith("backbone/") else rel
        for label, payload in flips(data, [0, 3, 8, 12, 20, 40, len(data) // 2]):
            d = _copy(ckpt, tmp_path)
            (d / rel).write_bytes(payload)
            _outcome(d, d / named, f"{rel} {label}")


def _meta(ckpt):
    return json.loads((ckpt / META_FILE).read_text())


def test_more_checkpoint_json_wrong_types(ckpt, tmp_path):
    good = _meta(ckpt)
    cases = {
        "a list": [good],
        "version a string": {**good, "version": "1"},
        "version a bool": {**good, "version": True},
        "model a list": {**good, "model": [1]},
        "model a wrong field": {**good, "model": {**good["model"], "rank": "four"}},
        "model an unknown field": {**good, "model": {**good["model"], "colour": 1}},
        "action_tokenizer a string": {**good, "action_tokenizer": "bins"},
        "bin ids too short": {**good, "action_tokenizer": {**good["action_tokenizer"], "bin_token_ids": [1, 2]}},
        "action_spec missing": {
            **good,
            "action_tokenizer": {"bin_token_ids": good["action_tokenizer"]["bin_token_ids"]},
        },
        "backbone_dir a number": {**good, "backbone_dir": 5},
        "backbone_dir elsewhere": {**good, "backbone_dir": "nowhere"},
        "has_target a string": {**good, "has_target": "yes"},
        "train_mode unknown": {**good, "train_mode": "everything"},
        "extra a list": {**good, "extra": [1]},
        "tokenizer ids changed": {**good, "tokenizer": {**good["tokenizer"], "bos_token_id": 7}},
        "missing model": {k: v for k, v in good.items() if k != "model"},
    }
    for label, meta in cases.items():
        d = _copy(ckpt, tmp_path)
        (d / META_FILE).write_text(json.dumps(meta))
        name = d / "nowhere" if label == "backbone_dir elsewhere" else d / META_FILE
        _refused(d, name, label)


def _split(path):
    data = path.read_bytes()
    (n,) = struct.unpack("<Q", data[:8])
    return json.loads(data[8 : 8 + n]), data[8 + n :]


def _join(header, body, length=None):
    raw = json.dumps(header).encode()
    return struct.pack("<Q", len(raw) if length is None else length) + raw + body


def test_safetensors_header_corruptions(ckpt, tmp_path):
    header, body = _split(ckpt / ADAPTERS_FILE)
    name = next(k for k in header if k != "__metadata__")
    entry = header[name]
    cases = {
        "length 2^63": _join(header, body, 2**63),
        "length past the end": _join(header, body, len(json.dumps(header)) + len(body) + 10),
        "length too short": _join(header, body, 10),
        "header not JSON": struct.pack("<Q", 8) + b"{{{{{{{{" + body,
        "header a list": _join([1], body),
        "unknown dtype": _join({**header, name: {**entry, "dtype": "X9"}}, body),
        "shape too big": _join({**header, name: {**entry, "shape": [10**6, 10**6]}}, body),
        "offsets past the end": _join({**header, name: {**entry, "data_offsets": [0, len(body) + 64]}}, body),
        "a tensor renamed": _join({**{k: v for k, v in header.items() if k != name}, name + "x": entry}, body),
        "a tensor dropped": _join({k: v for k, v in header.items() if k != name}, body),
        "data cut": _join(header, body[: len(body) // 2]),
    }
    for label, payload in cases.items():
        d = _copy(ckpt, tmp_path)
        (d / ADAPTERS_FILE).write_bytes(payload)
        _refused(d, d / ADAPTERS_FILE, f"{ADAPTERS_FILE}: {label}")
    # the same damage in the tiny backbone's own weight file
    rel = "backbone/model.safetensors"
    bh, bb = _split(ckpt / rel)
    bname = sorted(k for k in bh if k != "__metadata__")[0]
    renamed = {**{k: v for k, v in bh.items() if k != bname}, bname + "x": bh[bname]}
    for label, payload in {
        "length 2^63": _join(bh, bb, 2**63),
        "header a list": _join([1], bb),
        "a tensor renamed": _join(renamed, bb),  # transformers would initialise the missing one at random
    }.items():
        d = _copy(ckpt, tmp_path)
        (d / rel).write_bytes(payload)
        _refused(d, d / "backbone", f"{rel}: {label}")
