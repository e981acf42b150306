"""LeRobotDataset v3.0 export/import: exact round trip, what a LeRobot reader relies on, others' data, bad input.

lerobot itself cannot be installed next to this project's torch, so these tests check the files the way
its reader uses them (LeRobotDatasetMetadata and LeRobotDataset.__getitem__ in lerobot's
src/lerobot/datasets/): info.json keys and types, the chunk/file layout, the Parquet column types,
dataset_from/to_index against the rows, tasks looked up by position, frames found at
from_timestamp + timestamp within 1e-4 s, and stats recomputed from the data.
"""

import io
import json
import shutil

import av
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from PIL import Image

from more_common.action_contract import ACTION_NAMES
from more_common.dataset import DatasetWriter, Episode, EpisodeDataset
from more_sim.cli import main
from more_sim.config import SimConfig
from more_sim.generate import generate
from more_sim.lerobot import LeRobotError, VideoSettings, export_lerobot, import_lerobot

CFG = SimConfig(image_height=32, image_width=40)
CAM = "observation.images.front"
FPS = 5  # SimConfig's decision_hz
# Measured on these frames (libx264, yuv444p, crf 0): mean 0.41, max 2 grey levels (RGB <-> YUV rounding).
MAX_ERR, MEAN_ERR = 3, 1.0


@pytest.fixture(scope="module")
def sim_dataset(tmp_path_factory):
    out = tmp_path_factory.mktemp("sim") / "ds"
    generate(
        out,
        tasks=["go_to", "crawl", "unload"],
        episodes=4,
        suboptimal_fraction=0.5,
        workers=1,
        seed=3,
        config=CFG,
        episodes_per_shard=2,
        progress=False,
    )
    return out


@pytest.fixture(scope="module")
def episodes(sim_dataset):
    eps = list(EpisodeDataset(sim_dataset).iter_episodes())
    assert {ep.success for ep in eps} == {True, False} and {ep.expert for ep in eps} == {True, False}
    return eps


@pytest.fixture(scope="module")
def exported(sim_dataset, tmp_path_factory):
    out = tmp_path_factory.mktemp("le") / "le"
    summary = export_lerobot(sim_dataset, out)
    return out, summary


def _frames_error(a, b):
    d = np.abs(a.astype(np.int64) - b.astype(np.int64))
    return d.mean(), d.max()


def _decode_all(path):
    with av.open(str(path)) as c:
        s = c.streams.video[0]
        return [(float(f.pts * f.time_base), f.to_ndarray(format="rgb24")) for f in c.decode(s)], float(s.average_rate)


# -- round trip -----------------------------------------------------------------------------------


def test_round_trip_is_exact_but_for_codec_tolerance(sim_dataset, episodes, exported, tmp_path):
    src, summary = exported
    assert summary["episodes"] == len(episodes) and summary["frames"] == sum(ep.length for ep in episodes)
    result = import_lerobot(src, tmp_path / "back")
    assert result["episodes"] == len(episodes) and result["ignored_features"] == []
    back = list(EpisodeDataset(tmp_path / "back").iter_episodes())
    assert len(back) == len(episodes)
    for ep, b in zip(episodes, back, strict=True):
        np.testing.assert_array_equal(b.actions, ep.actions)
        np.testing.assert_array_equal(b.rewards, ep.rewards)
        np.testing.assert_array_equal(b.dones, ep.dones)
        np.testing.assert_array_equal(b.extras["state"], ep.extras["state"])
        assert b.header() == ep.header()  # instruction, task, split, success, expert, terminated, id, meta
        mean, worst = _frames_error(b.images, ep.images)
        assert mean <= MEAN_ERR and worst <= MAX_ERR, (mean, worst)
    assert EpisodeDataset(tmp_path / "back").meta == EpisodeDataset(sim_dataset).meta


def test_cli_round_trip(sim_dataset, episodes, tmp_path, capsys):
    assert main(["lerobot-export", str(sim_dataset), str(tmp_path / "le")]) == 0
    assert json.loads(capsys.readouterr().out)["episodes"] == len(episodes)
    assert main(["lerobot-import", str(tmp_path / "le"), str(tmp_path / "back")]) == 0
    assert json.loads(capsys.readouterr().out)["transitions"] == sum(ep.length for ep in episodes)
    back = list(EpisodeDataset(tmp_path / "back").iter_episodes())
    assert [b.instruction for b in back] == [ep.instruction for ep in episodes]
    # OUT exists now: replaced only with --overwrite
    assert main(["lerobot-export", str(sim_dataset), str(tmp_path / "le"), "--overwrite"]) == 0


# -- what a LeRobot reader relies on ---------------------------------------------------------------


def test_layout_and_info_json(exported, episodes):
    root, _ = exported
    files = sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())
    assert files == [
        "data/chunk-000/file-000.parquet",
        "meta/episodes/chunk-000/file-000.parquet",
        "meta/info.json",
        "meta/more.json",
        "meta/stats.json",
        "meta/tasks.parquet",
        f"videos/{CAM}/chunk-000/file-000.mp4",
    ]
    info = json.loads((root / "meta/info.json").read_text())
    n = sum(ep.length for ep in episodes)
    expected_types = {
        "codebase_version": str,
        "robot_type": str,
        "total_episodes": int,
        "total_frames": int,
        "total_tasks": int,
        "chunks_size": int,
        "data_files_size_in_mb": int,
        "video_files_size_in_mb": int,
        "fps": int,
        "splits": dict,
        "data_path": str,
        "video_path": str,
        "features": dict,
    }
    assert {k: type(v) for k, v in info.items()} == expected_types
    assert info["codebase_version"] == "v3.0" and info["fps"] == FPS
    assert (info["total_episodes"], info["total_frames"]) == (len(episodes), n)
    assert info["total_tasks"] == len({ep.instruction for ep in episodes})
    assert info["splits"] == {"train": f"0:{len(episodes)}"}
    assert info["data_path"] == "data/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet"
    assert info["video_path"] == "videos/{video_key}/chunk-{chunk_index:03d}/file-{file_index:03d}.mp4"
    assert (root / info["data_path"].format(chunk_index=0, file_index=0)).is_file()
    assert (root / info["video_path"].format(video_key=CAM, chunk_index=0, file_index=0)).is_file()
    features = info["features"]
    for key, ft in features.items():
        assert set(ft) >= {"dtype", "shape", "names"} and isinstance(ft["shape"], list), key
        assert "/" not in key
    # LeRobot's DEFAULT_FEATURES
    for key, dtype in [("timestamp", "float32"), ("frame_index", "int64"), ("episode_index", "int64")]:
        assert features[key] == {"dtype": dtype, "shape": [1], "names": None}
    assert features["index"]["dtype"] == features["task_index"]["dtype"] == "int64"
    assert features["action"] == {"dtype": "float32", "shape": [12], "names": list(ACTION_NAMES)}
    assert features["next.reward"]["dtype"] == "float32" and features["next.done"]["dtype"] == "bool"
    assert features["observation.state"]["names"] == ["x", "y", "yaw", "vx", "vy", "wz", "body_height", "pitch"]
    cam = features[CAM]
    assert cam["dtype"] == "video" and cam["shape"] == [32, 40, 3] and cam["names"] == ["height", "width", "channels"]
    keys = ("video.height", "video.width", "video.codec", "video.pix_fmt", "video.fps")
    assert {k: cam["info"][k] for k in keys} == {
        "video.height": 32,
        "video.width": 40,
        "video.codec": "h264",
        "video.pix_fmt": "yuv444p",
        "video.fps": FPS,
    }
    assert cam["info"]["video.channels"] == 3 and cam["info"]["has_audio"] is False


def test_parquet_column_types(exported, episodes):
    root, _ = exported
    info = json.loads((root / "meta/info.json").read_text())
    data = pq.ParquetFile(root / "data/chunk-000/file-000.parquet")
    schema = data.schema_arrow
    # get_hf_features_from_features: shape [1] -> Value(dtype), shape [d] -> Sequence(length=d); videos absent
    assert set(schema.names) == {k for k, ft in info["features"].items() if ft["dtype"] != "video"}
    assert schema.field("action").type == pa.list_(pa.float32(), 12)
    assert schema.field("observation.state").type == pa.list_(pa.float32(), 8)
    assert schema.field("next.reward").type == pa.float32() and schema.field("timestamp").type == pa.float32()
    assert schema.field("next.done").type == pa.bool_() and schema.field("next.success").type == pa.bool_()
    for key in ("frame_index", "episode_index", "index", "task_index"):
        assert schema.field(key).type == pa.int64()
    assert data.metadata.num_row_groups == len(episodes)  # one row group per episode, as LeRobot writes
    ep_schema = pq.read_schema(root / "meta/episodes/chunk-000/file-000.parquet")
    expected = {
        "episode_index": pa.int64(),
        "tasks": pa.list_(pa.string()),
        "length": pa.int64(),
        "data/chunk_index": pa.int64(),
        "data/file_index": pa.int64(),
        "dataset_from_index": pa.int64(),
        "dataset_to_index": pa.int64(),
        f"videos/{CAM}/chunk_index": pa.int64(),
        f"videos/{CAM}/file_index": pa.int64(),
        f"videos/{CAM}/from_timestamp": pa.float64(),
        f"videos/{CAM}/to_timestamp": pa.float64(),
        "meta/episodes/chunk_index": pa.int64(),
        "meta/episodes/file_index": pa.int64(),
        "stats/action/mean": pa.list_(pa.float64()),
        "stats/action/count": pa.list_(pa.int64()),
        f"stats/{CAM}/mean": pa.list_(pa.list_(pa.list_(pa.float64()))),
        "more/success": pa.bool_(),
        "more/meta": pa.string(),
    }
    assert {k: ep_schema.field(k).type for k in expected} == expected


def test_index_ranges_and_frames_where_lerobot_looks(exported, episodes):
    """LeRobotDataset.__getitem__: row -> its episode's range, the task by position, the frame by time."""
    root, _ = exported
    info = json.loads((root / "meta/info.json").read_text())
    rows = pa.concat_tables(pq.read_table(p) for p in sorted((root / "data").glob("*/*.parquet"))).to_pylist()
    meta = sorted(
        pq.read_table(root / "meta/episodes/chunk-000/file-000.parquet").to_pylist(), key=lambda r: r["episode_index"]
    )
    tasks = pq.read_table(root / "meta/tasks.parquet").to_pylist()
    assert [t["task_index"] for t in tasks] == list(range(len(tasks)))  # LeRobot: tasks.iloc[task_index]
    assert [r["index"] for r in rows] == list(range(len(rows)))
    frames, average_fps = _decode_all(root / f"videos/{CAM}/chunk-000/file-000.mp4")
    assert average_fps == FPS and len(frames) == len(rows)
    start = 0
    for e, (ep, m) in enumerate(zip(episodes, meta, strict=True)):
        n = ep.length
        assert (m["episode_index"], m["length"], m["tasks"]) == (e, n, [ep.instruction])
        assert (m["dataset_from_index"], m["dataset_to_index"]) == (start, start + n)
        assert (m["data/chunk_index"], m["data/file_index"]) == (0, 0)
        assert m[f"videos/{CAM}/from_timestamp"] == pytest.approx(start / FPS, abs=1e-12)
        assert m[f"videos/{CAM}/to_timestamp"] == pytest.approx((start + n) / FPS, abs=1e-12)
        mine = rows[start : start + n]
        assert [r["episode_index"] for r in mine] == [e] * n
        assert [r["frame_index"] for r in mine] == list(range(n))
        assert [r["timestamp"] for r in mine] == pytest.approx([k / FPS for k in range(n)], abs=1e-6)
        assert {tasks[r["task_index"]]["task"] for r in mine} == {ep.instruction}
        np.testing.assert_array_equal(np.array([r["action"] for r in mine], np.float32), ep.actions)
        assert [r["next.reward"] for r in mine] == ep.rewards.tolist()
        assert [r["next.done"] for r in mine] == ep.dones.tolist()
        for r, image in zip(mine, ep.images, strict=True):
            query = m[f"videos/{CAM}/from_timestamp"] + r["timestamp"]
            pts, decoded = frames[round(query * average_fps)]  # torchcodec's lookup
            assert abs(pts - query) < 1e-4  # LeRobotDataset's tolerance_s
            assert _frames_error(decoded, image)[1] <= MAX_ERR
        start += n
    assert info["total_frames"] == start


def test_stats_match_the_data(exported, episodes):
    root, _ = exported
    stats = json.loads((root / "meta/stats.json").read_text())
    table = pq.read_table(root / "data/chunk-000/file-000.parquet")
    actions = np.array(table.column("action").to_pylist(), np.float64)
    assert stats["action"]["count"] == [len(actions)]
    for name, fn in [("min", np.min), ("max", np.max), ("mean", np.mean), ("std", np.std)]:
        np.testing.assert_allclose(stats["action"][name], fn(actions, axis=0), rtol=1e-9, atol=1e-12)
    for name, q in [("q01", 0.01), ("q10", 0.1), ("q50", 0.5), ("q90", 0.9), ("q99", 0.99)]:
        np.testing.assert_allclose(stats["action"][name], np.quantile(actions, q, axis=0), rtol=1e-9, atol=1e-12)
    reward = np.array(table.column("next.reward").to_pylist())
    assert stats["next.reward"]["mean"] == pytest.approx([reward.mean()]) and stats["next.reward"]["max"] == [1.0]
    # images: per channel over every pixel of the original frames, in [0, 1], shape (3, 1, 1)
    pixels = np.concatenate([ep.images for ep in episodes]).reshape(-1, 3).astype(np.float64) / 255.0
    image = {k: np.array(v) for k, v in stats[CAM].items()}
    assert image["mean"].shape == (3, 1, 1) and image["count"].tolist() == [len(actions)]
    np.testing.assert_allclose(image["mean"].ravel(), pixels.mean(axis=0), rtol=1e-9)
    np.testing.assert_allclose(image["std"].ravel(), pixels.std(axis=0), rtol=1e-9)
    np.testing.assert_allclose(image["min"].ravel(), pixels.min(axis=0))
    np.testing.assert_allclose(image["q90"].ravel(), np.quantile(pixels, 0.9, axis=0), rtol=1e-9)
    np.testing.assert_allclose(image["q01"].ravel(), np.quantile(pixels, 0.01, axis=0), rtol=1e-9)
    # per-episode stats in the episodes metadata
    meta = pq.read_table(root / "meta/episodes/chunk-000/file-000.parquet").to_pylist()
    for ep, m in zip(episodes, meta, strict=True):
        np.testing.assert_allclose(m["stats/action/mean"], ep.actions.astype(np.float64).mean(axis=0), rtol=1e-9)
        np.testing.assert_allclose(m["stats/observation.state/max"], ep.extras["state"].max(axis=0))
        assert m["stats/action/count"] == [ep.length]
        own = ep.images.reshape(-1, 3).astype(np.float64) / 255.0
        np.testing.assert_allclose(np.array(m[f"stats/{CAM}/q50"]).ravel(), np.median(own, axis=0), rtol=1e-9)


def test_tasks_parquet_reads_as_pandas_writes_it(exported, episodes):
    root, _ = exported
    table = pq.read_table(root / "meta/tasks.parquet")
    pandas_meta = json.loads(table.schema.metadata[b"pandas"])
    assert pandas_meta["index_columns"] == ["task"]  # pd.read_parquet gives the task strings as the index
    assert table.column("task").to_pylist() == list(dict.fromkeys(ep.instruction for ep in episodes))


def test_several_files_when_the_size_limits_are_small(sim_dataset, episodes, tmp_path):
    summary = export_lerobot(sim_dataset, tmp_path / "le", data_file_mb=0.001, video_file_mb=0.001)
    root = tmp_path / "le"
    assert summary["data_files"] == summary["video_files"] == len(episodes)  # ~1 kB each: one episode per file
    meta = sorted(
        pq.read_table(root / "meta/episodes/chunk-000/file-000.parquet").to_pylist(), key=lambda r: r["episode_index"]
    )
    assert [(m["data/chunk_index"], m["data/file_index"]) for m in meta] == [(0, k) for k in range(len(episodes))]
    assert [m[f"videos/{CAM}/from_timestamp"] for m in meta] == [0.0] * len(episodes)
    for m in meta:
        path = root / f"data/chunk-000/file-{m['data/file_index']:03d}.parquet"
        assert pq.read_table(path).column("index").to_pylist() == list(
            range(m["dataset_from_index"], m["dataset_to_index"])
        )
    import_lerobot(root, tmp_path / "back")
    back = list(EpisodeDataset(tmp_path / "back").iter_episodes())
    for ep, b in zip(episodes, back, strict=True):
        np.testing.assert_array_equal(b.actions, ep.actions)
        assert _frames_error(b.images, ep.images)[1] <= MAX_ERR


def test_lerobots_default_codec_av1_yuv420p(sim_dataset, episodes, tmp_path):
    """libsvtav1 at crf 30 (LeRobot's default): readable back, actions exact, frames within its tolerance."""
    export_lerobot(sim_dataset, tmp_path / "le", video=VideoSettings("libsvtav1", "yuv420p", crf=30))
    info = json.loads((tmp_path / "le/meta/info.json").read_text())
    assert (info["features"][CAM]["info"]["video.codec"], info["features"][CAM]["info"]["video.pix_fmt"]) == (
        "av1",
        "yuv420p",
    )
    import_lerobot(tmp_path / "le", tmp_path / "back")
    back = list(EpisodeDataset(tmp_path / "back").iter_episodes())
    means = []
    for ep, b in zip(episodes, back, strict=True):
        np.testing.assert_array_equal(b.actions, ep.actions)
        means.append(_frames_error(b.images, ep.images)[0])
    assert max(means) <= 4.0, means  # measured 2.8 (4:2:0 chroma on sharp colour edges: up to ~140 per pixel)


def test_extras_of_every_shape_and_odd_image_sizes_round_trip(tmp_path):
    rng = np.random.default_rng(3)
    eps = [
        Episode(
            images=rng.integers(0, 256, (n, 5, 7, 3), dtype=np.uint8),
            actions=rng.normal(size=(n, 12)).astype(np.float32),
            instruction="walk",
            task="go_to",
            success=bool(n % 2),
            expert=True,
            terminated=False,
            extras={"scalar": rng.normal(size=n), "one": rng.normal(size=(n, 1)), "vec": rng.normal(size=(n, 3))},
        )
        for n in (1, 4)
    ]
    with DatasetWriter(tmp_path / "ds") as w:
        for ep in eps:
            w.add(ep)
    export_lerobot(tmp_path / "ds", tmp_path / "le")
    schema = pq.read_schema(tmp_path / "le/data/chunk-000/file-000.parquet")
    assert schema.field("observation.scalar").type == schema.field("observation.one").type == pa.float32()
    assert schema.field("observation.vec").type == pa.list_(pa.float32(), 3)
    import_lerobot(tmp_path / "le", tmp_path / "back")
    for ep, b in zip(eps, EpisodeDataset(tmp_path / "back").iter_episodes(), strict=True):
        assert {k: v.shape for k, v in b.extras.items()} == {k: v.shape for k, v in ep.extras.items()}
        for k in ep.extras:
            np.testing.assert_array_equal(b.extras[k], ep.extras[k])
        assert b.header() == ep.header() and _frames_error(b.images, ep.images)[1] <= MAX_ERR


# -- others' datasets ----------------------------------------------------------------------------


def _png(image):
    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format="PNG")
    return buf.getvalue()


def _foreign(root, *, action_names=None, action_shape=12, image_shape=(3, 6, 8), extra_camera=False, rewards=True):
    """A v3.0 dataset as others write it: PNG frames in Parquet, CHW shape, unnamed pandas task index,
    variable-length lists, a 0/1 next.reward, a string feature, two data files."""
    rng = np.random.default_rng(7)
    lengths, tasks = [3, 4, 2], ["pick the cube", "push the ball"]
    _, h, w = image_shape
    truth = []
    for e, n in enumerate(lengths):
        truth.append(
            {
                "images": rng.integers(0, 256, (n, h, w, 3), dtype=np.uint8),
                "actions": rng.normal(size=(n, action_shape)).astype(np.float32),
                "state": rng.normal(size=(n, 5)).astype(np.float32),
                "task": e % 2,
                "success": e != 1,
            }
        )
    features = {
        "observation.image": {"dtype": "image", "shape": list(image_shape), "names": ["channels", "height", "width"]},
        "observation.state": {"dtype": "float32", "shape": [5], "names": {"motors": list("abcde")}},
        "action": {"dtype": "float32", "shape": [action_shape], "names": action_names},
        "language": {"dtype": "string", "shape": [1], "names": None},
        "timestamp": {"dtype": "float32", "shape": [1], "names": None},
        "frame_index": {"dtype": "int64", "shape": [1], "names": None},
        "episode_index": {"dtype": "int64", "shape": [1], "names": None},
        "index": {"dtype": "int64", "shape": [1], "names": None},
        "task_index": {"dtype": "int64", "shape": [1], "names": None},
    }
    if rewards:
        features["next.reward"] = {"dtype": "float32", "shape": [1], "names": None}
    if extra_camera:
        features["observation.image2"] = dict(features["observation.image"])
    info = {
        "codebase_version": "v3.0",
        "robot_type": "so100",
        "total_episodes": 3,
        "total_frames": sum(lengths),
        "total_tasks": 2,
        "chunks_size": 1000,
        "data_files_size_in_mb": 100,
        "video_files_size_in_mb": 200,
        "fps": 10,
        "splits": {"train": "0:3"},
        "data_path": "data/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet",
        "video_path": None,
        "features": features,
    }
    (root / "meta/episodes/chunk-000").mkdir(parents=True)
    (root / "data/chunk-000").mkdir(parents=True)
    (root / "meta/info.json").write_text(json.dumps(info))
    image_type = pa.struct([("bytes", pa.binary()), ("path", pa.string())])
    episodes_rows, start = [], 0
    for file_index, group in enumerate([[0, 1], [2]]):
        cols = {k: [] for k in ("image", "state", "action", "reward", "ts", "fi", "ei", "ix", "ti")}
        for e in group:
            t, n = truth[e], lengths[e]
            cols["image"] += [{"bytes": _png(im), "path": None} for im in t["images"]]
            cols["state"] += t["state"].tolist()
            cols["action"] += t["actions"].tolist()
            cols["reward"] += [0.0] * (n - 1) + [1.0 if t["success"] else 0.0]
            cols["ts"] += [k / 10 for k in range(n)]
            cols["fi"] += list(range(n))
            cols["ei"] += [e] * n
            cols["ix"] += list(range(start, start + n))
            cols["ti"] += [t["task"]] * n
            episodes_rows.append(
                {
                    "episode_index": e,
                    "tasks": [tasks[t["task"]]],
                    "length": n,
                    "data/chunk_index": 0,
                    "data/file_index": file_index,
                    "dataset_from_index": start,
                    "dataset_to_index": start + n,
                    "meta/episodes/chunk_index": 0,
                    "meta/episodes/file_index": 0,
                }
            )
            start += n
        table = {
            "observation.image": pa.array(cols["image"], image_type),
            "observation.state": pa.array(cols["state"], pa.list_(pa.float32())),
            "action": pa.array(cols["action"], pa.list_(pa.float32(), action_shape)),
            "language": pa.array(["hello"] * len(cols["fi"])),
            "timestamp": pa.array(cols["ts"], pa.float32()),
            "frame_index": pa.array(cols["fi"], pa.int64()),
            "episode_index": pa.array(cols["ei"], pa.int64()),
            "index": pa.array(cols["ix"], pa.int64()),
            "task_index": pa.array(cols["ti"], pa.int64()),
        }
        if rewards:
            table["next.reward"] = pa.array(cols["reward"], pa.float32())
        if extra_camera:
            table["observation.image2"] = table["observation.image"]
        pq.write_table(pa.table(table), root / f"data/chunk-000/file-{file_index:03d}.parquet")
    pq.write_table(pa.Table.from_pylist(episodes_rows), root / "meta/episodes/chunk-000/file-000.parquet")
    pandas_meta = {"index_columns": ["__index_level_0__"], "columns": []}  # what pandas writes for an unnamed index
    tasks_table = pa.table({"task_index": [0, 1], "__index_level_0__": pa.array(tasks, pa.large_string())})
    tasks_table = tasks_table.replace_schema_metadata({b"pandas": json.dumps(pandas_meta)})
    pq.write_table(tasks_table, root / "meta/tasks.parquet")
    return truth, tasks


def test_import_of_a_dataset_written_elsewhere(tmp_path):
    truth, tasks = _foreign(tmp_path / "src")
    summary = import_lerobot(tmp_path / "src", tmp_path / "out", task="pick")
    assert summary["camera"] == "observation.image" and summary["extras"] == ["state"]
    assert summary["ignored_features"] == ["language"]
    ds = EpisodeDataset(tmp_path / "out")
    assert ds.meta["robot_type"] == "so100" and ds.meta["fps"] == 10
    back = list(ds.iter_episodes())
    assert len(back) == len(truth)
    for e, (t, b) in enumerate(zip(truth, back, strict=True)):
        np.testing.assert_array_equal(b.images, t["images"])  # PNG: lossless
        np.testing.assert_array_equal(b.actions, t["actions"])
        np.testing.assert_array_equal(b.extras["state"], t["state"])
        assert (b.instruction, b.task, b.success, b.expert) == (tasks[t["task"]], "pick", t["success"], t["success"])
        assert b.episode_id == f"lerobot-{e}" and b.split == "id" and b.terminated
        np.testing.assert_array_equal(b.rewards, [0.0] * (len(t["actions"]) - 1) + [float(t["success"])])


# -- bad input -----------------------------------------------------------------------------------


def _edit_info(root, change):
    info = json.loads((root / "meta/info.json").read_text())
    change(info)
    (root / "meta/info.json").write_text(json.dumps(info))


def _run_bad(argv, out, capsys, needle):
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "\n" not in err and "Traceback" not in err, err
    assert needle in err, err
    assert not out.exists()
    assert not [p for p in out.parent.iterdir() if p.name.startswith(f".{out.name}.")]  # no staging left


@pytest.mark.parametrize(
    ("case", "needle"),
    [
        ("no_info", "meta/info.json not found"),
        ("v21", "codebase_version 'v2.1'"),
        ("no_action", "feature 'action' missing"),
        ("action_shape", "feature 'action' has shape [7]"),
        ("action_names", "feature 'action' names its dims"),
        ("no_camera", "no camera feature"),
        ("gray_camera", "has 1 channels"),
        ("missing_video", "file-000.mp4 not found"),
        ("short_episode", "data rows, the episodes metadata says length"),
        ("several_cameras", "several camera features"),
        ("no_label", "pass --success true|false"),
        # info.json's path templates decide what is opened: only their own fields, only inside the dataset
        ("data_path_escapes", "data_path '../elsewhere/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet' must"),
        ("data_path_absolute", "must be a path inside the dataset"),
        ("data_path_field", "data_path 'data/{nope}.parquet' names ['nope']"),
        ("video_path_escapes", "video_path '../../{video_key}.mp4' must be a path inside the dataset"),
    ],
)
def test_bad_lerobot_input_is_rejected_by_name(case, needle, exported, tmp_path, capsys):
    src = tmp_path / "src"
    if case in ("several_cameras", "no_label"):
        _foreign(src, extra_camera=case == "several_cameras", rewards=case != "no_label")
    else:
        shutil.copytree(exported[0], src)
    edits = {
        "no_info": lambda: (src / "meta/info.json").unlink(),
        "v21": lambda: _edit_info(src, lambda i: i.update(codebase_version="v2.1")),
        "no_action": lambda: _edit_info(src, lambda i: i["features"].pop("action")),
        "action_shape": lambda: _edit_info(src, lambda i: i["features"]["action"].update(shape=[7])),
        "action_names": lambda: _edit_info(src, lambda i: i["features"]["action"]["names"].reverse()),
        "no_camera": lambda: _edit_info(src, lambda i: i["features"].pop(CAM)),
        "gray_camera": lambda: _edit_info(src, lambda i: i["features"][CAM].update(shape=[32, 40, 1])),
        "missing_video": lambda: (src / f"videos/{CAM}/chunk-000/file-000.mp4").unlink(),
        "short_episode": lambda: _shorten_first_episode(src),
        "data_path_escapes": lambda: _edit_info(
            src, lambda i: i.update(data_path="../elsewhere/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet")
        ),
        "data_path_absolute": lambda: _edit_info(
            src,
            lambda i: i.update(
                data_path=str(exported[0] / "data/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet")
            ),
        ),
        "data_path_field": lambda: _edit_info(src, lambda i: i.update(data_path="data/{nope}.parquet")),
        "video_path_escapes": lambda: _edit_info(src, lambda i: i.update(video_path="../../{video_key}.mp4")),
    }
    if case in edits:
        edits[case]()
    _run_bad(["lerobot-import", str(src), str(tmp_path / "out")], tmp_path / "out", capsys, needle)


def _shorten_first_episode(root):
    path = root / "meta/episodes/chunk-000/file-000.parquet"
    table = pq.read_table(path)
    lengths = table.column("length").to_pylist()
    lengths[0] += 1
    pq.write_table(table.set_column(table.schema.get_field_index("length"), "length", pa.array(lengths)), path)


def test_import_with_a_label_and_the_other_camera(tmp_path):
    _foreign(tmp_path / "src", extra_camera=True, rewards=False)
    summary = import_lerobot(tmp_path / "src", tmp_path / "out", camera="observation.image2", success=False)
    assert summary["camera"] == "observation.image2" and summary["successes"] == 0


def _tiny_dataset(root, height, width, decision_hz=5.0):
    ep = Episode(
        images=np.zeros((2, height, width, 3), np.uint8),
        actions=np.zeros((2, 12), np.float32),
        instruction="stand",
        task="go_to",
        success=False,
        expert=False,
    )
    with DatasetWriter(root, meta={"config": {"decision_hz": decision_hz}}) as w:
        w.add(ep)


@pytest.mark.parametrize(
    ("case", "extra", "needle"),
    [
        ("missing", [], "index.json not found"),
        ("odd_yuv420", ["--pix-fmt", "yuv420p"], "yuv420p needs an even height and width"),
        ("av1_444", ["--vcodec", "libsvtav1"], "does not work with libsvtav1"),
        ("fps", [], "decision_hz 2.5 is not a whole number"),
        ("exists", [], "already exists; pass --overwrite"),
        ("not_lerobot", ["--overwrite"], "is not a LeRobot dataset; refusing to replace it"),
    ],
)
def test_bad_export_input_is_rejected_by_name(case, extra, needle, tmp_path, capsys):
    src = tmp_path / "ds"
    if case != "missing":
        _tiny_dataset(src, 5, 7, decision_hz=2.5 if case == "fps" else 5.0)
    out = tmp_path / "sub" / "le"
    if case in ("exists", "not_lerobot"):
        out.mkdir(parents=True)
        (out / "precious.txt").write_text("keep me")
    argv = ["lerobot-export", str(src), str(out), *extra]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "\n" not in err and needle in err, err
    if case in ("exists", "not_lerobot"):
        assert (out / "precious.txt").read_text() == "keep me"
        assert sorted(p.name for p in out.parent.iterdir()) == ["le"]
    else:
        assert not out.exists()


def test_settings_reject_bad_values():
    with pytest.raises(LeRobotError, match="crf 99"):
        VideoSettings(crf=99)
    with pytest.raises(LeRobotError, match="vcodec 'mpeg4'"):
        VideoSettings(vcodec="mpeg4")


def test_import_from_a_hub_cache_snapshot_whose_files_are_symlinks(exported, tmp_path):
    """huggingface_hub's cache: snapshots/<rev>/<file> -> ../../blobs/<sha>. The path check is lexical (inside the
    snapshot), so links out to the blobs are fine, while a template with '..' is still refused (above)."""
    import hashlib
    import os

    root = exported[0]
    repo = tmp_path / "datasets--me--le"
    snapshot = repo / "snapshots" / "abc123"
    for f in sorted(p for p in root.rglob("*") if p.is_file()):
        blob = repo / "blobs" / hashlib.sha256(f.read_bytes()).hexdigest()
        blob.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(f, blob)
        link = snapshot / f.relative_to(root)
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(os.path.relpath(blob, link.parent))
    direct = import_lerobot(root, tmp_path / "direct")
    linked = import_lerobot(snapshot, tmp_path / "linked")
    assert linked["episodes"] == direct["episodes"] > 0 and linked["transitions"] == direct["transitions"]
