# The training image: CUDA PyTorch + transformers + this repository's model, simulator and training packages.
# No ROS inside: training and `more-sim eval` need none. Build from the repository root:
#   docker build -f docker/train.Dockerfile -t more-train .
# One GPU (data and runs mounted from the host; the Fuyu-8B directory read-only):
#   docker run --rm --gpus all --ipc host -v /data:/data -v /runs:/opt/more/runs -v /models/fuyu-8b:/models/fuyu-8b:ro \
#     more-train more-train --config training/configs/fuyu8b_rl.yaml data.train=[/data/quard]
# Eight GPUs on one node:
#   docker run ... more-train torchrun --standalone --nproc_per_node 8 -m more_training.cli \
#     --config training/configs/fuyu8b_rl.yaml
# Two nodes (run on each; NODE_RANK 0 and 1, MASTER the address of node 0; NCCL needs the nodes' network):
#   docker run --network host ... more-train torchrun --nnodes 2 --node_rank $NODE_RANK --nproc_per_node 8 \
#     --rdzv_backend c10d --rdzv_endpoint $MASTER:29500 -m more_training.cli --config training/configs/fuyu8b_rl.yaml
FROM nvidia/cuda:12.8.1-cudnn-runtime-ubuntu24.04

ARG TORCH_VERSION=2.13.0
ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cu128

SHELL ["/bin/bash", "-o", "pipefail", "-c"]
ENV DEBIAN_FRONTEND=noninteractive PIP_NO_CACHE_DIR=1 PYTHONUNBUFFERED=1 \
    VIRTUAL_ENV=/opt/venv PATH=/opt/venv/bin:$PATH MUJOCO_GL=egl

# python, and EGL for MuJoCo's headless rendering in `more-sim eval`
RUN apt-get update && apt-get install -y --no-install-recommends \
        python3 python3-venv python3-dev libegl1 libgl1 libglib2.0-0 \
    && rm -rf /var/lib/apt/lists/* \
    && python3 -m venv /opt/venv

# torch first and pinned (an unpinned torch would be resolved again by later installs)
RUN pip install "torch==${TORCH_VERSION}" --index-url "${TORCH_INDEX_URL}"

WORKDIR /opt/more
COPY requirements/ml.txt requirements/sim.txt /opt/more/requirements/
# ml.txt pins torch==2.13.0 too; the CUDA build installed above satisfies it
RUN pip install -r requirements/ml.txt -r requirements/sim.txt

# Only pure-Python packages (no ROS package, no rclpy): the contract and dataset format, the model, the simulator
# (periodic `more-sim eval`) and the trainer.
COPY src/more_common /opt/more/src/more_common
COPY src/more_model /opt/more/src/more_model
COPY src/more_sim /opt/more/src/more_sim
COPY training /opt/more/training
RUN pip install --no-deps /opt/more/src/more_common /opt/more/src/more_model /opt/more/src/more_sim /opt/more/training

CMD ["more-train", "--help"]
