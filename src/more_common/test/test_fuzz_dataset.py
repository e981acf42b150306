"""Corrupt datasets through the reader (library level, for breadth; `more-train` runs them as a user does in
training/tests/test_fuzz_train.py): shards cut at every offset class and with flipped bytes, arrays of the wrong
dtype or shape, episode headers and index.json with wrong types. Every defect is a DatasetError whose message is
one line naming the file; nothing else escapes."""

import io
import json
import shutil

import numpy as np
import pytest

from more_common.dataset import INDEX_FILE, DatasetError, DatasetWriter, Episode, EpisodeDataset
from more_common.fuzz import flips, truncations


def _episode(i: int, length: int) -> Episode:
    rng = np.random.default_rng(i)
    return Episode(
        images=rng.integers(0, 256, (length, 6, 5, 3), dtype=np.uint8),
        actions=rng.normal(size=(length, 12)).astype(np.float32),
        instruction="go to the red ball",
        task="go_to",
        success=i % 2 == 0,
        expert=True,
        episode_id=f"ep-{i}",
        terminated=i != 1,
        extras={"state": rng.normal(size=(length, 3))},
    )


@pytest.fixture(scope="module", params=[True, False], ids=["deflated", "stored"])
def dataset(request, tmp_path_factory):
    root = tmp_path_factory.mktemp("ds") / "ds"
    with DatasetWriter(root, episodes_per_shard=2, compress=request.param) as w:
        for i in range(4):
            w.add(_episode(i, 3 + i))
    return root


def _read_all(root, verify=True):
    return [ep.episode_id for ep in EpisodeDataset(root, verify_checksums=verify).iter_episodes()]


def _named_error(root, name, verify=True, context=""):
    with pytest.raises(DatasetError) as info:
        _read_all(root, verify)
    msg = str(info.value)
    assert "\n" not in msg, f"multi-line error ({context}): {msg}"
    assert str(name) in msg, f"error does not name {name} ({context}): {msg}"
    return msg


def _copy(dataset, tmp_path):
    root = tmp_path / "copy"
    shutil.rmtree(root, ignore_errors=True)
    shutil.copytree(dataset, root)
    return root


def test_cut_shards_are_named(dataset, tmp_path):
    data = (dataset / "shard-00001.npz").read_bytes()
    for verify in (True, False):  # the checksum catches it first; without it the zip/npy parsers must
        for label, payload in truncations(data):
            root = _copy(dataset, tmp_path)
            (root / "shard-00001.npz").write_bytes(payload)
            _named_error(root, root / "shard-00001.npz", verify, label)


def test_flipped_shard_bytes(dataset, tmp_path):
    data = (dataset / "shard-00000.npz").read_bytes()
    refused = 0
    for label, payload in flips(data, range(0, len(data), max(1, len(data) // 40))):
        root = _copy(dataset, tmp_path)
        (root / "shard-00000.npz").write_bytes(payload)
        _named_error(root, root / "shard-00000.npz", True, label)  # sha256: every flip is caught
        try:  # zip CRCs catch flips in the data; one in a timestamp or padding is harmless
            _read_all(root, verify=False)
        except DatasetError as err:
            assert "\n" not in str(err) and str(root / "shard-00000.npz") in str(err), label
            refused += 1
    assert refused >= 20


def _arrays(dataset):
    with np.load(dataset / "shard-00000.npz") as npz:
        return {k: npz[k] for k in npz.files}


def _with_arrays(dataset, tmp_path, arrays, allow_pickle=False):
    root = _copy(dataset, tmp_path)
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    (root / "shard-00000.npz").write_bytes(buf.getvalue())
    return root


def _meta(headers):
    return np.frombuffer(json.dumps(headers).encode(), dtype=np.uint8)


def test_wrong_dtypes_shapes_and_headers(dataset, tmp_path):
    a = _arrays(dataset)
    n = a["actions"].shape[0]
    headers = json.loads(a["episode_meta"].tobytes())
    cases = {
        "images float": dict(images=a["images"].astype(np.float32)),
        "images without channels": dict(images=a["images"][..., 0]),
        "images one step short": dict(images=a["images"][:-1]),
        "actions 11 wide": dict(actions=a["actions"][:, :11]),
        "actions NaN": dict(actions=np.where(np.arange(n)[:, None] == 2, np.nan, a["actions"]).astype(np.float32)),
        "rewards too long": dict(rewards=np.zeros(n + 1, np.float32)),
        "dones wrong": dict(dones=np.ones(n, bool)),
        "steps_to_end 2-D": dict(steps_to_end=a["steps_to_end"][:, None]),
        "starts float": dict(episode_starts=a["episode_starts"].astype(np.float64)),
        "starts 2-D": dict(episode_starts=a["episode_starts"][None]),
        "starts past the end": dict(episode_starts=a["episode_starts"] + 1),
        "starts a scalar": dict(episode_starts=np.int64(0)),
        "meta not JSON": dict(episode_meta=np.frombuffer(b"{not json", np.uint8)),
        "meta not UTF-8": dict(episode_meta=np.frombuffer(b"\xff\xfe", np.uint8)),
        "meta float array": dict(episode_meta=a["episode_meta"].astype(np.float32)),
        "meta a mapping": dict(episode_meta=_meta({"0": headers[0]})),
        "meta one episode": dict(episode_meta=_meta(headers[:1])),
        "header a string": dict(episode_meta=_meta(["ep", headers[1]])),
        "success a string": dict(episode_meta=_meta([{**headers[0], "success": "yes"}, headers[1]])),
        "terminated a number": dict(episode_meta=_meta([{**headers[0], "terminated": 1}, headers[1]])),
        "meta a list": dict(episode_meta=_meta([{**headers[0], "meta": [1, 2]}, headers[1]])),
        "instruction a number": dict(episode_meta=_meta([{**headers[0], "instruction": 5}, headers[1]])),
        "length a string": dict(episode_meta=_meta([{**headers[0], "length": "3"}, headers[1]])),
        "length wrong": dict(episode_meta=_meta([{**headers[0], "length": 99}, headers[1]])),
        "extra one step short": {"extra/state": a["extra/state"][:-1]},
        "object array (a pickle)": dict(images=np.array([{"x": 1}] * n, dtype=object)),
    }
    for label, change in cases.items():
        arrays = {**a, **change}
        root = _with_arrays(dataset, tmp_path, arrays)
        _named_error(root, root / "shard-00000.npz", verify=False, context=label)
    root = _with_arrays(dataset, tmp_path, {k: v for k, v in a.items() if k != "dones"})
    assert "missing arrays ['dones']" in _named_error(root, "shard-00000.npz", verify=False)


def _index(dataset):
    return json.loads((dataset / INDEX_FILE).read_text())


def test_index_json_cut_flipped_and_wrong_types(dataset, tmp_path):
    data = (dataset / INDEX_FILE).read_bytes()
    for label, payload in truncations(data):
        root = _copy(dataset, tmp_path)
        (root / INDEX_FILE).write_bytes(payload)
        if payload.rstrip() == data.rstrip():
            assert len(_read_all(root)) == 4  # only the final newline cut: still the same index
            continue
        _named_error(root, root / INDEX_FILE, context=label)
    for label, payload in flips(data, range(0, len(data), 7)):
        root = _copy(dataset, tmp_path)
        (root / INDEX_FILE).write_bytes(payload)
        try:  # a flipped byte inside a free-form value (meta, a task name) leaves a valid index
            _read_all(root)
        except DatasetError as err:
            assert "\n" not in str(err), label
            assert INDEX_FILE in str(err) or ".npz" in str(err), f"{label}: {err}"
    good = _index(dataset)
    shard = good["shards"][0]
    cases = {
        "a list": [good],
        "no format": {k: v for k, v in good.items() if k != "format"},
        "version a string": {**good, "version": "2"},
        "version a bool": {**good, "version": True},
        "version 3": {**good, "version": 3},
        "action names missing": {k: v for k, v in good.items() if k != "action_names"},
        "shards a mapping": {**good, "shards": {"0": shard}},
        "shard a string": {**good, "shards": ["shard-00000.npz"]},
        "file outside": {**good, "shards": [{**shard, "file": "../outside.npz"}]},
        "file a number": {**good, "shards": [{**shard, "file": 5}]},
        "file listed twice": {**good, "shards": [shard, shard]},
        "episodes a string": {**good, "shards": [{**shard, "episodes": "2"}]},
        "episodes a bool": {**good, "shards": [{**shard, "episodes": True}]},
        "episodes a float": {**good, "shards": [{**shard, "episodes": 2.5}]},
        "episodes wrong": {**good, "shards": [{**shard, "episodes": 3}]},
        "image_shape a string": {**good, "shards": [{**shard, "image_shape": "6x5"}]},
        "tasks a list": {**good, "shards": [{**shard, "tasks": ["go_to"]}]},
        "sha256 a number": {**good, "shards": [{**shard, "sha256": 12}]},
        "meta a list": {**good, "meta": [1]},
        "missing shard file": {**good, "shards": [{**shard, "file": "shard-09999.npz"}]},
    }
    for label, index in cases.items():
        root = _copy(dataset, tmp_path)
        (root / INDEX_FILE).write_text(json.dumps(index))
        named = root / ("shard-09999.npz" if label == "missing shard file" else INDEX_FILE)
        named = root / "shard-00000.npz" if label == "episodes wrong" else named
        _named_error(root, named, context=label)
    root = _copy(dataset, tmp_path)
    (root / INDEX_FILE).unlink()
    (root / INDEX_FILE).mkdir()  # unreadable: a directory where the file should be
    _named_error(root, root / INDEX_FILE, context="a directory")
