import math

import numpy as np
import pytest
from shapely.geometry import Point, Polygon

from mmrs.synthetic.render import object_mask, render
from mmrs.synthetic.scene import SCENE_CLASSES, sample_scene

ALL = [(cls, sensor) for cls, recipe in SCENE_CLASSES.items() for sensor in recipe.sensors]


def _scene(cls, sensor, seed=0, size=(320, 256), edge=False):
    gsd = 0.06 if cls == "street" else 1.0
    return sample_scene(np.random.default_rng(seed), cls, sensor, *size, gsd, edge_objects=edge)


@pytest.mark.parametrize(("cls", "sensor"), ALL)
def test_same_seed_same_scene_and_pixels(cls, sensor):
    a, b = _scene(cls, sensor, seed=3), _scene(cls, sensor, seed=3)
    assert a == b
    assert np.array_equal(render(a), render(b))


@pytest.mark.parametrize(("cls", "sensor"), ALL)
def test_objects_inside_image_disjoint_and_on_the_right_ground(cls, sensor):
    scene = _scene(cls, sensor, seed=5)
    polygons = [Polygon(o.corners) for o in scene.objects]
    frame = Polygon([(0, 0), (scene.width, 0), (scene.width, scene.height), (0, scene.height)])
    for obj, poly in zip(scene.objects, polygons, strict=True):
        assert frame.contains(poly)
        if scene.ground.water:
            on_water = Polygon(scene.ground.water).contains(Point(obj.cx, obj.cy))
            assert on_water == (obj.kind == "ship")
    for i, p in enumerate(polygons):
        for q in polygons[i + 1:]:
            assert not p.intersects(q)


@pytest.mark.parametrize(("cls", "sensor"), [c for c in ALL if SCENE_CLASSES[c[0]].objects])
def test_obb_encloses_every_painted_pixel(cls, sensor):
    scene = _scene(cls, sensor, seed=11)
    for i, obj in enumerate(scene.objects):
        ys, xs = np.nonzero(object_mask(scene, i))
        assert xs.size > 0, "every object paints pixels"
        grown = Polygon(obj.corners).buffer(1.0)  # one pixel of rasterisation slack
        assert all(grown.contains(Point(x + 0.5, y + 0.5)) for x, y in zip(xs, ys, strict=True))


def test_masks_are_disjoint_so_counts_equal_visible_objects():
    scene = _scene("parking_lot", "optical", seed=2)
    masks = np.stack([object_mask(scene, i) for i in range(len(scene.objects))])
    assert len(scene.objects) >= 12
    assert masks.sum(axis=0).max() == 1


def test_edge_objects_may_cross_the_border():
    crossing = 0
    for seed in range(6):
        scene = _scene("parking_lot", "optical", seed=seed, edge=True)
        crossing += sum(1 for o in scene.objects
                        if min(x for x, _ in o.corners) < 0 or max(x for x, _ in o.corners) > scene.width)
    assert crossing > 0


def test_unknown_sensor_for_class_is_refused():
    with pytest.raises(ValueError, match="not defined for sensor"):
        _scene("forest", "sar")


def test_object_sizes_follow_gsd():
    coarse = sample_scene(np.random.default_rng(0), "airport", "optical", 512, 512, 2.0)
    fine = sample_scene(np.random.default_rng(0), "airport", "optical", 512, 512, 0.5)
    assert np.median([o.length for o in fine.objects]) > 2.5 * np.median([o.length for o in coarse.objects])
    assert all(math.isfinite(o.angle) for o in fine.objects)
