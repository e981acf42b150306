"""more-replay: replay a rosbag2 bag (MCAP or sqlite3) offline through the policy, or convert it to shards.

    more-replay BAG --checkpoint DIR --json        per-dim agreement with the recorded commands (exact bin,
                                                   within one bin, MAE in units), per task, latency
    more-replay BAG --to-dataset DIR               labelled episodes -> training shards (more_common.dataset)
    more-replay BAG --to-dataset DIR --episode-topic /more/episode/status --between-episodes drop --include-stops
                                                   teleoperated episodes (more-teleop, episode_control)

Reads the stack's own bags (more-stack --record, `ros2 bag record`) and realsense-ros recordings (images only:
give --instruction; then only latency and the decoded commands are reported). The instruction comes from
--instruction-topic (std_msgs/String, default /more/instruction), PolicyStatus or EpisodeStatus, else
--instruction. Exit status 2 with one line on a bag or checkpoint that cannot be used, and when no sample
could be decoded (the line says why, e.g. no instruction on the instruction topic).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from more_common.cli import OneLineArgumentParser, task_label, torch_device


def _side(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 8:
        raise argparse.ArgumentTypeError(f"an image side must be an integer >= 8, got {text!r}")
    return value


def build_parser() -> argparse.ArgumentParser:
    p = OneLineArgumentParser(
        prog="more-replay",
        description=__doc__.splitlines()[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="\n".join(__doc__.splitlines()[2:]),
    )
    p.add_argument("bag", help="bag directory (or .mcap / .db3 file)")
    p.add_argument("--checkpoint", default=None, help="policy checkpoint (default: the demo checkpoint)")
    p.add_argument("--device", type=torch_device, default="cpu", help="torch device (default cpu)")
    p.add_argument("--json", action="store_true", help="print the result as JSON (else a short summary)")
    p.add_argument("--image-topic", default="", help="image topic (default: the camera topic, or the only one)")
    p.add_argument("--command-topic", default="", help="recorded command topic (default /more/command)")
    p.add_argument("--instruction", default="", help="instruction for bags that carry none")
    p.add_argument(
        "--instruction-topic", default="", help="std_msgs/String topic with the instruction (default /more/instruction)"
    )
    p.add_argument("--rate", type=float, default=5.0, help="image-only bags: decisions per bag second (0 = all)")
    p.add_argument("--include-stops", action="store_true", help="also replay recorded stop commands")
    p.add_argument("--max-samples", type=int, default=0, help="replay at most this many samples (0 = all)")
    p.add_argument("--to-dataset", default="", metavar="DIR", help="write labelled episodes as training shards")
    p.add_argument("--expert", action="store_true", help="--to-dataset: mark the episodes as expert data")
    p.add_argument(
        "--image-size", type=_side, nargs=2, metavar=("H", "W"), help="--to-dataset: resize images (sides >= 8)"
    )
    p.add_argument("--success", choices=("true", "false"), help="--to-dataset: label a bag without EpisodeStatus")
    p.add_argument("--task", type=task_label, default="", help="--to-dataset: task name for --success labelled bags")
    p.add_argument("--overwrite", action="store_true", help="--to-dataset: replace an existing dataset")
    p.add_argument(
        "--episode-topic",
        default="",
        help="EpisodeStatus topic with the labels (default /more/sim/episode; "
        "teleoperated episodes: /more/episode/status)",
    )
    p.add_argument(
        "--between-episodes",
        choices=("next", "drop"),
        default="next",
        help="next (simulator, default): a command after an episode's final status belongs to the next episode; "
        "drop (teleoperation): episodes are cut by the status in force when each command was sent, and commands "
        "between a final status and the next start belong to none (the robot is driven between episodes)",
    )
    return p


def _messages(bag: Path, topics: Any):
    from more_vla_policy.replay.bag_io import read_messages

    return read_messages(bag, [topics.image, topics.command, topics.instruction, topics.policy_status, topics.episode])


def run(args: argparse.Namespace) -> dict[str, Any]:
    from more_common.errors import ConfigurationError
    from more_vla_policy.replay.bag_io import bag_topics
    from more_vla_policy.replay.samples import (
        COMMAND_TYPE,
        EPISODE_TYPE,
        STRING_TYPE,
        Topics,
        choose_image_topic,
        collect_samples,
    )

    bag = Path(args.bag)
    types = bag_topics(bag)
    try:
        image_topic = choose_image_topic(types, args.image_topic)
    except ValueError as err:
        raise ConfigurationError(f"{bag}: {err}") from err
    chosen = {"command": args.command_topic, "instruction": args.instruction_topic, "episode": args.episode_topic}
    topics = Topics(image=image_topic, **{k: v for k, v in chosen.items() if v})
    if args.command_topic and types.get(args.command_topic) != COMMAND_TYPE:
        commands = sorted(t for t, ty in types.items() if ty == COMMAND_TYPE)
        raise ConfigurationError(
            f"{bag}: --command-topic {args.command_topic} is not a {COMMAND_TYPE} topic of the bag "
            f"(QuadrupedCommand topics there: {commands}); leave it out to replay the images alone"
        )
    if args.instruction_topic and types.get(args.instruction_topic) != STRING_TYPE:
        strings = sorted(t for t, ty in types.items() if ty == STRING_TYPE)
        raise ConfigurationError(
            f"{bag}: --instruction-topic {args.instruction_topic} is not a {STRING_TYPE} topic of the bag "
            f"(String topics there: {strings})"
        )
    if args.episode_topic and types.get(args.episode_topic) != EPISODE_TYPE:
        statuses = sorted(t for t, ty in types.items() if ty == EPISODE_TYPE)
        raise ConfigurationError(
            f"{bag}: --episode-topic {args.episode_topic} is not a {EPISODE_TYPE} topic of the bag "
            f"(EpisodeStatus topics there: {statuses})"
        )
    has_commands = types.get(topics.command) == COMMAND_TYPE

    def samples():
        return collect_samples(
            _messages(bag, topics),
            topics,
            default_instruction=args.instruction,
            rate_hz=args.rate,
            include_stops=args.include_stops,
            has_commands=has_commands,
            between_episodes=args.between_episodes,
        )

    result: dict[str, Any] = {
        "bag": str(bag),
        "image_topic": image_topic,
        "command_topic": topics.command if has_commands else None,
        "labelled": topics.episode in types,
    }
    if args.to_dataset:
        result["dataset"] = _to_dataset(args, bag, topics, samples())
        if args.checkpoint is None:
            return result
    from more_vla_policy.checkpoint_path import load_checkpoint_policy, resolve_checkpoint
    from more_vla_policy.replay.evaluate import replay

    policy = load_checkpoint_policy(args.checkpoint or "", args.device)
    result["checkpoint"] = str(resolve_checkpoint(args.checkpoint or ""))
    result.update(replay(policy, samples(), args.max_samples))
    if result["samples"] == 0:
        raise ConfigurationError(_nothing_decoded(bag, types, topics, has_commands, result["skipped"]))
    return result


def _nothing_decoded(bag: Path, types: dict[str, str], topics: Any, has_commands: bool, skipped: dict) -> str:
    """Why a replay decoded no sample, as one line that says what to pass."""
    from more_vla_policy.replay.samples import STRING_TYPE

    if skipped.get("no instruction"):
        strings = sorted(t for t, ty in types.items() if ty == STRING_TYPE)
        where = (
            f"the instruction topic {topics.instruction} is not in the bag"
            if topics.instruction not in types
            else f"nothing on {topics.instruction} before the samples"
        )
        return (
            f"{bag}: no sample decoded: {skipped['no instruction']} sample(s) have no instruction ({where}; "
            f"String topics in the bag: {strings}): pass --instruction-topic TOPIC or --instruction TEXT"
        )
    if skipped:
        return f"{bag}: no sample decoded: every sample was skipped ({skipped})"
    if has_commands:
        return f"{bag}: no sample: no command on {topics.command} has an image on {topics.image} before it"
    return f"{bag}: no sample: no decodable image on {topics.image}"


def _to_dataset(args: argparse.Namespace, bag: Path, topics: Any, samples: Any) -> dict[str, Any]:
    from more_common.dataset import INDEX_FILE
    from more_common.errors import ConfigurationError
    from more_vla_policy.replay.bag_io import read_messages
    from more_vla_policy.replay.samples import episode_outcomes
    from more_vla_policy.replay.to_dataset import episodes_from_samples, write_dataset

    out = Path(args.to_dataset)
    if (out / INDEX_FILE).exists() and not args.overwrite:
        raise ConfigurationError(f"{out} already holds a dataset; pass --overwrite to replace it")
    outcomes = episode_outcomes(read_messages(bag, [topics.episode]), topics.episode)
    success = None if args.success is None else args.success == "true"
    episodes, summary = episodes_from_samples(
        samples,
        outcomes,
        source=bag.name,
        expert=args.expert,
        image_size=tuple(args.image_size) if args.image_size else None,
        success=success,
        task=args.task,
    )
    if not episodes:
        raise ConfigurationError(
            f"{bag}: no labelled episode to convert ({summary['unlabelled_episodes_skipped']} unlabelled); "
            "bags need EpisodeStatus with a final status, or --success true|false --task NAME"
        )
    blind = [e.episode_id for e in episodes if not e.instruction.strip()]
    if blind:
        raise ConfigurationError(
            f"{bag}: episode(s) {blind[:3]} have no instruction (none on {topics.instruction}, in PolicyStatus or "
            "EpisodeStatus): pass --instruction-topic TOPIC or --instruction TEXT"
        )
    write_dataset(episodes, out, meta={"source": "more-replay", "bag": str(bag)}, overwrite=args.overwrite)
    summary["path"] = str(out)
    return summary


def _summary(result: dict[str, Any]) -> str:
    lines = [f"bag {result['bag']}: image topic {result['image_topic']}"]
    if "dataset" in result:
        d = result["dataset"]
        lines.append(f"dataset {d['path']}: {d['episodes']} episodes, {d['steps']} steps, {d['successes']} successes")
    if "samples" in result:
        lines.append(f"replayed {result['samples']} samples ({result['with_recorded_command']} with a command)")
        agr = result.get("agreement")
        if agr:
            exact, within = (f"{v:.3f}" if v is not None else "n/a" for v in (agr["exact_bin"], agr["within_one_bin"]))
            lines.append(
                f"agreement: exact bin {exact}, within one bin {within}, all dims exact {agr['all_dims_exact']:.3f}"
            )
        lat = result["latency_ms"]["replay_decode"]
        if lat:
            lines.append(f"decode latency p50 {lat['p50']:.1f} ms, p99 {lat['p99']:.1f} ms")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from more_common.dataset import DatasetError
    from more_common.errors import ConfigurationError, one_line
    from more_vla_policy.replay.bag_io import BagError

    try:
        result = run(args)
    except (ConfigurationError, BagError, DatasetError) as err:
        print(f"error: {one_line(err)}", file=sys.stderr)
        return 2
    print(json.dumps(result, indent=2) if args.json else _summary(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
