"""The five conversions on hand-made RawSamples: exact records."""

import io
import random

import pytest

from mmrs.convert import (
    _box_text,
    _geometry,
    _normalised,
    prepare_objects,
    prepare_objects_batch,
    to_records,
    to_records_batch,
)
from mmrs.geometry import (
    clip_hbb,
    clip_polygon,
    format_box,
    normalize_points,
    order_obb,
    order_quad,
    polygon_hbb,
    rotated_rect_corners,
    square_frame,
)
from mmrs.quarantine import Quarantine
from mmrs.raw import Box, QAPair, RawSample, Referral
from mmrs.readers.base import SourceSpec


def _spec(tasks, **kw):
    return SourceSpec(name="demo", title="Demo", tasks=tuple(tasks), modality="optical", reader=lambda *a: iter(()),
                      **kw)


def _raw(**kw):
    return RawSample(source="demo", split="train", key="img1", image="images/img1.png", modality="optical", **kw)


def test_category_to_instruction_offers_the_reference_categories():
    spec = _spec(["classification"], categories=("dense_residential", "parking_lot"))
    (record,) = to_records(_raw(label="parking_lot"), spec, 256, 256, Quarantine("demo"))
    assert record["id"] == "demo/train/img1/classification"
    assert record["conversations"] == [
        {"from": "human", "value": "<image>\nWhat is the category of this remote sensing image? Answer the "
                                   "question using a single word or phrase. Reference categories include "
                                   "dense residential, parking lot."},
        {"from": "gpt", "value": "parking lot"}]
    assert record["target"] == {"label": "parking_lot", "answer": "parking lot"}


def test_caption_to_instruction_removes_duplicates_one_round_each():
    q = Quarantine("demo")
    raw = _raw(captions=["Many planes are parked.", "many planes are parked .", "A runway."])
    (record,) = to_records(raw, _spec(["captioning"]), 224, 224, q)
    assert [t["value"] for t in record["conversations"][1::2]] == ["Many planes are parked.", "A runway."]
    assert record["conversations"][0]["value"].startswith("<image>\nPlease provide a one-sentence caption")
    assert not record["conversations"][2]["value"].startswith("<image>")
    assert q.fixed["duplicate caption removed"] == 1


def test_vqa_to_instruction_rounds_with_suffix():
    raw = _raw(qa=[QAPair("Is there a ship?", "yes", "presence"), QAPair("How many ships?", "3", "count")])
    (record,) = to_records(raw, _spec(["vqa"]), 256, 256, Quarantine("demo"))
    assert record["conversations"][2]["value"] == "How many ships? Answer the question using a single word or phrase."
    assert record["target"]["qa"][1] == {"question": "How many ships?", "answer": "3", "type": "count"}


def test_detection_to_instruction_hbb_and_obb_with_clipping_and_degenerate_boxes():
    q = Quarantine("demo")
    raw = _raw(objects=[
        Box("small-vehicle", hbb=(10, 50, 30, 60)),
        Box("small-vehicle", hbb=(60, 10, 80, 20)),
        Box("plane", obb=(150, 20, 210, 40, 200, 70, 140, 50)),  # crosses the right border (W = 200)
        Box("ship", hbb=(5, 5, 5, 9)),  # zero width
    ])
    hbb, obb = to_records(raw, _spec(["detection_hbb", "detection_obb"]), 200, 100, q)
    # padded square: side 200, pad_y0 = 50
    assert hbb["conversations"][1]["value"] == (
        "There are three objects shown in the image, including one plane [0.70,0.35,1.00,0.60], "
        "and two small vehicles [0.30,0.30,0.40,0.35;0.05,0.50,0.15,0.55].")
    assert [t["value"] for t in hbb["conversations"][2::2]] == [
        "Detect all planes shown in the image and describe using horizontal bounding boxes.",
        "Detect all small vehicles shown in the image and describe using horizontal bounding boxes."]
    assert hbb["conversations"][5]["value"] == \
        "There are two small vehicles [0.30,0.30,0.40,0.35;0.05,0.50,0.15,0.55] in the image."
    assert obb["conversations"][0]["value"].endswith("describe using oriented bounding boxes.")
    plane = obb["target"]["boxes"][0]
    assert max(plane[0::2]) <= 200 and len(plane) == 8
    assert q.skipped["degenerate box"] == 1 and q.fixed["box clipped to image"] == 1
    assert hbb["target"]["labels"] == ["small-vehicle", "plane", "small-vehicle"]  # reading order


def test_images_without_objects_are_negatives():
    (record,) = to_records(_raw(), _spec(["detection_hbb"]), 100, 100, Quarantine("demo"))
    assert record["conversations"][1]["value"] == "There are no objects shown in the image."
    assert len(record["conversations"]) == 2


def test_vg_to_instruction_grounding_and_region_caption():
    raw = _raw(referrals=[Referral("The ship on the left", (0, 40, 20, 60), "ship")])
    ground, region = to_records(raw, _spec(["grounding", "region_caption"]), 100, 100, Quarantine("demo"))
    assert ground["conversations"][0]["value"] == ("<image>\nPlease provide the horizontal bounding box coordinate "
                                                   "of the region which is described as: The ship on the left")
    assert ground["conversations"][1]["value"] == "[0.00,0.40,0.20,0.60]"
    assert region["conversations"][0]["value"].endswith("remote sensing image: [0.00,0.40,0.20,0.60].")
    assert region["conversations"][1]["value"] == "The ship on the left"


def test_ignored_labels_and_display_names():
    spec = _spec(["detection_hbb"],
                 options={"ignore_labels": ["DontCare"], "display_names": {"storagetank": "storage tank"}})
    q = Quarantine("demo")
    raw = _raw(objects=[Box("DontCare", hbb=(0, 0, 5, 5)), Box("storagetank", hbb=(10, 10, 20, 20))])
    (record,) = to_records(raw, spec, 100, 100, q)
    assert "one storage tank [" in record["conversations"][1]["value"]
    assert q.fixed["ignored class dropped"] == 1


def test_classification_needs_categories():
    with pytest.raises(ValueError, match="categories"):
        to_records(_raw(label="x"), _spec(["classification"]), 10, 10, Quarantine("demo"))


@pytest.mark.parametrize("hbb", [(10, 50, 30, 60), (0, 0, 200, 100), (150.5, 20.25, 260, 70), (-20, -5, 40, 30)])
def test_hbb_fast_path_matches_the_general_outline_route(hbb):
    """An HBB skips box_corners / clip_polygon / order_obb; the result is what its outline gives that way."""
    x0, y0, x1, y1 = hbb
    spec = _spec(["detection_hbb", "detection_obb"])
    fast, = prepare_objects(_raw(objects=[Box("plane", hbb=hbb)]), spec, 200, 100, Quarantine("demo"))
    outline = (x0, y0, x1, y0, x1, y1, x0, y1)
    general, = prepare_objects(_raw(objects=[Box("plane", hbb=hbb, obb=outline)]), spec, 200, 100,
                               Quarantine("demo"))
    assert fast.hbb == general.hbb and fast.hbb_text == general.hbb_text and fast.obb_text == general.obb_text
    assert fast.obb == pytest.approx(general.obb, abs=1e-9)


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
        want = (tuple(round(c, 4) for c in hbb), tuple(round(c, 4) for c in obb), format_box(hbb), format_box(obb))
        assert repr(numbers) == repr(want)
        assert numbers[2] == _box_text(tuple(hbb))


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
        assert order_quad(quad) == tuple(c for p in order_obb(points) for c in p), quad


def test_outlines_inside_the_image_skip_clipping_with_the_same_result():
    """Four-point outlines inside the image take a fused route (no point lists, clip_polygon or order_obb);
    it gives what the general route gives."""
    rng = random.Random(2)
    for quad in _random_quads(rng, 2000, 300, 200):
        for box in (Box("plane", obb=quad), Box("plane", hbb=(-5, 10, 20, 30), obb=quad)):
            hbb, clipped, outline = _geometry(box, 300, 200)
            corners = list(zip(quad[0::2], quad[1::2], strict=True))
            want_hbb = box.hbb or polygon_hbb(corners)
            visible = clip_polygon(corners, 0, 0, 300, 200)
            assert hbb == want_hbb and clipped == clip_hbb(want_hbb, 300, 200)
            assert outline == (None if visible is None else tuple(c for p in order_obb(visible) for c in p))


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
