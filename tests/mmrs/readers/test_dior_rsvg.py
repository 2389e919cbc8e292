"""DIOR-RSVG grounding reader against datasets.md G1, section H and the sample corpus."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest
from PIL import Image

from mmrs.geometry import clip_hbb
from mmrs.quarantine import Quarantine
from mmrs.raw import RawSample, Referral
from mmrs.readers.dior_rsvg import SOURCES
from mmrs.storage import MissingFileError, SourceRoot
from mmrs.synthetic.corpus import DATASETS, DIOR_OBJECTS, generate_dataset
from mmrs.synthetic.samples import iter_samples
from mmrs.synthetic.truth import referring_expressions

SPEC = SOURCES[0]
ROUND_TOL = 0.5 + 1e-6


def write(path: Path, data: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(data, encoding="utf-8")


def obj(name: str, box: tuple[int, int, int, int], description: str) -> str:
    coords = "".join(f"<{t}>{v}</{t}>" for t, v in zip(("xmin", "ymin", "xmax", "ymax"), box, strict=True))
    return (f"<object><name>{name}</name><pose>Unspecified</pose><bndbox>{coords}</bndbox>"
            f"<description>{description}</description></object>")


def doc(stem: str, *objects: str, size: bool = True) -> str:
    size_xml = "<size><width>800</width><height>800</height><depth>3</depth></size>" if size else ""
    return f"<annotation><filename>{stem}.jpg</filename>{size_xml}" + "".join(objects) + "</annotation>\n"


def read(root: Path) -> tuple[list[RawSample], Quarantine]:
    quarantine = Quarantine("dior_rsvg")
    return list(SPEC.reader(SourceRoot(str(root)), SPEC, quarantine)), quarantine


@pytest.fixture
def rsvg_root(tmp_path: Path) -> Path:
    ann = tmp_path / "Annotations"
    positional = ("<object><cls>ship</cls><pose>Unspecified</pose><box><a>1</a><b>2</b><c>3</c><d>4</d></box>"
                  "<text>the ship at the top</text></object>")
    files = {
        "00001": doc("00001", obj("vehicle", (402, 310, 431, 352), "The vehicle on the left of the white building"),
                     obj("expressway-service-area", (10, 20, 30, 40), "  the service area\n   near the road ")),
        "00002": "<annotation><object><name>ship</name></object><object><name>ship",  # 2 objects, malformed
        "00003": doc("00003", positional, obj("ship", (5, 6, 7, 8), ""), obj("ship", (5, 6, 7, 8), "a"), size=False),
        "00004": doc("00004", obj("helicopter", (1, 1, 2, 2), "the helicopter"), obj("dam", (9, 9, 99, 99), "the dam")),
        "00005": doc("00005", obj("bridge", (1, 1, 2, 2), "the bridge without an image")),
        "00006": "",
        "00007": doc("00007", obj("windmill", (3, 3, 4, 4), "the windmill nobody lists"),
                     obj("Expressway-toll-station", (7, 7, 8, 8), "the toll station")),
    }
    (tmp_path / "JPEGImages").mkdir()
    for stem, text in files.items():
        write(ann / f"{stem}.xml", text)
        if stem != "00005":  # 00005's image is missing
            Image.new("RGB", (8, 8)).save(tmp_path / "JPEGImages" / f"{stem}.jpg")
    # global indices: 00001 -> 0, 1; 00002 -> 2, 3; 00003 -> 4, 5, 6; 00004 -> 7, 8; 00005 -> 9; 00007 -> 10, 11
    write(tmp_path / "train.txt", "0\n4\n5\n8\n")
    write(tmp_path / "val.txt", "1\n6\n11\n\nabc\n")
    write(tmp_path / "test.txt", "0\r\n2\n3\n7\n9\n11\n99\n")
    return tmp_path


def test_split_files_select_global_object_indices(rsvg_root: Path) -> None:
    samples, quarantine = read(rsvg_root)

    def sample(split: str, key: str, referrals: list[Referral], size: int | None = 800) -> RawSample:
        return RawSample("dior_rsvg", split, key, f"JPEGImages/{key}.jpg", "optical", size, size, referrals=referrals)

    assert samples == [
        sample("train", "00001", [Referral("The vehicle on the left of the white building", (402, 310, 431, 352),
                                           "vehicle")]),  # index 0 is in test.txt too: train wins
        sample("val", "00001", [Referral("the service area near the road", (10, 20, 30, 40),
                                         "Expressway-Service-area")]),
        sample("train", "00003", [Referral("the ship at the top", (1, 2, 3, 4), "ship")], size=None),
        sample("train", "00004", [Referral("the dam", (9, 9, 99, 99), "dam")]),
        sample("val", "00007", [Referral("the toll station", (7, 7, 8, 8), "Expressway-toll-station")]),
    ]
    assert quarantine.summary() == {
        "skipped": {"empty description": 2, "image missing": 1, "index out of range": 1, "malformed split line": 1,
                    "malformed xml": 1, "unknown class": 1},
        "fixed": {"index in several split files": 2},
    }


@pytest.mark.parametrize("missing", ["Annotations", "JPEGImages"])
def test_missing_required_file_is_named(rsvg_root: Path, missing: str) -> None:
    target = rsvg_root / missing
    for child in target.iterdir():
        child.unlink()
    target.rmdir()
    with pytest.raises(MissingFileError, match=missing):
        read(rsvg_root)


def test_missing_split_file_is_an_absent_split(rsvg_root: Path) -> None:
    """A copy without val.txt converts train and test and names the absent split; none: an error."""
    (rsvg_root / "val.txt").unlink()
    samples, quarantine = read(rsvg_root)
    assert samples and "val" not in {s.split for s in samples} and "val.txt" in quarantine.absent["val"]
    for name in ("train.txt", "test.txt"):
        (rsvg_root / name).unlink()
    with pytest.raises(MissingFileError, match="val.txt"):
        read(rsvg_root)


def test_registered_source() -> None:
    assert (SPEC.name, SPEC.title, SPEC.paper_samples, SPEC.tasks) == (
        "dior_rsvg", "DIOR-RSVG", 30820, ("grounding", "region_caption"))


# --- the sample corpus -------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def rsvg_corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("dior_rsvg")
    generate_dataset("dior_rsvg", out, seed=0, scale=1)
    return out / DATASETS["dior_rsvg"].folder


def test_corpus_matches_the_generator(rsvg_corpus: Path) -> None:
    samples, quarantine = read(rsvg_corpus)
    keyed = {(s.split, s.key): s for s in samples}
    assert len(keyed) == len(samples)
    expected = {}
    for sample in iter_samples(DATASETS["dior_rsvg"], 0, 1):
        scene = sample.scene
        pairs = [(r.text, clip_hbb(scene.objects[r.index].hbb, scene.width, scene.height),
                  DIOR_OBJECTS[r.kind]) for r in referring_expressions(scene) if r.kind in DIOR_OBJECTS]
        if pairs:
            expected[sample.split, f"{sample.index + 1 + sample.index // 7:05d}"] = pairs
    assert set(keyed) == set(expected)
    for (split, stem), pairs in expected.items():
        raw = keyed[split, stem]
        assert (raw.image, raw.width, raw.height) == (f"JPEGImages/{stem}.jpg", 800, 800)
        assert [(r.text, r.label) for r in raw.referrals] == [(text, label) for text, _, label in pairs]
        for referral, (_, hbb, _) in zip(raw.referrals, pairs, strict=True):
            assert all(abs(a - b) <= ROUND_TOL for a, b in zip(referral.hbb, hbb, strict=True))
    listed = Counter(line for split in ("train", "val", "test")
                     for line in set((rsvg_corpus / f"{split}.txt").read_text().split()))
    empty_descriptions = sum(1 for p in (rsvg_corpus / "Annotations").glob("*.xml")
                             if "<description />" in p.read_text() or "<description></description>" in p.read_text())
    assert quarantine.summary() == {
        "skipped": {"empty description": empty_descriptions},
        "fixed": {"index in several split files": sum(1 for n in listed.values() if n > 1)},
    }
    assert empty_descriptions > 0 and quarantine.fixed["index in several split files"] > 0
