"""episode_control's task label is checked when the node starts, by the rule the dataset conversion applies later
(a label the conversion refuses once cost a whole recorded session)."""

import pytest

from more_common.errors import ConfigurationError
from more_ros.params import validate_section
from more_teleop.episode_node import NODE_NAME, PARAMS


@pytest.mark.parametrize("task", ["pick/place", "fetch ball!", " go_to", "x" * 65, "", "   "])
def test_a_task_label_the_dataset_would_refuse_is_refused_at_start(task):
    with pytest.raises(ConfigurationError, match=f"{NODE_NAME}.task has invalid value"):
        validate_section(NODE_NAME, {"task": task}, PARAMS)


@pytest.mark.parametrize("task", ["go_to", "crawl", "go to", "stairs-2"])
def test_plain_task_labels_pass(task):
    assert validate_section(NODE_NAME, {"task": task}, PARAMS)["task"] == task
