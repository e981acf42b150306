"""Shared fixtures of the model tests: one tiny policy per session (built in ~0.1 s), fixed images and prompts."""

import numpy as np
import pytest
import torch

from more_model.testing import make_tiny_policy, tiny_config


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """Tiny models run fastest on one thread; two OpenMP threads on a shared 2-core machine stall (~30x)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def tiny_policy():
    """Eval-mode tiny policy with random adapters. Tests must not modify it (build their own to train)."""
    return make_tiny_policy(seed=0)


@pytest.fixture(scope="session")
def images():
    rng = np.random.default_rng(0)
    # different sizes on purpose: the policy resizes every image to its own size
    return [rng.integers(0, 256, shape, dtype=np.uint8) for shape in [(32, 48, 3), (60, 80, 3), (17, 23, 3)]]


@pytest.fixture(scope="session")
def instructions():
    # different lengths on purpose: batches are left-padded
    return ["go to the red ball", "stop", "crawl under the bar quickly with a trot gait"]


@pytest.fixture
def small_config():
    return tiny_config()
