import io

import numpy as np
import pytest
from PIL import Image

from mmrs.raw import Box, RawSample, Referral
from mmrs.readers.base import TileSpec
from mmrs.tiling import cut, encode_png, encode_tile, tile_key, windows

SPEC = TileSpec(size=1024, overlap=200, min_visible=0.7)


def test_windows_cover_the_scene_with_full_size_tiles_ending_at_the_border():
    wins = windows(2000, 1500, SPEC)
    assert [w[:2] for w in wins] == [(0, 0), (824, 0), (976, 0), (0, 476), (824, 476), (976, 476)]
    assert all(w[2] - w[0] == 1024 and w[3] - w[1] == 1024 for w in wins)
    assert windows(800, 600, SPEC) == [(0, 0, 800, 600)]  # small images: one tile, the image itself


def test_objects_kept_by_visible_fraction_clipped_and_shifted():
    raw = RawSample("dota", "train", "P0001", "images/P0001.png", "optical", objects=[
        Box("plane", obb=(100, 100, 200, 100, 200, 150, 100, 150)),  # only in x-tiles starting at 0
        Box("ship", hbb=(1000, 10, 1100, 30)),  # crosses x = 1024: 24 % in tile 0, all in tile 824
    ])
    tiles = {w[:2]: t for t, w in cut(raw, 2000, 1500, SPEC).tiles}
    first = tiles[(0, 0)]
    assert first.key == tile_key("P0001", (0, 0, 1024, 1024)) == "P0001__1__0___0"  # the devkit's id, rate 1
    assert first.image == "tiles/P0001__1__0___0.png" and (first.width, first.height) == (1024, 1024)
    assert [b.label for b in first.objects] == ["plane"]
    ship = tiles[(824, 0)].objects[0]
    assert ship.label == "ship" and ship.hbb == pytest.approx((176, 10, 276, 30))
    assert [b.label for b in tiles[(976, 0)].objects] == ["ship"]  # 100 % visible there too
    assert tiles[(0, 476)].objects == []  # kept as a negative tile


def test_partly_visible_object_is_clipped_to_the_tile():
    raw = RawSample("dota", "train", "P2", "images/P2.png", "optical",
                    objects=[Box("ship", hbb=(1000, 10, 1020, 30)), Box("ship", hbb=(1010, 50, 1034, 70))])
    (first, _), *_ = cut(raw, 1100, 1024, TileSpec(size=1024, overlap=0, min_visible=0.5)).tiles
    assert [b.hbb for b in first.objects] == [(1000, 10, 1020, 30), (1010, 50, 1024, 70)]


def test_what_tiling_leaves_out_is_reported_with_its_reason():
    """ImgSplit would keep the parts under the threshold (difficult "2"); we leave them out and count them."""
    raw = RawSample("dota", "train", "P3", "images/P3.png", "optical", objects=[
        Box("plane", hbb=(100, 100, 200, 150)),  # in one tile, whole
        Box("ship", hbb=(1000, 10, 1100, 30)),  # kept in tiles 824 and 976; 24 % in tile 0: a part left out
        Box("ship", hbb=(2100, 10, 2150, 40)),  # beyond the 2000 px scene
        Box("ship", hbb=(10, 10, 10, 40)),  # no area
        Box("ship", obb=(1950, 10, 2050, 10, 2050, 30, 1950, 30)),  # half outside: 50 % < 70 % everywhere
    ], referrals=[Referral("the far ship", (2100, 10, 2150, 40), "ship")])
    scene = cut(raw, 2000, 1500, SPEC)
    assert [reason for reason, _ in scene.lost] == [
        "object in no tile: outside the scene", "object in no tile: zero area",
        "object in no tile: under visibility threshold", "referred box in no tile: outside the scene"]
    assert scene.lost[2][1] == {"label": "ship", "hbb": None, "obb": (1950, 10, 2050, 10, 2050, 30, 1950, 30)}
    assert scene.parts_left_out == {"object part under visibility threshold left out of a tile": 1}
    assert sum(len(tile.objects) for tile, _ in scene.tiles) == 1 + 2


def _decoded(png: bytes) -> np.ndarray:
    """A PNG as the data loader decodes it (models.image_transform.read_image: PIL)."""
    with Image.open(io.BytesIO(png)) as image:
        return np.asarray(image)


def test_tiles_are_pixel_identical_to_a_plain_crop_of_the_decoded_scene(tmp_path):
    pixels = np.random.default_rng(0).integers(0, 256, size=(1500, 2000, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(tmp_path / "scene.png")
    with Image.open(tmp_path / "scene.png") as image:
        scene = np.asarray(image)
    for x0, y0, x1, y1 in windows(2000, 1500, SPEC):
        assert np.array_equal(_decoded(encode_tile(scene, (x0, y0, x1, y1))), pixels[y0:y1, x0:x1])


@pytest.mark.parametrize("shape, dtype", [((70, 90), np.uint8), ((70, 90, 3), np.uint8), ((70, 90, 4), np.uint8),
                                          ((70, 90), np.uint16), ((70, 90, 2), np.uint8),
                                          ((70, 90), np.bool_)])
def test_png_is_lossless_for_every_array_pil_decodes_to(shape, dtype):
    """Grey, RGB, RGBA at 8 and 16 bit through OpenCV (channel order kept); grey + alpha and 1-bit through PIL;
    cropped views (rows not contiguous) as well as whole arrays."""
    rng = np.random.default_rng(1)
    pixels = (rng.integers(0, 2, size=shape) if dtype is np.bool_ else
              rng.integers(0, np.iinfo(dtype).max + 1, size=shape)).astype(dtype)
    for array in (pixels, pixels[5:60, 10:80]):
        decoded = _decoded(encode_png(array))
        assert decoded.dtype == array.dtype and np.array_equal(decoded, array)


def test_png_is_valid_for_libpng():
    """An independent decoder, libpng through OpenCV, which checks every CRC, reads the same pixels."""
    import cv2

    rgba = np.random.default_rng(3).integers(0, 256, size=(300, 400, 4), dtype=np.uint8)
    grey16 = np.random.default_rng(4).integers(0, 65536, size=(300, 400), dtype=np.uint16)
    for pixels, opencv_order in ((rgba[..., :3], cv2.COLOR_BGR2RGB), (rgba, cv2.COLOR_BGRA2RGBA), (grey16, None)):
        decoded = cv2.imdecode(np.frombuffer(encode_png(pixels), np.uint8), cv2.IMREAD_UNCHANGED)
        assert np.array_equal(decoded if opencv_order is None else cv2.cvtColor(decoded, opencv_order), pixels)


def test_png_encoding_is_deterministic():
    pixels = np.random.default_rng(2).integers(0, 256, size=(300, 400, 3), dtype=np.uint8)
    assert encode_png(pixels) == encode_png(pixels.copy())
