"""Simulator benchmarks (run by bench/run_all.py): env steps/s with rendering, and data generation throughput.

    python bench/bench_sim.py --json

env:      MoreSimEnv.step (base tracking, contact checks, MuJoCo render of the front camera) under a fixed
          steering command, at 96x96, 128x128 and 224x224, in 1 worker process and in 2 concurrent ones
          (LP_NUM_THREADS=1 each, so 2 workers use both cores); steps/s summed over workers, best and
          median of the rounds. Also the bare render rate (SceneRenderer.render only) in one process.
generate: `more-sim generate` end to end (expert + 50% sub-optimal, all tasks, 96x96, compressed shards)
          with 1 and 2 workers: episodes/s and steps/s including process start-up and shard writing.
go2_rtf:  the `go2` embodiment on one core (LP_NUM_THREADS=1, onnxruntime 1 thread): the Menagerie Go2 in the
          six-task world (go_to scene) walked by the controller core (velocity backend, 50 Hz, 2 ms physics,
          contacts checked every step) under the steering command, simulated seconds per wall second, variants
          side by side in each round: (a) no rendering, (b) + the head camera (D435, 96 x 64) at every decision
          (5 Hz simulated), (c) + the 320 x 240 third-person view as well (what the demo's videos add), (d) (a)
          with the controller reading a 2 ms old state (`go2_state_delay_ms`: a sensor snapshot kept per physics
          step). Best and median over rounds.

    python bench/bench_sim.py --json --only go2     # just the go2 section
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import statistics
import sys
import tempfile
import time
from dataclasses import replace

SIZES = (96, 128, 224)


def _steer(k: int):
    import math

    from more_common.action_contract import INDEX, stand_command

    cmd = stand_command()
    cmd[INDEX["vx"]] = 0.5
    cmd[INDEX["wz"]] = 0.6 * math.sin(k / 7.0)
    return cmd


def env_rounds(size: int, rounds: int, steps: int, start: float | None = None) -> list[float]:
    """Steps/s of `rounds` rounds of `steps` env steps (new episode whenever one ends)."""
    os.environ.setdefault("MUJOCO_GL", "egl")
    from more_sim.env import make_env

    env = make_env("all", "id", image_height=size, image_width=size)
    env.reset(seed=0)
    for k in range(10):  # warm-up: renderer, textures
        env.step(_steer(k))
    if start is not None:  # line the workers up so they really run concurrently
        while time.time() < start:
            time.sleep(0.005)
    rates, seed = [], 1
    for _ in range(rounds):
        t0 = time.perf_counter()
        for k in range(steps):
            _, _, terminated, truncated, _ = env.step(_steer(k))
            if terminated or truncated:
                env.reset(seed=seed)
                seed += 1
        rates.append(steps / (time.perf_counter() - t0))
    env.close()
    return rates


def _worker(args: tuple[int, int, int, float]) -> list[float]:
    os.environ["LP_NUM_THREADS"] = "1"
    return env_rounds(*args)


def bench_env(size: int, workers: int, rounds: int, steps: int) -> dict:
    ctx = mp.get_context("spawn")
    start = time.time() + 6.0  # after the workers' imports
    with ctx.Pool(workers) as pool:
        per_worker = pool.map(_worker, [(size, rounds, steps, start)] * workers)
    totals = [sum(r) for r in zip(*per_worker, strict=True)]
    return {"best_steps_s": round(max(totals), 1), "median_steps_s": round(statistics.median(totals), 1)}


def bench_render(size: int, frames: int) -> dict:
    os.environ.setdefault("MUJOCO_GL", "egl")
    import numpy as np

    from more_sim.base_tracker import BaseState
    from more_sim.scene import SceneRenderer
    from more_sim.splits import split_spec
    from more_sim.tasks import Style, make_task

    r = SceneRenderer(size, size)
    r.set_things(make_task("go_to").sample(np.random.default_rng(0), split_spec("id"), Style()).things)
    rates = []
    for _ in range(5):
        t0 = time.perf_counter()
        for k in range(frames):
            r.render(BaseState(x=0.001 * k, yaw=0.01 * k))
        rates.append(frames / (time.perf_counter() - t0))
    r.close()
    return {"best_fps": round(max(rates), 1), "median_fps": round(statistics.median(rates), 1)}


def bench_generate(workers: int, episodes: int) -> dict:
    from more_sim.generate import generate

    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        summary = generate(tmp, episodes=episodes, workers=workers, seed=1, episodes_per_shard=8, progress=False)
        seconds = time.perf_counter() - t0
        size = sum(os.path.getsize(os.path.join(tmp, f)) for f in os.listdir(tmp))
    return {
        "episodes_s": round(episodes / seconds, 2),
        "steps_s": round(summary["transitions"] / seconds, 1),
        "bytes_per_step": round(size / summary["transitions"]),
        "seconds": round(seconds, 1),
    }


def bench_go2_rtf(rounds: int, sim_seconds: float) -> dict:
    """Simulated s per wall s of the go2 embodiment: no rendering / head camera / head camera + view."""
    os.environ.setdefault("MUJOCO_GL", "egl")
    os.environ["LP_NUM_THREADS"] = "1"
    from more_sim.config import SimConfig
    from more_sim.env import make_env

    config = SimConfig(embodiment="go2", image_height=64, image_width=96, render_images=False)
    env = make_env("go_to", "id", config)
    delayed = make_env("go_to", "id", replace(config, go2_state_delay_ms=2.0))
    variants = {
        "physics_controller": (env, False, False),
        "with_head_camera": (env, True, False),
        "with_camera_and_view": (env, True, True),
        "physics_controller_state_2ms_old": (delayed, False, False),
    }
    out: dict[str, list[float]] = {k: [] for k in variants}
    decisions = round(sim_seconds * 5)
    for r in range(rounds):
        for name, (variant_env, head, view) in variants.items():
            variant_env.reset(seed=r)
            walker = variant_env.unwrapped.embodiment
            walker.render(), walker.render_view()  # renderers created outside the clock
            t0 = time.perf_counter()
            for k in range(decisions):
                for _ in walker.advance(_steer(k), 10):
                    pass
                if head:
                    walker.render()
                if view:
                    walker.render_view()
            out[name].append(sim_seconds / (time.perf_counter() - t0))
    env.close()
    delayed.close()
    return {k: {"best": max(v), "median": statistics.median(v), "rounds": v} for k, v in out.items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="one JSON line")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--steps", type=int, default=200, help="env steps per round")
    parser.add_argument("--episodes", type=int, default=240, help="episodes per generation run")
    parser.add_argument("--go2-seconds", type=float, default=10.0, help="simulated seconds per go2 round")
    parser.add_argument("--only", choices=("go2",), default=None, help="run one section only")
    args = parser.parse_args(argv)
    results: dict = {"cores": os.cpu_count()}
    results["go2_rtf"] = bench_go2_rtf(args.rounds, args.go2_seconds)
    print(f"[bench_sim] go2_rtf: {results['go2_rtf']}", file=sys.stderr)
    if args.only == "go2":
        print(json.dumps(results) if args.json else json.dumps(results, indent=2))
        return 0
    results.update({"env": {}, "render_one_process": {}, "generate": {}})
    for size in SIZES:
        for workers in (1, 2):
            key = f"{size}x{size}_{workers}w"
            results["env"][key] = bench_env(size, workers, args.rounds, args.steps)
            print(f"[bench_sim] env {key}: {results['env'][key]}", file=sys.stderr)
        results["render_one_process"][f"{size}x{size}"] = bench_render(size, 200)
    for workers in (1, 2):
        results["generate"][f"{workers}w"] = bench_generate(workers, args.episodes)
        print(f"[bench_sim] generate {workers}w: {results['generate'][f'{workers}w']}", file=sys.stderr)
    print(json.dumps(results) if args.json else json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
