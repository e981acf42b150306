"""The simulator's camera renders at the policy's input size unless the parameter file says otherwise.

The policy fits every image to its model's input size (centre crop to the model's aspect, then resize). A render of
another size reaches the model cropped to a narrower view or resampled (blurred when upsampled): not the images it
was trained on, which `more-sim generate` renders at exactly that size. So the stacks' files leave
`more_sim.image_height/width` out, and `more-stack sim` and the sim launch files fill them in from the policy's
checkpoint (its JSON only: no torch).
"""

from __future__ import annotations

from typing import Any

from more_bringup.stacks import POLICY, WORLD

SIZE_KEYS = ("image_height", "image_width")


def policy_camera_size(sections: dict[str, dict[str, Any]]) -> dict[str, int]:
    """The more_sim image size keys `sections` leaves out, set to the policy checkpoint's input size.

    {} when the file gives both, or when the checkpoint cannot be read: the policy node then stops the stack with
    the reason, before the simulator starts."""
    from more_model.checkpoint_meta import CheckpointError, input_size
    from more_vla_policy.checkpoint_path import resolve_checkpoint

    missing = [key for key in SIZE_KEYS if key not in sections.get(WORLD.name, {})]
    if not missing:
        return {}
    checkpoint = sections.get(POLICY.name, {}).get("checkpoint", "")
    try:
        size = input_size(resolve_checkpoint(checkpoint if isinstance(checkpoint, str) else ""))
    except CheckpointError:
        return {}
    return {key: value for key, value in zip(SIZE_KEYS, size, strict=True) if key in missing}
