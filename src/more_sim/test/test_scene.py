"""The rendered scene: letters are legible (and not mirrored) from pixels, pooled things appear and vanish.

The letter check is independent of the renderer: references are the letter textures drawn directly
with Pillow. A rendered box face is reduced to the bounding box of its dark (ink) pixels, resized to
16x16 and matched by normalised correlation against every letter's reference and its mirror image.
"""

import io
import math

import numpy as np
import pytest
from PIL import Image

from more_sim.base_tracker import BaseState
from more_sim.letters import letter_png
from more_sim.scene import LETTERS, SceneRenderer
from more_sim.world import Thing

SIZE = 16


def ink_patch(rgb: np.ndarray) -> np.ndarray:
    """The dark pixels' bounding box, resized to SIZE x SIZE, zero-mean unit-norm."""
    ink = rgb.max(axis=-1) < 70
    rows, cols = np.nonzero(ink)
    assert rows.size > 4, "no ink found"
    crop = ink[rows.min() : rows.max() + 1, cols.min() : cols.max() + 1].astype(np.float32)
    patch = np.asarray(Image.fromarray((crop * 255).astype(np.uint8)).resize((SIZE, SIZE), Image.BILINEAR), float)
    patch -= patch.mean()
    return patch / (np.linalg.norm(patch) + 1e-9)


def reference(letter: str, mirror: bool = False) -> np.ndarray:
    rgb = np.asarray(Image.open(io.BytesIO(letter_png(letter))).convert("RGB"))
    return ink_patch(rgb[:, ::-1] if mirror else rgb)


@pytest.fixture(scope="module")
def renderer():
    r = SceneRenderer(96, 96)
    yield r
    r.close()


@pytest.mark.parametrize("distance", [1.0, 1.8])
def test_every_letter_is_read_from_every_face(renderer, distance):
    letters = [ch for ch in LETTERS if ch]
    refs = {ch: reference(ch) for ch in letters}
    mirrored = {ch: reference(ch, mirror=True) for ch in letters}
    wrong = []
    for ch in letters:
        for face in range(4):
            # Turn the box so that face k looks back at the camera (the box's +x face has yaw pi).
            box = Thing("target", "letter_box", distance + 0.25, 0.1, math.pi - face * math.pi / 2, "tan", letter=ch)
            renderer.set_things((box,))
            img = renderer.render(BaseState())
            # Look only at the middle: ink on neighbouring faces seen edge-on must not count.
            patch = ink_patch(img[:, 24:72])
            scores = {other: float((patch * refs[other]).sum()) for other in letters}
            best = max(scores, key=scores.get)
            if best != ch or (scores[ch] <= float((patch * mirrored[ch]).sum()) and ch not in "AHMTX"):
                wrong.append((ch, face, best, round(scores[ch], 2)))
    assert not wrong, f"misread letters (letter, face, read as, score): {wrong}"


def test_unused_pool_slots_are_invisible(renderer):
    renderer.set_things(())
    empty = renderer.render(BaseState())
    renderer.set_things((Thing("t", "ball", 2.0, 0.0, colour="red"),))
    ball = renderer.render(BaseState())
    assert ((ball[..., 0] > 150) & (ball[..., 1] < 60)).sum() > 20
    assert ((empty[..., 0] > 150) & (empty[..., 1] < 60)).sum() == 0
    renderer.set_things(())
    np.testing.assert_array_equal(renderer.render(BaseState()), empty)


def test_too_many_things_of_a_kind_is_an_error(renderer):
    balls = tuple(Thing(f"b{i}", "ball", 2.0 + i, 0.0) for i in range(6))
    with pytest.raises(ValueError, match="at most 5"):
        renderer.set_things(balls)
