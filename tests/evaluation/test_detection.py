"""Detection AP: equal to pycocotools' COCOeval precision array at IoU 0.4 and 0.5 (HBB), and the same
numbers from the polygon evaluator on axis-aligned boxes (OBB)."""

import contextlib
import io
import math
import random

import numpy as np
import pytest
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from evaluation.detection import THRESHOLDS, DetectedBox, TruthBox, average_precision
from evaluation.iou import hbb_iou_matrix, obb_iou_matrix


def coco_ap(truths, detections):
    """AP@40, AP@50 from COCOeval's precision array (one area range, no cap on detections per image);
    category ids in sorted class order, image ids as given."""
    classes = sorted({t.label for t in truths} | {d.label for d in detections})
    ids = {c: i + 1 for i, c in enumerate(classes)}
    images = sorted({t.image for t in truths} | {d.image for d in detections})

    def xywh(box):
        return [box[0], box[1], box[2] - box[0], box[3] - box[1]]

    dataset = {"images": [{"id": i} for i in images], "categories": [{"id": v, "name": k} for k, v in ids.items()],
               "annotations": [{"id": n + 1, "image_id": t.image, "category_id": ids[t.label], "iscrowd": 0,
                                "bbox": xywh(t.box), "area": xywh(t.box)[2] * xywh(t.box)[3]}
                               for n, t in enumerate(truths)]}
    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO()
        gt.dataset = dataset
        gt.createIndex()
        dt = gt.loadRes([{"image_id": d.image, "category_id": ids[d.label], "bbox": xywh(d.box), "score": d.score}
                         for d in detections])
        evaluator = COCOeval(gt, dt, "bbox")
        evaluator.params.iouThrs = np.array(THRESHOLDS)
        evaluator.params.maxDets = [10 ** 6]
        evaluator.params.areaRng, evaluator.params.areaRngLbl = [[0, 1e10]], ["all"]
        evaluator.evaluate()
        evaluator.accumulate()
    precision = evaluator.eval["precision"][:, :, :, 0, 0]
    return {f"AP@{round(100 * t)}": 100 * float(np.mean(precision[i][precision[i] > -1]))
            for i, t in enumerate(THRESHOLDS)}


def fixture(seed: int):
    """Several images and classes; misses, duplicates, false positives, tied and distinct scores; box
    coordinates on a 1/64 grid, so every IoU is exact in floating point (0.5 ties included)."""
    rng = random.Random(seed)
    classes = ["plane", "ship", "storage tank"]
    truths, detections = [], []
    for image in range(rng.randint(2, 6)):
        for _ in range(rng.randint(0, 6)):
            x, y, w, h = rng.randint(0, 48), rng.randint(0, 48), rng.randint(1, 16), rng.randint(1, 16)
            box = (x / 64, y / 64, (x + w) / 64, (y + h) / 64)
            label = rng.choice(classes)
            truths.append(TruthBox(image, label, box))
            for _ in range(rng.choice([0, 1, 1, 2])):  # misses (0), hits and duplicates (2)
                dx, dy = rng.randint(-3, 3), rng.randint(-3, 3)
                jitter = ((x + dx) / 64, (y + dy) / 64, (x + dx + w + rng.randint(0, 2)) / 64,
                          (y + dy + h + rng.randint(0, 2)) / 64)
                detections.append(DetectedBox(image, label if rng.random() < 0.85 else rng.choice(classes), jitter,
                                              rng.choice([1.0, 0.5, 0.25, rng.random()])))
        for _ in range(rng.randint(0, 2)):  # false positives
            x, y = rng.randint(0, 56), rng.randint(0, 56)
            detections.append(DetectedBox(image, rng.choice(classes), (x / 64, y / 64, (x + 8) / 64, (y + 8) / 64),
                                          rng.random()))
    return truths, detections


@pytest.mark.parametrize("seed", range(40))
def test_hbb_ap_equals_cocoeval_at_iou_0_4_and_0_5(seed):
    truths, detections = fixture(seed)
    if not truths or not detections:
        pytest.skip("COCO needs both")
    assert average_precision(truths, detections).ap == coco_ap(truths, detections)


def test_a_fixture_with_every_case_by_hand():
    truths = [TruthBox(1, "plane", (0.0, 0.0, 0.5, 0.5)), TruthBox(1, "plane", (0.5, 0.5, 1.0, 1.0)),
              TruthBox(2, "plane", (0.0, 0.0, 0.25, 0.25)), TruthBox(2, "ship", (0.5, 0.0, 1.0, 0.25))]
    detections = [
        DetectedBox(1, "plane", (0.0, 0.0, 0.25, 0.5), 0.9),  # IoU exactly 0.5 with the first: a match (>=)
        DetectedBox(1, "plane", (0.0, 0.0, 0.5, 0.5), 0.8),  # duplicate of the matched truth: false positive
        DetectedBox(2, "plane", (0.0, 0.0, 0.25, 0.25), 0.7),  # exact
        DetectedBox(2, "ship", (0.75, 0.0, 1.0, 0.25), 0.6),  # IoU 0.5 with the ship
        DetectedBox(2, "car", (0.0, 0.0, 1.0, 1.0), 0.99),  # a class without truth is not scored
    ]
    score = average_precision(truths, detections)
    assert score.ap == coco_ap(truths, detections)
    # plane: ranks TP, FP, TP of 3 truths -> precision 1, 2/3 up to recall 2/3, then 0
    plane = [1.0] * 34 + [2 / 3] * 33 + [0.0] * 34
    assert score.precision["AP@50"]["plane"] == pytest.approx(plane)
    assert score.per_class["AP@50"]["ship"] == pytest.approx(100.0)
    assert score.ap["AP@50"] == pytest.approx(100 * (np.mean(plane) + 1.0) / 2)
    assert score.classes == ("plane", "ship") and score.detections == 4


def test_equal_scores_rank_images_in_key_order_then_the_order_given():
    truths = [TruthBox(1, "plane", (0.0, 0.0, 0.5, 0.5)), TruthBox(2, "plane", (0.0, 0.0, 0.5, 0.5))]
    miss_first = [DetectedBox(1, "plane", (0.6, 0.6, 0.9, 0.9), 1.0),
                  DetectedBox(1, "plane", (0.0, 0.0, 0.5, 0.5), 1.0),
                  DetectedBox(2, "plane", (0.0, 0.0, 0.5, 0.5), 1.0)]
    hit_first = [miss_first[1], miss_first[0], miss_first[2]]
    assert average_precision(truths, hit_first).ap["AP@50"] > average_precision(truths, miss_first).ap["AP@50"]
    assert average_precision(truths, miss_first).ap == coco_ap(truths, miss_first)


def _polygon(box, turn=0):
    x1, y1, x2, y2 = box
    corners = [(x1, y1), (x2, y1), (x2, y2), (x1, y2)]
    corners = corners[turn:] + corners[:turn]  # any starting corner
    return tuple(c for p in corners for c in p)


@pytest.mark.parametrize("seed", range(20))
def test_obb_ap_equals_hbb_ap_on_axis_aligned_boxes(seed):
    truths, detections = fixture(seed)
    oriented = average_precision([TruthBox(t.image, t.label, _polygon(t.box, seed % 4)) for t in truths],
                                 [DetectedBox(d.image, d.label, _polygon(d.box), d.score) for d in detections],
                                 oriented=True)
    hbb = average_precision(truths, detections)
    assert oriented.ap == hbb.ap and oriented.precision == hbb.precision


def test_polygon_iou_of_rotated_boxes():
    square = (0.25, 0.25, 0.75, 0.25, 0.75, 0.75, 0.25, 0.75)
    c, r = 0.5, 0.25 * math.sqrt(2)  # the same square turned by 45 degrees
    diamond = (c, c - r, c + r, c, c, c + r, c - r, c)
    inter = 0.25 - 4 * (r - 0.25) ** 2  # an octagon: the diamond's four tips, right triangles, cut off
    iou = obb_iou_matrix([diamond], [square])[0, 0]
    assert iou == pytest.approx(inter / (0.5 - inter))
    assert hbb_iou_matrix([(0.0, 0.0, 0.5, 0.5)], [(0.25, 0.0, 0.75, 0.5)])[0, 0] == pytest.approx(1 / 3)
