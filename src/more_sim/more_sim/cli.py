"""`more-sim`: generate data, evaluate policies, convert QUARD data, render previews, list the envs.

more-sim generate --tasks all --episodes 600 --out data/sim [--suboptimal-fraction 0.5] [--workers 2]
more-sim eval --policy expert|random|CHECKPOINT_DIR --episodes-per-task 25 --split id --json [--embodiment go2]
    [--grounding]
more-sim grounding --policy CHECKPOINT_DIR --scenes-per-task 100 --split id --json
more-sim quard-import QUARD_ROOT OUT --trust-pickle --success true|false [--stride 10]
more-sim quard-export DATASET OUT
more-sim lerobot-export DATASET OUT [--vcodec libx264|libsvtav1] [--pix-fmt yuv444p|yuv420p] [--crf 0]
more-sim lerobot-import SRC OUT [--camera KEY] [--success true|false]
more-sim render --task crawl --seed 3 --out crawl.png
more-sim info
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from more_common.cli import OneLineArgumentParser, file_in_the_way, int_at_least, task_label, torch_device
from more_sim.config import GO2_BACKENDS
from more_sim.splits import SPLITS, TASKS


def _tasks(text: str) -> list[str]:
    if text == "all":
        return list(TASKS)
    names = [t.strip() for t in text.split(",") if t.strip()]
    bad = [t for t in names if t not in TASKS]
    if bad or not names:
        raise argparse.ArgumentTypeError(f"unknown task(s) {bad or text!r}; choose from {list(TASKS)} or 'all'")
    return names


def _size(text: str) -> tuple[int, int]:
    try:
        parts = [int(v) for v in text.lower().split("x")]
    except ValueError:
        parts = []
    if len(parts) == 1:
        parts = parts * 2
    if len(parts) != 2 or min(parts) < 8:
        raise argparse.ArgumentTypeError(f"image size must be N or HxW with N >= 8, got {text!r}")
    return parts[0], parts[1]


def _steps(text: str) -> tuple[int, ...]:
    try:
        steps = tuple(sorted({int(v) for v in text.split(",") if v.strip()}))
    except ValueError:
        steps = ()
    if not steps or min(steps) < 0:
        raise argparse.ArgumentTypeError(f"decision steps must be a comma-separated list of ints >= 0, got {text!r}")
    return steps


def _rate(text: str) -> float:
    from more_sim.config import SimConfig

    try:
        value = float(text)
    except ValueError:
        value = math.nan
    substeps = SimConfig.control_hz / value if value > 0 else math.nan
    # whole control steps per decision, so the decision period is exact (and video frame rates stay whole)
    if not (substeps >= 1 and abs(substeps - round(substeps)) < 1e-9):
        raise argparse.ArgumentTypeError(
            f"expected a rate that divides {SimConfig.control_hz:g} Hz into whole control steps "
            f"(e.g. 10, 5, 2.5, 2), got {text!r}"
        )
    return value


def _finite_non_negative(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value >= 0):
        raise argparse.ArgumentTypeError(f"must be a finite number >= 0, got {text!r}")
    return value


def _check_out_dir(out: Path) -> None:
    """Before a long run: an output directory that cannot be one is an error now, not after every episode ran."""
    blocker = file_in_the_way(out)
    if blocker is not None:
        raise ValueError(f"--out {str(out)!r}: {str(blocker)!r} is a file, not a directory")


def _bool(text: str) -> bool:
    if text.lower() in ("true", "1", "yes"):
        return True
    if text.lower() in ("false", "0", "no"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}")


def _config(args: argparse.Namespace):
    from more_sim.config import SimConfig

    kwargs = {}
    if getattr(args, "image_size", None):
        kwargs["image_height"], kwargs["image_width"] = args.image_size
    if getattr(args, "style_variation", False):
        kwargs["style_variation"] = True
    if getattr(args, "decision_hz", None):
        kwargs["decision_hz"] = args.decision_hz
        # the time limit stays 20 s unless --max-steps sets it in decisions
        seconds = SimConfig.max_episode_steps / SimConfig.decision_hz
        kwargs["max_episode_steps"] = max(1, round(seconds * args.decision_hz))
    if getattr(args, "max_steps", None):
        kwargs["max_episode_steps"] = args.max_steps
    if getattr(args, "embodiment", None):
        kwargs["embodiment"] = args.embodiment
    if getattr(args, "go2_backend", None):
        kwargs["go2_backend"] = args.go2_backend
    if getattr(args, "go2_state_delay_ms", None) is not None:
        kwargs["go2_state_delay_ms"] = args.go2_state_delay_ms
    if getattr(args, "go2_target_delay_ms", None) is not None:
        kwargs["go2_target_delay_ms"] = args.go2_target_delay_ms
    if getattr(args, "go2_controller_config", None):
        kwargs["go2_controller_config"] = args.go2_controller_config
    config = SimConfig(**kwargs)
    if config.go2_controller_config:  # a bad file is named before any episode runs
        from more_sim.go2.walker import controller_config

        controller_config(config.go2_controller_config)
    return config


def cmd_generate(args: argparse.Namespace) -> int:
    from more_sim.generate import generate

    summary = generate(
        args.out,
        tasks=args.tasks,
        episodes=args.episodes,
        split=args.split,
        suboptimal_fraction=args.suboptimal_fraction,
        workers=args.workers,
        seed=args.seed,
        config=_config(args),
        episodes_per_shard=args.episodes_per_shard,
        compress=not args.no_compress,
        overwrite=args.overwrite,
        progress=not args.quiet,
        failures_only=args.suboptimal_failures_only,
        start=args.start,
        name_each=args.name_each,
        dagger=args.dagger,
        dagger_beta=args.dagger_beta,
        resume=args.resume,
        strafe=args.expert_strafe,
    )
    print(json.dumps(summary, indent=2))
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    from more_sim.evaluate import evaluate, write_report
    from more_sim.policies import make_policy

    _check_out_dir(args.out)
    config = _config(args)
    policy = make_policy(args.policy, device=args.device, decision_hz=config.decision_hz)
    if args.image_size:
        policy.image_size = None  # an explicit size wins over the policy's own
    result = evaluate(policy, args.tasks, args.episodes_per_task, args.split, args.seed, config, args.batch, True)
    if args.grounding:
        from more_sim.evaluate import add_grounding

        add_grounding(result, _grounding(policy, args, config))
    paths = write_report(result, args.out)
    if args.json:
        print(json.dumps(result["rates"]))
    else:
        print(paths["markdown"].read_text())
        print(f"wrote {paths['markdown']}, {paths['png']}, {paths['json']}")
    return 0


def _grounding(policy: Any, args: argparse.Namespace, config: Any) -> dict[str, Any]:
    from more_sim.grounding import grounding_test

    return grounding_test(
        policy, args.tasks, args.grounding_scenes, args.split, args.seed, config, args.batch, args.grounding_steps,
        args.min_separation,
    )  # fmt: skip


def cmd_grounding(args: argparse.Namespace) -> int:
    """The instruction-swap test alone (more_sim.grounding)."""
    from more_sim.evaluate import write_grounding_report
    from more_sim.grounding import GROUNDING_TASKS
    from more_sim.policies import make_policy

    if not any(t in GROUNDING_TASKS for t in args.tasks):
        raise ValueError(f"the instruction-swap test applies to {list(GROUNDING_TASKS)}; --tasks has none of them")
    _check_out_dir(args.out)
    config = _config(args)
    policy = make_policy(args.policy, device=args.device, decision_hz=config.decision_hz)
    if args.image_size:
        policy.image_size = None
    result = {"policy": policy.name, **_grounding(policy, args, config)}
    path = write_grounding_report(result, args.out)
    if args.json:
        print(json.dumps({"grounding": result["grounding"], "grounding_chance": result["grounding_chance"]}))
    else:
        print(path.read_text())
        print(f"wrote {path}")
    return 0


def cmd_quard_import(args: argparse.Namespace) -> int:
    from more_sim.quard import quard_to_dataset

    summary = quard_to_dataset(
        args.root, args.out, args.trust_pickle, args.stride, args.success, args.expert, overwrite=args.overwrite
    )
    print(json.dumps(summary, indent=2))
    return 0


def cmd_quard_export(args: argparse.Namespace) -> int:
    from more_sim.quard import dataset_to_quard

    print(json.dumps(dataset_to_quard(args.dataset, args.out, args.split_dir, overwrite=args.overwrite), indent=2))
    return 0


# -- LeRobot v3 datasets (more_sim.lerobot) -------------------------------------------------------


def cmd_lerobot_export(args: argparse.Namespace) -> int:
    from more_sim.lerobot import VideoSettings, export_lerobot

    video = VideoSettings(vcodec=args.vcodec, pix_fmt=args.pix_fmt, crf=args.crf, gop=args.gop)
    summary = export_lerobot(
        args.dataset,
        args.out,
        fps=args.fps,
        video=video,
        robot_type=args.robot_type,
        data_file_mb=args.data_file_mb,
        video_file_mb=args.video_file_mb,
        overwrite=args.overwrite,
    )
    print(json.dumps(summary, indent=2))
    return 0


def cmd_lerobot_import(args: argparse.Namespace) -> int:
    from more_sim.lerobot import import_lerobot

    summary = import_lerobot(
        args.src,
        args.out,
        camera=args.camera,
        success=args.success,
        expert=args.expert,
        task=args.task,
        episodes_per_shard=args.episodes_per_shard,
        overwrite=args.overwrite,
    )
    print(json.dumps(summary, indent=2))
    return 0


def add_lerobot_parsers(sub: argparse._SubParsersAction) -> None:
    from more_sim.lerobot.layout import DEFAULT_DATA_FILE_MB, DEFAULT_VIDEO_FILE_MB, ROBOT_TYPE

    le = sub.add_parser("lerobot-export", help="write a dataset as a LeRobotDataset v3.0")
    le.add_argument("dataset", type=Path)
    le.add_argument("out", type=Path)
    le.add_argument("--fps", type=int, default=None, help="frames per second (default: the dataset's decision_hz)")
    le.add_argument("--vcodec", choices=("libx264", "libsvtav1"), default="libx264")
    le.add_argument("--pix-fmt", choices=("yuv444p", "yuv420p"), default="yuv444p", help="yuv420p for browsers")
    le.add_argument("--crf", type=int, default=0, help="0 = lossless in YUV (libx264); LeRobot uses 30 (av1)")
    le.add_argument("--gop", type=int, default=2, help="frames between key frames (LeRobot's g)")
    le.add_argument("--robot-type", default=ROBOT_TYPE)
    le.add_argument("--data-file-mb", type=float, default=DEFAULT_DATA_FILE_MB, help="start a new Parquet file after")
    le.add_argument("--video-file-mb", type=float, default=DEFAULT_VIDEO_FILE_MB, help="start a new mp4 file after")
    le.add_argument("--overwrite", action="store_true", help="replace OUT if it is a LeRobot dataset")
    le.set_defaults(func=cmd_lerobot_export)

    li = sub.add_parser("lerobot-import", help="convert a LeRobotDataset v3 into a dataset")
    li.add_argument("src", type=Path)
    li.add_argument("out", type=Path)
    li.add_argument("--camera", default=None, help="camera feature (default observation.images.front or the only one)")
    li.add_argument("--success", type=_bool, default=None, help="label for episodes the data does not label")
    li.add_argument("--expert", type=_bool, default=None, help="expert flag where unlabelled (default: = success)")
    li.add_argument("--task", type=task_label, default="", help="project task name where the data has none")
    li.add_argument("--episodes-per-shard", type=int, default=32)
    li.add_argument("--overwrite", action="store_true", help="replace OUT if it is a dataset")
    li.set_defaults(func=cmd_lerobot_import)


def cmd_render(args: argparse.Namespace) -> int:
    """One episode of a policy (the expert by default): a strip of frames (.png) or every frame (.gif).

    `--seed` is the episode's reset seed, so an `episodes[].seed` from `more-sim eval`'s results.json (with the
    same task, split, embodiment and rates) shows that very episode: it runs through the same `run_jobs`."""
    import io
    from dataclasses import replace

    import numpy as np
    from PIL import Image

    from more_common.dataset import atomic_write_bytes
    from more_sim.policies import make_policy
    from more_sim.rollout import Job, run_jobs

    suffix = args.out.suffix.lower()
    if suffix not in (".png", ".gif"):
        raise ValueError(f"--out must end in .png (a strip of frames) or .gif (every frame); got {str(args.out)!r}")
    config = _config(args)
    policy = make_policy(args.policy, device=args.device, decision_hz=config.decision_hz)
    size = None if args.image_size else policy.image_size  # as eval: an explicit size wins over the policy's
    if size is not None and tuple(size) != config.image_size:
        config = replace(config, image_height=size[0], image_width=size[1])
    ((outcome, episode),) = run_jobs([Job(args.task, args.split, args.seed)], policy, config, batch=1, record=True)
    frames = list(episode.images)  # the image each decision was made on
    buffer = io.BytesIO()
    if suffix == ".gif":
        images = [Image.fromarray(f) for f in frames]
        duration = round(1000.0 / config.decision_hz)  # [ms] real time at the decision rate
        images[0].save(buffer, format="GIF", save_all=True, append_images=images[1:], duration=duration, loop=0)
    else:
        picks = np.linspace(0, len(frames) - 1, min(args.frames, len(frames))).round().astype(int)
        Image.fromarray(np.concatenate([frames[k] for k in picks], axis=1)).save(buffer, format="PNG")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(args.out, buffer.getvalue())  # written whole, then moved into place
    result = {
        "task": args.task,
        "seed": args.seed,
        "policy": policy.name,
        "instruction": outcome.instruction,
        "success": outcome.success,
        "end": outcome.end,
        "steps": outcome.steps,
        "frames": len(frames),
        "out": str(args.out),
    }
    print(json.dumps(result))
    return 0


def cmd_info(args: argparse.Namespace) -> int:
    from more_sim.config import SimConfig
    from more_sim.registration import ENV_IDS
    from more_sim.splits import SPLIT_SPECS

    print(
        json.dumps(
            {
                "env_ids": ENV_IDS,
                "tasks": list(TASKS),
                "splits": {
                    k: {"colours": v.colours, "objects": v.objects, "letters": v.letters}
                    for k, v in SPLIT_SPECS.items()
                },
                "default_config": SimConfig().__dict__,
            },
            indent=2,
        )
    )
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineArgumentParser(prog="more-sim", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)

    def sim_options(p: argparse.ArgumentParser, seed_help: str = "base seed (episodes derive theirs from it)") -> None:
        p.add_argument("--split", choices=SPLITS, default="id", help="in-distribution or out-of-distribution")
        p.add_argument("--seed", type=int_at_least(0), default=0, help=seed_help)
        p.add_argument("--image-size", type=_size, default=None, help="N or HxW (default 96, or the policy's)")
        p.add_argument("--style-variation", action="store_true", help="vary speed and gait words")
        p.add_argument(
            "--decision-hz",
            type=_rate,
            default=None,
            help="policy decisions per second (5, QUARD's rate; the time limit stays 20 s unless --max-steps)",
        )
        p.add_argument(
            "--max-steps", type=int_at_least(1), default=None, help="decisions before the time limit (100 at 5 Hz)"
        )
        p.add_argument(
            "--embodiment",
            choices=("kinematic", "go2"),
            default="kinematic",
            help="kinematic base (default) or the physics Go2 walked by the controller core (docs/simulator.md)",
        )
        p.add_argument(
            "--go2-backend",
            choices=GO2_BACKENDS,
            default=None,
            help="--embodiment go2: what walks it: lowlevel (default: the controller core on the motors) | sport "
            "(the Go2's own locomotion through the sport backend, firmware >= 1.1.6) | sport_legacy (before 1.1.6)",
        )
        p.add_argument(
            "--go2-state-delay-ms",
            type=_finite_non_negative,
            default=None,
            help="--embodiment go2, lowlevel: the controller reads joint state and IMU this old (whole 2 ms steps, "
            "<= 50; default 0: fresh; the robot chain's is 0-2 ms plus transport)",
        )
        p.add_argument(
            "--go2-target-delay-ms",
            type=_finite_non_negative,
            default=None,
            help="--embodiment go2, lowlevel: the controller's targets reach the motors this much later (whole 2 ms "
            "steps, <= 50; default 0; the robot chain's is the bridge's 0-2 ms tick plus transport)",
        )
        p.add_argument(
            "--go2-controller-config",
            default=None,
            help="--embodiment go2, lowlevel: YAML overriding the controller's VelocityConfig, as the controller "
            "node's config_file (e.g. ranges: {vx: [-0.4, 0.4]})",
        )

    def grounding_options(p: argparse.ArgumentParser, scenes_flag: str = "--grounding-scenes") -> None:
        p.add_argument(
            scenes_flag, dest="grounding_scenes", type=int_at_least(1), default=100, help="scenes per task (test)"
        )
        p.add_argument(
            "--grounding-steps", type=_steps, default=(0,), help="decision steps along the expert's way, e.g. 0,4,8"
        )
        p.add_argument(
            "--min-separation",
            type=_finite_non_negative,
            default=0.1,
            help="expert turns closer than this [rad/s] are not counted",
        )

    g = sub.add_parser("generate", help="write a sharded dataset of expert + sub-optimal episodes")
    g.add_argument("--tasks", type=_tasks, default=list(TASKS), help="'all' or a comma-separated list")
    g.add_argument("--episodes", type=int_at_least(1), required=True, help="episodes in all (spread over the tasks)")
    g.add_argument("--out", type=Path, required=True, help="output directory")
    g.add_argument("--suboptimal-fraction", type=float, default=0.5, help="share of sub-optimal episodes")
    g.add_argument(
        "--suboptimal-failures-only", action="store_true",
        help="drop the sub-optimal episodes that succeeded (QUARD-Auto as the paper used it: failures only)",
    )  # fmt: skip
    g.add_argument("--workers", type=int_at_least(1), default=None, help="worker processes (default: all cores)")
    g.add_argument("--episodes-per-shard", type=int_at_least(1), default=32)
    g.add_argument("--no-compress", action="store_true", help="store shards uncompressed (faster, larger)")
    g.add_argument("--overwrite", action="store_true")
    g.add_argument("--resume", action="store_true", help="keep the shards an interrupted run of this plan wrote")
    g.add_argument("--quiet", action="store_true", help="no progress bar")
    g.add_argument(
        "--start", choices=("split", "in_view"), default="split",
        help="start heading: the split's, or anywhere the target is wholly in view (rarely central)",
    )  # fmt: skip
    g.add_argument(
        "--name-each", action="store_true",
        help="record each expert distinguish/go_to scene once per nameable thing, that thing the target",
    )  # fmt: skip
    g.add_argument("--dagger", default=None, help="checkpoint that drives; the expert's commands are recorded")
    g.add_argument("--dagger-beta", type=float, default=0.0, help="per-decision chance the expert drives instead")
    g.add_argument(
        "--expert-strafe",
        action="store_true",
        help="the expert keeps the target in view in the reach tasks: it walks sideways (vy) rather than turn away",
    )
    sim_options(g)
    g.set_defaults(func=cmd_generate)

    e = sub.add_parser("eval", help="closed-loop success rates per task")
    e.add_argument("--policy", required=True, help="expert, random, suboptimal or a checkpoint directory")
    e.add_argument("--episodes-per-task", type=int_at_least(1), default=25)
    e.add_argument("--tasks", type=_tasks, default=list(TASKS))
    e.add_argument("--json", action="store_true", help="print only the JSON of success rates")
    e.add_argument("--out", type=Path, default=Path("sim-eval"), help="where results.md/.png/.json go")
    e.add_argument("--device", type=torch_device, default="cpu", help="torch device for checkpoint policies")
    e.add_argument("--batch", type=int_at_least(1), default=8, help="environments stepped together")
    e.add_argument("--grounding", action="store_true", help="also run the instruction-swap test (see grounding)")
    grounding_options(e)
    sim_options(e)
    e.set_defaults(func=cmd_eval)

    gr = sub.add_parser("grounding", help="instruction-swap test: heads for the named object, vs chance")
    gr.add_argument("--policy", required=True, help="expert, random, suboptimal or a checkpoint directory")
    gr.add_argument("--tasks", type=_tasks, default=["distinguish", "go_to"], help="tasks (distinguish, go_to apply)")
    gr.add_argument("--json", action="store_true", help="print only the JSON of grounding and grounding_chance")
    gr.add_argument("--out", type=Path, default=Path("sim-eval"), help="where grounding.md/.json go")
    gr.add_argument("--device", type=torch_device, default="cpu", help="torch device for checkpoint policies")
    gr.add_argument("--batch", type=int_at_least(1), default=8, help="decisions decoded together")
    grounding_options(gr, scenes_flag="--scenes-per-task")
    sim_options(gr)
    gr.set_defaults(func=cmd_grounding)

    q = sub.add_parser("quard-import", help="convert QUARD's raw layout into a dataset")
    q.add_argument("root", type=Path)
    q.add_argument("out", type=Path)
    q.add_argument("--trust-pickle", action="store_true", help="allow loading the pickled .npy files")
    q.add_argument(
        "--stride", type=int_at_least(1), default=None, help="keep every Nth frame (default 10, or the export's)"
    )
    q.add_argument("--success", type=_bool, default=None, help="label for episodes without one in info.csv")
    q.add_argument("--expert", type=_bool, default=None, help="expert flag (default: = success)")
    q.add_argument("--overwrite", action="store_true")
    q.set_defaults(func=cmd_quard_import)

    x = sub.add_parser("quard-export", help="write a dataset in QUARD's raw layout")
    x.add_argument("dataset", type=Path)
    x.add_argument("out", type=Path)
    x.add_argument("--split-dir", default="sim")
    x.add_argument("--overwrite", action="store_true", help="replace an earlier export in OUT")
    x.set_defaults(func=cmd_quard_export)

    add_lerobot_parsers(sub)

    r = sub.add_parser("render", help="one episode of a policy: a strip of frames (.png) or every frame (.gif)")
    r.add_argument("--task", choices=TASKS, default="go_to")
    r.add_argument("--policy", default="expert", help="expert (default), random, suboptimal or a checkpoint directory")
    r.add_argument("--device", type=torch_device, default="cpu", help="torch device for a checkpoint policy")
    r.add_argument("--out", type=Path, default=Path("episode.png"), help=".png: a strip of --frames; .gif: all")
    r.add_argument("--frames", type=int_at_least(1), default=8, help="frames in a .png strip, evenly spaced")
    sim_options(r, seed_help="the episode's reset seed (an episodes[].seed of eval's results.json replays it)")
    r.set_defaults(func=cmd_render)

    i = sub.add_parser("info", help="print the env ids, tasks, splits and default settings as JSON")
    i.set_defaults(func=cmd_info)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (ValueError, RuntimeError, OSError) as err:
        from more_common.errors import one_line

        print(f"error: {one_line(err)}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
