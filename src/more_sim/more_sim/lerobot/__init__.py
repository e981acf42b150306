"""LeRobotDataset v3.0 both ways: `more-sim lerobot-export DATASET OUT` and `more-sim lerobot-import SRC OUT`.

lerobot itself pins torch < 2.8 and cannot be installed next to this project's torch, so the format is
written and read here with pyarrow (Parquet) and PyAV (mp4), following LeRobot's own code:

- huggingface/lerobot src/lerobot/datasets/utils.py: CHUNK_FILE_PATTERN, DEFAULT_DATA_PATH, DEFAULT_VIDEO_PATH,
  DEFAULT_EPISODES_PATH, DEFAULT_TASKS_PATH, DEFAULT_FEATURES, create_empty_dataset_info (the info.json keys),
  get_hf_features_from_features (the Parquet column types), update_chunk_file_indices;
- src/lerobot/datasets/lerobot_dataset.py and dataset_metadata.py (codebase v3.0): save_episode /
  _save_episode_data / _save_episode_video (episode rows: dataset_from/to_index, data/ and videos/<key>/
  chunk and file indices, from/to_timestamp, meta/episodes/ indices, flattened stats/<feature>/<stat>),
  save_episode_tasks (tasks.parquet: a pandas frame indexed by the task string, column task_index),
  _query_videos (a frame is read at from_timestamp + timestamp, within tolerance_s = 1e-4);
- src/lerobot/datasets/video_utils.py: encode_video_frames (codecs h264/hevc/libsvtav1, options g and crf,
  yuv444p only with h264), get_video_info (the features' "info" keys), decode_video_frames_torchcodec
  (frame = round(ts * average_fps), pts checked against ts);
- src/lerobot/datasets/compute_stats.py: min/max/mean/std/count + quantiles q01/q10/q50/q90/q99 per feature,
  images per channel in [0, 1] with shape (3, 1, 1);
- src/lerobot/datasets/io_utils.py: one Parquet row group per episode, load_tasks names the index "task".

[Layout] (ROOT = the exported directory)

    ROOT/meta/info.json                                    see `info.json` below
    ROOT/meta/stats.json                                   {feature: {min, max, mean, std, count, q01..q99}}
    ROOT/meta/tasks.parquet                                task (str, the pandas index), task_index (int64)
    ROOT/meta/episodes/chunk-000/file-000.parquet          one row per episode (below)
    ROOT/meta/more.json                                    index meta, extras' shapes (LeRobot ignores it)
    ROOT/data/chunk-CCC/file-FFF.parquet                   one row per frame, one row group per episode
    ROOT/videos/observation.images.front/chunk-CCC/file-FFF.mp4   episodes back to back, pts = frame / fps

info.json: codebase_version "v3.0", robot_type, total_episodes, total_frames, total_tasks, chunks_size
(files per chunk directory, 1000), data_files_size_in_mb (100), video_files_size_in_mb (200), fps (int),
splits {"train": "0:E"}, data_path, video_path, features {key: {dtype, shape, names[, info]}}.

Frame columns (feature: dtype, shape -> Parquet type):
    observation.images.front  video [H, W, 3] names height/width/channels (not in Parquet: the mp4)
    observation.<extra>       float32 [d] -> fixed_size_list<float>[d] (the simulator: observation.state,
                              its privileged base state x, y, yaw, vx, vy, wz, body_height, pitch)
    action                    float32 [12] -> fixed_size_list<float>[12], names = the action contract's
    next.reward               float32 [1] -> float     1 at the last frame of a successful episode
    next.done                 bool [1] -> bool         True at the last frame of a terminated episode (a time
                                                       limit is no termination: the TD target bootstraps there)
    next.success              bool [1] -> bool         True at the last frame of a successful episode
    timestamp                 float32 [1] -> float     frame_index / fps
    frame_index, episode_index, index, task_index      int64 [1] -> int64 (index = dataset-wide frame)

Episode rows: episode_index, tasks (list<str>), length, data/chunk_index, data/file_index,
dataset_from_index, dataset_to_index, videos/<key>/{chunk_index, file_index, from_timestamp, to_timestamp},
meta/episodes/{chunk_index, file_index}, stats/<feature>/<stat>, and this project's episode header:
more/episode_id, more/task, more/split, more/success, more/expert, more/terminated, more/meta (JSON).
The instruction is the LeRobot task string.

[Round trip] export then import gives back every action, reward, done, instruction, label, header and
extra exactly (float32 stays float32), and the index meta; frames come back within the codec's tolerance.
Default video: libx264, yuv444p, crf 0, g 2 (lossless in YUV; the RGB <-> YUV conversion leaves at most
2 grey levels, mean 0.4, measured on simulator frames). yuv420p (what browsers play) halves the colour
resolution and costs up to ~230 grey levels on sharp colour edges of small images; libsvtav1 (LeRobot's
default codec) only takes yuv420p.

[Import of others' datasets] codebase_version v3.x only; `action` must be a numeric [12] feature, and
where it names its dims they must be the contract's, in order; one RGB camera (video or image, HWC or
CHW); success comes from more/success, else next.success or a 0/1 next.reward at the last frame, else
the caller's label; the first frame's task is the instruction. Numeric vector observation.* features
become extras (observation.state -> extra "state"). Anything else is reported as ignored. Every defect
raises LeRobotError naming the file, feature or episode; output is staged in a temporary directory and
renamed at the end.

[Checked against lerobot] once, outside the tests, in a throwaway install of lerobot 0.4.4 next to this
project's torch (torchvision 0.22 for its pyav reader, the CUDA-only ops disabled): LeRobotDatasetMetadata
and LeRobotDataset (pyav backend, delta_timestamps) loaded exports of both codecs, every decoded frame of
the default within 2 grey levels; a dataset recorded by lerobot 0.4.4 itself imported with bit-exact
actions. Not verified: the torchcodec backend (no system FFmpeg here), the web visualiser and the Hub.
Known differences from lerobot's own files: no `huggingface` schema metadata in the data Parquet (lerobot
passes the features explicitly); stats are float64 for every feature (lerobot keeps bools for bool
min/max) and exact (lerobot samples image frames and approximates quantiles with histograms). The tests
check what lerobot's reader relies on: the info.json keys and types, the file layout, the Parquet schema,
the index ranges, the stats, tasks.parquet's pandas metadata, and frames found at
from_timestamp + timestamp within 1e-4 s.
"""

from more_sim.lerobot.errors import LeRobotError
from more_sim.lerobot.export import export_lerobot
from more_sim.lerobot.importer import import_lerobot
from more_sim.lerobot.video import VideoSettings

__all__ = ["LeRobotError", "VideoSettings", "export_lerobot", "import_lerobot"]
