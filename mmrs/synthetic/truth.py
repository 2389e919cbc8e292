"""Ground truth a model can learn, derived from a `Scene` by fixed, documented rules.

- Class: the scene class (each dataset maps it to its own class name).
- Captions: five sentences from per-class templates filled with the scene's object counts and colours.
- VQA: presence ("Is there a ship?"), count ("How many ships are there?"), comparison ("Are there more
  ships than vehicles?"), rural/urban (by scene class), area (total footprint of a kind in m2, HR only),
  main scene (CRSVQA) and a positional count ("How many ships are on the left side of the image?").
- Referring expressions: one per object that can be named uniquely among objects of its kind, by
  (in this order) being the only one, its colour, its size (largest/smallest, 20 % margin), or its
  horizontal/vertical extreme (10 % of the image margin); the object's coarse region is appended.
  `resolve` checks uniqueness from the structured attributes, not the text.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from mmrs.synthetic.scene import OBJECT_KINDS, SCENE_CLASSES, Scene, SceneObject
from mmrs.templates import number_text


def count_phrase(n: int, kind: str) -> str:
    """'one ship', 'three ships', '13 ships', 'no ships'."""
    spec = OBJECT_KINDS[kind]
    noun = spec.name.replace("_", " ") if n == 1 else spec.plural
    return f"no {spec.plural}" if n == 0 else f"{number_text(n)} {noun}"


def scene_name(scene_class: str) -> str:
    return scene_class.replace("_", " ")


def main_kind(scene: Scene) -> str | None:
    """The recipe's first object kind present in the scene (planes at an airport, ...)."""
    for kind in SCENE_CLASSES[scene.scene_class].objects:
        if scene.count(kind):
            return kind
    return None


_CAPTIONS: dict[str, tuple[str, ...]] = {
    # {main}: count phrase of the main kind; {Main}: capitalised; {place}: scene name
    "airport": ("{Main} are parked at the airport.", "An airport with {main} beside a long runway.",
                "There are {main} near the runway of the airport.", "A runway crosses the airport.",
                "{Main} and a runway are in the airport."),
    "harbor": ("{Main} are docked in the harbor.", "A harbor with {main} on the water.",
               "There are {main} near the coast.", "The coast of a harbor with ships on the water.",
               "{Main} are moored along the shore."),
    "parking_lot": ("{Main} are parked in the parking lot.", "A parking lot with {main}.",
                    "Many cars are parked in rows in the parking lot.", "There are {main} in a parking lot.",
                    "A large parking lot full of vehicles."),
    "residential": ("Many houses are arranged in rows in the residential area.",
                    "A residential area with houses and green lawns.", "Some buildings are surrounded by trees.",
                    "There are {main} in the residential area.", "Houses with red and gray roofs."),
    "industrial": ("{Main} are in the industrial area.", "An industrial area with {main}.",
                   "There are {main} on the concrete ground.", "Several storage tanks in an industrial area.",
                   "{Main} stand in an industrial zone."),
    "sports_ground": ("{Main} are on the green lawn.", "A sports ground with {main}.",
                      "There are {main} surrounded by grass.", "Some tennis courts are on a green field.",
                      "{Main} are arranged on the grass."),
    "farmland": ("A large area of farmland with fields of different colours.",
                 "Several rectangular fields are arranged neatly.", "Green and yellow fields in a farmland.",
                 "The farmland is divided into many pieces.", "Many fields of crops."),
    "forest": ("A dense forest of dark green trees.", "Many green trees grow closely in the forest.",
               "The forest is thick and dark green.", "A large piece of forest.", "Lots of trees in a forest."),
    "desert": ("A yellow desert with many dunes.", "The desert is covered by sand dunes.",
               "A large piece of yellow desert.", "Sand dunes stretch across the desert.", "A dry sandy desert."),
    "river": ("A river flows through the green land.", "A winding river crosses the fields.",
              "There are {main} on the river.", "A blue river runs across the image.",
              "A river with green banks on both sides."),
    "sea": ("{Main} on the sea.", "There are {main} on the water.", "The sea surface with {main}.",
            "{Main} are sailing on the sea.", "An open sea with ships."),
    "street": ("{Main} on the street.", "A street with {main}.", "There are {main} on the road.",
               "People and vehicles on a street.", "{Main} are on the road at night."),
}


def captions(scene: Scene) -> list[str]:
    """Five captions. Templates that mention the main object are replaced by a generic one when the
    scene holds none, so every sentence is true of the pixels."""
    kind = main_kind(scene)
    out = []
    for template in _CAPTIONS[scene.scene_class]:
        if "{main}" in template.lower():
            if kind is None:
                template = f"This is a {scene_name(scene.scene_class)}."
            else:
                phrase = count_phrase(scene.count(kind), kind)
                template = template.replace("{main}", phrase).replace("{Main}", phrase[0].upper() + phrase[1:])
                if scene.count(kind) == 1:
                    template = template.replace(" are ", " is ")
        out.append(template)
    return out


@dataclass(frozen=True)
class QA:
    question: str
    answer: str
    qtype: str  # presence | count | comp | rural_urban | area | scene


def _kinds_for_questions(scene: Scene) -> list[str]:
    """Kinds asked about: those of the scene's sensor family (a present kind first)."""
    kinds = sorted({k for r in SCENE_CLASSES.values() if scene.sensor in r.sensors for k in r.objects})
    return kinds


def _candidates(scene: Scene, qtype: str, kinds: list[str]) -> list[QA]:
    """Every distinct question of one type about the scene, with its answer."""
    def plural(kind: str) -> str:
        return OBJECT_KINDS[kind].plural

    if qtype == "presence":
        return [QA(f"Is there a {k.replace('_', ' ')} in the image?", "yes" if scene.count(k) else "no", qtype)
                for k in kinds]
    if qtype == "count":
        return [QA(f"How many {plural(k)} are there?", str(scene.count(k)), qtype) for k in kinds]
    if qtype == "comp":
        return [QA(f"Are there more {plural(a)} than {plural(b)}?",
                   "yes" if scene.count(a) > scene.count(b) else "no", qtype) for a in kinds for b in kinds if a != b]
    if qtype == "rural_urban":
        return [QA("Is it a rural or an urban area?", "urban" if scene.urban else "rural", qtype)]
    if qtype == "area":
        return [QA(f"What is the area covered by {plural(k)}?",
                   f"{int(round(sum(o.area_px for o in scene.objects if o.kind == k) * scene.gsd**2))}m2", qtype)
                for k in kinds]
    if qtype == "scene":
        return [QA("What is the main scene in this image?", scene_name(scene.scene_class), qtype)]
    if qtype == "count_left":
        return [QA(f"How many {plural(k)} are on the left side of the image?",
                   str(sum(1 for o in scene.objects if o.kind == k and o.cx < scene.width / 2)), qtype) for k in kinds]
    raise ValueError(f"unknown question type {qtype!r}")


def vqa_pairs(scene: Scene, rng: np.random.Generator, types: tuple[str, ...], per_type: int = 1) -> list[QA]:
    """Up to `per_type` distinct questions of each type, drawn without replacement; answers from the scene.

    Yes/no types alternate yes and no answers while both remain, so the answers stay balanced even when
    few kinds are present; a coin decides which comes first, or every image's first question of a type
    would answer "yes" (a model asked single questions learns that position, not the image)."""
    kinds = _kinds_for_questions(scene)
    out: list[QA] = []
    for qtype in types:
        pool = _candidates(scene, qtype, kinds)
        candidates = [pool[i] for i in rng.permutation(len(pool))]
        yes = [c for c in candidates if c.answer == "yes"]
        no = [c for c in candidates if c.answer == "no"]
        if yes and no:
            first, second = (yes, no) if rng.random() < 0.5 else (no, yes)
            interleaved = [q for pair in zip(first, second, strict=False) for q in pair]
            longer = first if len(first) > len(second) else second
            candidates = interleaved + longer[min(len(first), len(second)):]
        out += candidates[:per_type]
    # the image's questions in no fixed order of types, as RSVQA's ids interleave them: a model trained on
    # conversations that always open with the same type answers a single question of another type poorly
    return [out[i] for i in rng.permutation(len(out))]


@dataclass(frozen=True)
class Referral:
    """A referring expression for `scene.objects[index]` and the attributes that make it unique."""

    index: int
    text: str
    kind: str
    colour: str | None = None
    superlative: str | None = None  # largest | smallest | leftmost | rightmost | topmost | bottommost


_SUPERLATIVE_KEY = {
    "largest": lambda o: -o.area_px, "smallest": lambda o: o.area_px,
    "leftmost": lambda o: o.cx, "rightmost": lambda o: -o.cx,
    "topmost": lambda o: o.cy, "bottommost": lambda o: -o.cy,
}
_SUPERLATIVE_TEXT = {
    "largest": "the largest {k}", "smallest": "the smallest {k}", "leftmost": "the {k} on the far left",
    "rightmost": "the {k} on the far right", "topmost": "the {k} at the very top",
    "bottommost": "the {k} at the very bottom",
}


def region_phrase(scene: Scene, obj: SceneObject) -> str:
    """Coarse 3x3 position: 'on the left', 'in the upper right', 'in the center', ..."""
    col = "left" if obj.cx < scene.width / 3 else "right" if obj.cx > 2 * scene.width / 3 else ""
    row = "upper" if obj.cy < scene.height / 3 else "lower" if obj.cy > 2 * scene.height / 3 else ""
    if row and col:
        return f"in the {row} {col}"
    if col:
        return f"on the {col}"
    if row:
        return "at the top" if row == "upper" else "at the bottom"
    return "in the center"


def resolve(scene: Scene, kind: str, colour: str | None, superlative: str | None) -> list[int]:
    """Indices of the objects an attribute description picks out."""
    candidates = [i for i, o in enumerate(scene.objects) if o.kind == kind and (colour is None or o.colour == colour)]
    if superlative is None or len(candidates) <= 1:
        return candidates
    key = _SUPERLATIVE_KEY[superlative]
    ranked = sorted(candidates, key=lambda i: key(scene.objects[i]))
    first, second = scene.objects[ranked[0]], scene.objects[ranked[1]]
    if superlative in ("largest", "smallest"):
        big, small = max(first.area_px, second.area_px), min(first.area_px, second.area_px)
        distinct = big > 1.2 * small
    else:
        extent = scene.width if superlative in ("leftmost", "rightmost") else scene.height
        distinct = abs(key(first) - key(second)) > 0.1 * extent
    return [ranked[0]] if distinct else ranked


def _unique_descriptions(scene: Scene, index: int) -> Iterator[tuple[str | None, str | None]]:
    obj = scene.objects[index]
    yield None, None
    if obj.colour:
        yield obj.colour, None
    for sup in _SUPERLATIVE_KEY:
        yield None, sup
    if obj.colour:
        for sup in _SUPERLATIVE_KEY:
            yield obj.colour, sup


def referring_expressions(scene: Scene) -> list[Referral]:
    """One referral per object that some description identifies uniquely (others are skipped)."""
    out = []
    for i, obj in enumerate(scene.objects):
        for colour, sup in _unique_descriptions(scene, i):
            if resolve(scene, obj.kind, colour, sup) == [i]:
                noun = obj.kind.replace("_", " ")
                if colour:
                    noun = f"{colour} {noun}"
                text = _SUPERLATIVE_TEXT[sup].format(k=noun) if sup else f"the {noun}"
                if sup not in ("leftmost", "rightmost", "topmost", "bottommost"):
                    text = f"{text} {region_phrase(scene, obj)}"
                out.append(Referral(i, text, obj.kind, colour, sup))
                break
    return out
