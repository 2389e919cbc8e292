"""The pictures are valid PNGs of a sensible size, for every kind and from real results."""

import io

import numpy as np
from PIL import Image

from evaluation.benchmarks import BENCHMARKS, BenchmarkResult, load_benchmark_data, score_benchmark
from evaluation.pictures import (
    GalleryPanel,
    benchmark_pictures,
    box_gallery_png,
    confusion_matrix_png,
    pr_curves_png,
    vqa_bars_png,
)


def _image(png: bytes) -> Image.Image:
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    image = Image.open(io.BytesIO(png))
    image.load()
    assert image.format == "PNG" and 200 <= image.width <= 4000 and 200 <= image.height <= 4000
    return image


def test_each_kind_of_picture_is_a_png():
    _image(confusion_matrix_png(["airport", "forest", "port"], [[3, 0, 1, 0], [0, 2, 0, 1], [1, 0, 0, 2]]))
    _image(confusion_matrix_png([f"class {i}" for i in range(45)], np.eye(45, 46, dtype=int).tolist()))
    _image(pr_curves_png({"plane": np.linspace(1, 0, 101).tolist(), "ship": [0.5] * 101}, "AP@50"))
    _image(vqa_bars_png({"presence": 62.7, "comp": 20.0, "OA": 41.0}, {"presence": 55.0, "OA": 50.0},
                        {"presence": 62.77, "comp": 79.53, "OA": 72.06}))
    square = np.zeros((64, 64, 3), dtype=np.uint8)
    panels = [GalleryPanel(square, [(0.1, 0.1, 0.5, 0.5)], [(0.2, 0.2, 0.6, 0.6)], "hbb"),
              GalleryPanel(square, [(0.1, 0.2, 0.4, 0.1, 0.5, 0.4, 0.2, 0.5)], [], "obb, nothing predicted")]
    _image(box_gallery_png(panels, "gallery"))


def test_a_benchmarks_pictures_from_its_result_records_and_predictions(converted, crafted):
    for name in ("dior_rsvg", "mar20_obb_count_then_detect"):
        benchmark = BENCHMARKS[name]
        data = load_benchmark_data(benchmark, str(converted))
        answers = crafted(benchmark, data.records)
        result = BenchmarkResult.from_dict(score_benchmark(benchmark, data.records, answers, data.train).to_dict())
        pictures = benchmark_pictures(result, data.records, answers, data.image_root)
        if name == "dior_rsvg":
            assert set(pictures) == {"dior_rsvg_gallery.png"}
        else:
            assert set(pictures) == {f"{name}_pr_AP40.png", f"{name}_pr_AP50.png", f"{name}_gallery.png"}
        for png in pictures.values():
            _image(png)
    vqa = BenchmarkResult("rsvqa_hr_phili", 4, {"presence": 50.0, "comp": 25.0, "presence balanced": 50.0,
                                                "comp balanced": 50.0, "OA": 40.0, "OA_strict": 30.0}, {"OA": 45.0})
    assert set(benchmark_pictures(vqa)) == {"rsvqa_hr_phili_question_types.png"}
    classification = BenchmarkResult("clrs", 2, {"Top-1": 50.0}, {"Top-1": 50.0}, notes={
        "confusion_matrix": {"classes": ["port", "parking"], "matrix": [[1, 0, 0], [0, 0, 1]]}})
    _image(benchmark_pictures(classification)["clrs_confusion_matrix.png"])
