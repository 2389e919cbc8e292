"""The conversion's fast paths equal the plain route: function by function, and over the whole sample corpus
(byte-identical shards and quarantine reports)."""

import hashlib
import io
import random

import pytest

from mmrs.build import convert_source
from mmrs.convert import object_geometry, prepare_objects, to_records
from mmrs.fastpath import (
    _box_text,
    _normalised,
    fast_geometry,
    order_quad,
    prepare_objects_batch,
    rare_gc_pauses,
    to_records_batch,
)
from mmrs.geometry import (
    clip_hbb,
    clip_polygon,
    format_box,
    normalize_points,
    order_obb,
    polygon_hbb,
    rotated_rect_corners,
    square_frame,
    visible_box,
)
from mmrs.quarantine import Quarantine
from mmrs.raw import Box, RawSample
from mmrs.readers.base import SourceSpec
from mmrs.registry import SOURCES
from mmrs.synthetic.corpus import DATASETS, generate_dataset


def _spec(tasks, **kw):
    return SourceSpec(name="demo", title="Demo", tasks=tuple(tasks), modality="optical", reader=lambda *a: iter(()),
                      **kw)


def test_vectorised_normalisation_matches_the_scalar_route() -> None:
    """All images' objects in one call, each with its own frame: the numbers normalize_points, round(c, 4)
    and format_box give one by one."""
    rng = random.Random(0)
    boxes, sizes = [], []
    for width, height in ((800, 800), (1024, 683), (333, 1000), (7, 5)):
        side, px, py = square_frame(width, height)
        image = []
        for _ in range(300):
            image.append(tuple(rng.uniform(0, width) if i % 2 == 0 else rng.uniform(0, height) for i in range(12)))
        for _ in range(300):  # whole pixels: their products by 100 or 10,000 often land on a half exactly
            image.append(tuple(float(rng.randrange(width + 1) if i % 2 == 0 else rng.randrange(height + 1))
                               for i in range(12)))
        # halves and quarter-cents: the rounding ties that a product may push either way
        image.append(tuple(float(c) for c in (0, 0, width, height, 0.125 * side - px, 0.00005 * side - py,
                                                 0.005 * side - px, 0.015 * side - py, 0.125, 0.5, 1, 2)))
        image.append((-0.0, 0.0, width, height, -3.0, 1e9, float("nan"), 1.0, 2.0, 3.0, 4.0, 5.0))
        boxes += image
        sizes += [(width, height)] * len(image)
    got = _normalised(boxes, [square_frame(*size) for size in sizes])
    for box, (width, height), numbers in zip(boxes, sizes, got, strict=True):
        hbb, obb = normalize_points(box[:4], width, height), normalize_points(box[4:], width, height)
        want = (tuple(round(c, 4) for c in hbb), tuple(round(c, 4) for c in obb), visible_box(format_box(hbb)),
                visible_box(format_box(obb)))
        assert repr(numbers) == repr(want)
        assert numbers[2] == visible_box(_box_text(tuple(hbb)))


def _random_quads(rng: random.Random, n: int, width: float, height: float) -> list[tuple[float, ...]]:
    quads = []
    for _ in range(n):
        corners = rotated_rect_corners(rng.uniform(0, width), rng.uniform(0, height), rng.uniform(1, 60),
                                       rng.uniform(1, 30), rng.uniform(-4, 4))
        start = rng.randrange(4)
        corners = corners[start:] + corners[:start]
        if rng.random() < 0.5:
            corners = corners[::-1]
        quads.append(tuple(c for p in corners for c in p))
    return quads


def test_order_quad_is_order_obb_flat():
    rng = random.Random(1)
    quads = _random_quads(rng, 2000, 500, 400)
    quads += [(0, 0, 10, 0, 10, 10, 0, 10), (10, 0, 0, 10, 10, 10, 0, 0), (5, 0, 0, 5, 5, 10, 10, 5),  # ties
              (3, 4, 4, 3, 4, 3, 3, 4), (2, 2, 2, 2, 2, 2, 2, 2), (1.5, 0, 0, 1.5, 1.5, 3, 3, 1.5)]
    for quad in quads:
        points = list(zip(quad[0::2], quad[1::2], strict=True))
        for origin in ((0.0, 0.0), (0.0, -64.0), (-100.0, 0.0)):
            assert order_quad(quad, origin) == tuple(c for p in order_obb(points, origin) for c in p), quad


def test_outlines_inside_the_image_skip_clipping_with_the_same_result():
    """Four-point outlines inside the image take a fused route (no point lists, clip_polygon or order_obb);
    it gives what the general route gives."""
    rng = random.Random(2)
    for quad in _random_quads(rng, 2000, 300, 200):
        for box in (Box("plane", obb=quad), Box("plane", hbb=(-5, 10, 20, 30), obb=quad)):
            hbb, clipped, outline = fast_geometry(box, 300, 200)
            corners = list(zip(quad[0::2], quad[1::2], strict=True))
            want_hbb = box.hbb or polygon_hbb(corners)
            visible = clip_polygon(corners, 0, 0, 300, 200)
            assert hbb == want_hbb and clipped == clip_hbb(want_hbb, 300, 200)
            assert outline == (None if visible is None else tuple(c for p in order_obb(visible, (0, -50)) for c in p))
            assert fast_geometry(box, 300, 200) == object_geometry(box, 300, 200)


def test_a_batch_of_images_converts_as_each_image_alone():
    rng = random.Random(3)
    spec = _spec(["detection_hbb", "detection_obb"], options={"ignore_labels": ["ignored"]})
    images = []
    for i, (width, height) in enumerate([(300, 200), (128, 512), (64, 64), (300, 200), (1000, 999)]):
        objects = [Box(rng.choice(["ship", "plane", "ignored"]), obb=quad)
                   for quad in _random_quads(rng, 15, width * 1.1, height * 1.1)]  # some cross the border
        objects += [Box("ship", hbb=(10, 10, 10, 40)), Box("tank", hbb=(5.5, 6.25, 40, 30))]  # degenerate, HBB
        if i == 2:
            objects = []
        if i == 3:  # a five-point outline: the scalar route for this image
            objects.append(Box("pond", obb=(10, 10, 50, 10, 60, 30, 40, 50, 10, 40)))
        raw = RawSample(source="demo", split="train", key=f"img{i}", image=f"images/img{i}.png", modality="sar",
                        objects=objects)
        images.append((raw, width, height))
    alone_sink, batch_sink = io.StringIO(), io.StringIO()
    alone_q, batch_q = Quarantine("demo", alone_sink), Quarantine("demo", batch_sink)
    alone = [to_records(raw, spec, width, height, alone_q) for raw, width, height in images]
    assert to_records_batch(images, spec, batch_q) == alone
    assert prepare_objects_batch(images, spec, [Quarantine("demo")] * len(images)) == [
        prepare_objects(raw, spec, width, height, Quarantine("demo")) for raw, width, height in images]
    assert batch_sink.getvalue() == alone_sink.getvalue() and batch_q.summary() == alone_q.summary()
    assert alone_q.skipped["degenerate box"] >= 5 and alone_q.fixed["box clipped to image"] > 0
    assert any(len(box) == 10 for box in alone[3][1]["target"]["boxes"])  # the five-point outline went through



def test_rare_gc_pauses_restores_the_collector_thresholds():
    import gc

    before = gc.get_threshold()
    with pytest.raises(RuntimeError), rare_gc_pauses(12_345):
        assert gc.get_threshold() == (12_345, *before[1:])
        raise RuntimeError("a reader failed")
    assert gc.get_threshold() == before


def _digests(folder):
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file() and p.suffix in (".jsonl", ".json")}


@pytest.mark.parametrize("name", sorted(DATASETS))
def test_the_sample_corpus_converts_to_the_same_bytes_either_way(tmp_path, name):
    generate_dataset(name, tmp_path / "raw")
    root = str(tmp_path / "raw" / DATASETS[name].folder)
    convert_source(SOURCES[name], root, str(tmp_path / "fast"))
    convert_source(SOURCES[name], root, str(tmp_path / "plain"), fast=False)
    fast, plain = _digests(tmp_path / "fast"), _digests(tmp_path / "plain")
    assert fast and fast == plain
