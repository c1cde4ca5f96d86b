"""Small builders shared by the tests: keyframe images and strips."""
import os

import numpy as np

from nn.imageio import ImageFormat, write_image


def gradient_image(height=48, width=64, channels=4, shift=0.0):
    """A smooth test picture whose content moves with ``shift`` (pixels, horizontally)."""
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    image = np.empty((height, width, channels), np.float32)
    image[..., 0] = 0.5 + 0.5 * np.sin((x - shift) / 6.0)
    if channels > 1:
        image[..., 1] = y / height
    if channels > 2:
        image[..., 2] = 0.5 + 0.5 * np.cos((x - shift + y) / 9.0)
    if channels == 4:
        image[..., 3] = 0.5 + 0.5 * np.cos((x - shift) / 7.0)  # non-linear, so a fade differs from a move
    return image


def write_keyframes(folder, count=2, fmt=ImageFormat(".png", "uint8", 4), size=(48, 64), step=4.0):
    paths = []
    for index in range(count):
        path = os.path.join(folder, f"key_{index:02d}{fmt.extension}")
        write_image(path, gradient_image(*size, channels=fmt.channels, shift=index * step), fmt)
        paths.append(path)
    return paths


def add_key_strips(scene, paths, starts, channel=1, fw=None):
    """One single-image strip per keyframe, selected."""
    from conftest import FRAMEWEAVER
    compat = FRAMEWEAVER.operators.compat
    strips = []
    for path, start in zip(paths, starts):
        strip = compat.strips(scene.sequence_editor).new_image(
            name=os.path.basename(path), filepath=path, channel=channel, frame_start=start)
        strip.select = True
        strips.append(strip)
    return strips
