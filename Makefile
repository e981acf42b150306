# MoRE on Go2: the two newcomer commands are `make demo` and `make test`; both set everything up first.
SHELL := /bin/bash
.DEFAULT_GOAL := help
ENV := source scripts/env.sh &&
PYTEST_ARGS ?=
DEMO_EMBODIMENT ?= go2
DEMO_EPISODES ?= 3

.PHONY: help setup demo talk test lint format bench bench-gpu clean

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

setup:  ## install everything idempotently: venv, pinned torch/ML/sim/ROS 2 wheels, colcon build
	@bash scripts/setup.sh

demo: setup  ## the whole chain on a walking Go2: simulator -> VLA policy -> controller -> bridge -> robot; JSON + a video per episode
	@$(ENV) more-stack sim --embodiment $(DEMO_EMBODIMENT) --task go_to --episodes $(DEMO_EPISODES) --json \
		--video outputs/demo

talk: setup  ## the smallest check that nodes talk over DDS: command publisher -> kinematic base, as processes
	@$(ENV) more-demo

test: setup  ## run every test (unit, model, simulator, cross-process DDS)
	@$(ENV) python -m pytest $(PYTEST_ARGS)

lint: setup  ## ruff over the whole repository
	@$(ENV) ruff check . && ruff format --check .

format: setup  ## apply ruff's formatting and safe fixes
	@$(ENV) ruff check --fix . && ruff format .

bench: setup  ## run the benchmarks in bench/ (results: docs/benchmarks.md)
	@$(ENV) python bench/run_all.py

bench-gpu:  ## full-size Fuyu-8B GPU benchmark (decode Hz, training samples/s) -> bench_gpu.json; needs CUDA, < 8 min
	@$(ENV) python bench/gpu.py --out bench_gpu.json

clean:  ## remove colcon outputs (keeps the venv)
	rm -rf build install log build_colcon.log
