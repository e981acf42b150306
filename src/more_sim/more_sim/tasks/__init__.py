"""The six tasks of the MoRE paper; `make_task(name)` builds one."""

from __future__ import annotations

from more_sim.splits import TASKS
from more_sim.tasks.base import Progress, Scenario, Style, Task
from more_sim.tasks.crossing import Crawl, GoThrough
from more_sim.tasks.distinguish import Distinguish
from more_sim.tasks.go_avoid import GoAvoid
from more_sim.tasks.go_to import GoTo
from more_sim.tasks.unload import Unload

TASK_CLASSES: dict[str, type[Task]] = {
    "distinguish": Distinguish,
    "go_to": GoTo,
    "go_through": GoThrough,
    "go_avoid": GoAvoid,
    "crawl": Crawl,
    "unload": Unload,
}
assert tuple(TASK_CLASSES) == TASKS


def make_task(name: str, with_style: bool = False) -> Task:
    try:
        return TASK_CLASSES[name](with_style=with_style)
    except KeyError:
        raise ValueError(f"unknown task {name!r}; known: {list(TASKS)}") from None


__all__ = ["TASKS", "Progress", "Scenario", "Style", "Task", "make_task"]
