"""A glance at a generated dataset: its first images side by side, each object's footprint drawn in red.

For the sample-corpus assets' metadata: a person sees what the generator drew before reading any numbers.
"""

from __future__ import annotations

import io
from itertools import islice

import numpy as np
from PIL import Image, ImageDraw

from mmrs.imaging import to_rgb_uint8
from mmrs.synthetic.corpus import DATASETS
from mmrs.synthetic.samples import iter_samples


def thumbnails_png(name: str, seed: int = 0, scale: int = 1, count: int = 4, side: int = 160) -> bytes:
    """PNG of the dataset's first `count` images, each fitted into `side` x `side` px, footprints drawn."""
    tiles = []
    for image in islice(iter_samples(DATASETS[name], seed, scale), count):
        rgb = Image.fromarray(to_rgb_uint8(np.asarray(image.pixels())))
        factor = side / max(rgb.size)
        rgb = rgb.resize((max(1, round(rgb.width * factor)), max(1, round(rgb.height * factor))), Image.BILINEAR)
        draw = ImageDraw.Draw(rgb)
        for obj in image.scene.objects:
            draw.polygon([(x * factor, y * factor) for x, y in obj.corners], outline=(255, 40, 40))
        draw.text((3, 2), image.scene_class, fill=(255, 255, 0))
        tiles.append(rgb)
    sheet = Image.new("RGB", (side * len(tiles) + 4 * (len(tiles) - 1), side), (255, 255, 255))
    for i, tile in enumerate(tiles):
        sheet.paste(tile, (i * (side + 4), 0))
    buffer = io.BytesIO()
    sheet.save(buffer, format="PNG")
    return buffer.getvalue()
