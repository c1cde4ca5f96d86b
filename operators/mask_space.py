"""Mask datablock coordinates as image pixels: Animate Loop's strokes and Generate Inbetweens' guides."""


def to_pixels(co, width: int, height: int) -> list[float]:
    """A Mask-space point as pixels from the image's top-left corner, y down (pixel i spans i to i + 1).

    Mask space is centred on the frame and scaled by its longer side: (0.5, 0.5) is the
    centre and a unit spans max(width, height) pixels (checked by rendering a Mask strip).
    """
    scale = max(width, height)
    return [width / 2 + (co[0] - 0.5) * scale, height / 2 - (co[1] - 0.5) * scale]
