"""The five conversions on hand-made RawSamples: exact records."""

import pytest

from mmrs.convert import prepare_objects, to_records
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
    """An HBB alone skips box_corners / clip_polygon / order_obb; the result is what its outline gives that way."""
    x0, y0, x1, y1 = hbb
    spec = _spec(["detection_hbb", "detection_obb"])
    fast, = prepare_objects(_raw(objects=[Box("plane", hbb=hbb)]), spec, 200, 100, Quarantine("demo"))
    outline = (x0, y0, x1, y0, x1, y1, x0, y1)
    general, = prepare_objects(_raw(objects=[Box("plane", hbb=hbb, obb=outline)]), spec, 200, 100,
                               Quarantine("demo"))
    assert fast.hbb == general.hbb and fast.hbb_text == general.hbb_text and fast.obb_text == general.obb_text
    assert fast.obb == pytest.approx(general.obb, abs=1e-9)


def test_obb_corners_are_ordered_in_the_frame_they_are_written_in():
    """640x512 (HIT-UAV): padded by 64 px at the top. In pixels (0, 45) is closest to the origin, but the
    written numbers start with the corner closest to the padded square's origin, (50, 0) -> 0.08,0.10."""
    quad = (0, 45, 50, 0, 60, 11, 10, 56)
    spec = _spec(["detection_obb"])
    (obj,) = prepare_objects(_raw(objects=[Box("plane", obb=quad)]), spec, 640, 512, Quarantine("demo"))
    assert obj.obb_text == "0.08,0.10,0.09,0.12,0.02,0.19,0.00,0.17"
    written = [tuple(float(v) for v in obj.obb_text.split(",")[i:i + 2]) for i in range(0, 8, 2)]
    assert min(written, key=lambda p: (p[0] ** 2 + p[1] ** 2, p[1], p[0])) == written[0]
