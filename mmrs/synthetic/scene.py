"""Procedural remote-sensing scenes: what is on the ground, independent of the sensor.

A `Scene` is pure data (class, ground layout, objects with rotated footprints); `render.py` turns it
into optical, SAR or infrared pixels and `truth.py` derives captions, VQA pairs and referring
expressions from it. Everything is drawn from a `numpy.random.Generator`, so a seed fixes a scene.

Sizes of objects are in metres and become pixels through the scene's ground sample distance (GSD).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from mmrs.geometry import HBB, Point, polygon_area, polygon_hbb, rotated_rect_corners

SENSORS = ("optical", "sar", "infrared")


@dataclass(frozen=True)
class ObjectKind:
    """A detectable object category.

    length_m / width_m: (min, max) footprint along and across the heading, in metres (width as a
    fraction of the length for slender kinds).
    colours: optical colour names it may take (empty: colour is not an attribute, e.g. a person).
    """

    name: str
    plural: str
    length_m: tuple[float, float]
    width_m: tuple[float, float]
    colours: tuple[str, ...]
    square: bool = False  # footprint is a square (storage tanks are round, drawn in a square box)
    slender: bool = False  # width_m is a fraction of the length, not metres


OBJECT_KINDS: dict[str, ObjectKind] = {
    k.name: k
    for k in (
        ObjectKind("plane", "planes", (28.0, 70.0), (26.0, 64.0), ("white", "gray")),
        ObjectKind("ship", "ships", (24.0, 150.0), (0.16, 0.24), ("white", "gray", "red", "blue"), slender=True),
        ObjectKind("vehicle", "vehicles", (4.2, 5.4), (1.8, 2.2), ("white", "black", "red", "blue", "gray")),
        ObjectKind("truck", "trucks", (8.0, 14.0), (2.4, 2.8), ("white", "blue", "red", "yellow")),
        ObjectKind("storage_tank", "storage tanks", (14.0, 40.0), (14.0, 40.0), ("white", "gray"), square=True),
        ObjectKind("tennis_court", "tennis courts", (33.0, 37.0), (17.0, 19.0), ("green", "blue", "red")),
        ObjectKind("person", "people", (0.5, 0.7), (0.5, 0.7), (), square=True),
        ObjectKind("bicycle", "bicycles", (1.6, 1.9), (0.5, 0.7), ()),
    )
}

# MAR20-style aircraft types: a plane's subtype is decided by its size and wing shape.
PLANE_TYPES: dict[str, tuple[tuple[float, float], float]] = {
    # type: ((length range m), wingspan / length)
    "A1": ((20.0, 24.0), 0.75),  # fighter: short, swept
    "A2": ((29.0, 32.0), 1.35),  # transport: straight high wing, span > length
    "A3": ((50.0, 54.0), 1.00),  # heavy transport
    "A5": ((14.0, 16.0), 0.65),  # light fighter
}

COLOURS_RGB: dict[str, tuple[int, int, int]] = {
    "white": (235, 235, 232),
    "gray": (150, 150, 155),
    "black": (30, 30, 34),
    "red": (190, 45, 40),
    "blue": (45, 80, 185),
    "green": (60, 140, 80),
    "yellow": (225, 200, 60),
}


@dataclass(frozen=True)
class SceneRecipe:
    """How a scene class looks: its ground, its features and which objects it holds.

    objects: kind -> (min, max) count for a 256 m x 256 m extent; larger extents scale it by the
    square root of the area ratio (at most 6x).
    """

    ground: str
    objects: dict[str, tuple[int, int]]
    urban: bool
    sensors: tuple[str, ...] = ("optical",)


SCENE_CLASSES: dict[str, SceneRecipe] = {
    "airport": SceneRecipe("runway", {"plane": (2, 6), "vehicle": (0, 3)}, urban=True),
    "harbor": SceneRecipe("coast", {"ship": (3, 8), "storage_tank": (0, 2)}, urban=True, sensors=SENSORS[:2]),
    "parking_lot": SceneRecipe("parking", {"vehicle": (12, 30), "truck": (0, 3)}, urban=True),
    "residential": SceneRecipe("houses", {"vehicle": (0, 6)}, urban=True),
    "industrial": SceneRecipe("industrial", {"storage_tank": (3, 9), "truck": (0, 3)}, urban=True),
    "sports_ground": SceneRecipe("grass", {"tennis_court": (2, 5)}, urban=True),
    "farmland": SceneRecipe("fields", {}, urban=False),
    "forest": SceneRecipe("forest", {}, urban=False),
    "desert": SceneRecipe("sand", {}, urban=False),
    "river": SceneRecipe("river", {"ship": (0, 3)}, urban=False),
    # sensor-specific classes
    "sea": SceneRecipe("water", {"ship": (0, 4)}, urban=False, sensors=("sar", "infrared")),
    "street": SceneRecipe(
        "street", {"person": (2, 10), "vehicle": (1, 6), "bicycle": (0, 4), "truck": (0, 1)},
        urban=True, sensors=("infrared",),
    ),
}


@dataclass(frozen=True)
class SceneObject:
    """One object on the ground. Geometry in pixels of the scene image.

    angle: heading in radians from +x towards +y. length is along the heading.
    """

    kind: str
    colour: str | None
    cx: float
    cy: float
    length: float
    width: float
    angle: float
    subtype: str | None = None

    @property
    def corners(self) -> list[Point]:
        """OBB corners, clockwise on screen from the front-left corner."""
        return rotated_rect_corners(self.cx, self.cy, self.length, self.width, self.angle)

    @property
    def hbb(self) -> HBB:
        return polygon_hbb(self.corners)

    @property
    def area_px(self) -> float:
        return polygon_area(self.corners)


@dataclass(frozen=True)
class Ground:
    """Ground layout. `water` is a polygon (may be empty); `strips` are long rectangles
    (runways, roads, river banks are drawn from them) as (cx, cy, length, width, angle)."""

    kind: str
    water: tuple[Point, ...] = ()
    strips: tuple[tuple[float, float, float, float, float], ...] = ()
    patches: tuple[tuple[float, float, float, float, int], ...] = ()  # (x0, y0, x1, y1, tone) fields, houses
    texture_seed: int = 0


@dataclass(frozen=True)
class Scene:
    scene_class: str
    sensor: str
    width: int
    height: int
    gsd: float  # metres per pixel
    ground: Ground
    objects: tuple[SceneObject, ...] = field(default_factory=tuple)
    night: bool = False  # infrared only: night scenes have colder backgrounds

    def count(self, kind: str) -> int:
        return sum(1 for o in self.objects if o.kind == kind)

    @property
    def urban(self) -> bool:
        return SCENE_CLASSES[self.scene_class].urban


def _sample_ground(rng: np.random.Generator, kind: str, w: int, h: int) -> Ground:
    seed = int(rng.integers(0, 2**31 - 1))
    if kind in ("coast", "water"):
        if kind == "water":
            return Ground(kind, water=((0, 0), (w, 0), (w, h), (0, h)), texture_seed=seed)
        # land on one side, water on the other; an irregular coastline
        side = int(rng.integers(0, 2))
        xs = np.linspace(0, h, 9)
        shore = w * rng.uniform(0.3, 0.45) + rng.normal(0, w * 0.03, size=xs.size)
        if side == 0:  # water on the right
            poly = [(float(s), float(y)) for s, y in zip(shore, xs, strict=True)] + [(w, h), (w, 0)]
        else:
            poly = [(float(w - s), float(y)) for s, y in zip(shore, xs, strict=True)] + [(0, h), (0, 0)]
        return Ground(kind, water=tuple(poly), texture_seed=seed)
    if kind == "river":
        angle = rng.uniform(-0.4, 0.4)
        width = rng.uniform(0.18, 0.3) * min(w, h)
        y = np.linspace(-0.1 * w, 1.1 * w, 12)
        centre = h / 2 + rng.normal(0, h * 0.06, size=y.size).cumsum() * 0.5
        top = [(float(x), float(c - width / 2 + math.tan(angle) * (x - w / 2))) for x, c in zip(y, centre,
                                                                                             strict=True)]
        bottom = [(float(x), float(c + width / 2 + math.tan(angle) * (x - w / 2))) for x, c in
                  zip(y[::-1], centre[::-1], strict=True)]
        return Ground(kind, water=tuple(top + bottom), texture_seed=seed)
    if kind == "runway":
        angle = float(rng.uniform(-math.pi, math.pi))
        strip = (w / 2 + rng.normal(0, w * 0.05), h / 2 + rng.normal(0, h * 0.05), 2.0 * max(w, h),
                 0.1 * min(w, h), angle)
        return Ground(kind, strips=(strip,), texture_seed=seed)
    if kind == "street":
        angle = float(rng.choice([0.0, math.pi / 2]) + rng.normal(0, 0.1))
        strip = (w / 2, h / 2, 2.0 * max(w, h), 0.45 * min(w, h), angle)
        return Ground(kind, strips=(strip,), texture_seed=seed)
    if kind in ("fields", "houses"):
        n = 6 if kind == "fields" else 14
        patches = []
        cell_w, cell_h = w / 4, h / 4
        for i in range(n):
            gx, gy = i % 4, (i // 4) % 4
            if kind == "fields":
                x0, y0 = gx * cell_w, (gy * 2 % 4) * cell_h
                patches.append((x0, y0, x0 + cell_w * rng.uniform(1.0, 2.0), y0 + cell_h * rng.uniform(1.5, 2.0),
                                int(rng.integers(0, 4))))
            else:
                x0 = gx * cell_w + rng.uniform(0.1, 0.4) * cell_w
                y0 = gy * cell_h + rng.uniform(0.1, 0.4) * cell_h
                patches.append((x0, y0, x0 + cell_w * 0.45, y0 + cell_h * 0.45, int(rng.integers(0, 3))))
        return Ground(kind, patches=tuple(patches), texture_seed=seed)
    return Ground(kind, texture_seed=seed)


def _inside_polygon(x: float, y: float, poly: tuple[Point, ...]) -> bool:
    """Even-odd point-in-polygon test."""
    inside = False
    n = len(poly)
    for i in range(n):
        (x0, y0), (x1, y1) = poly[i], poly[(i + 1) % n]
        if (y0 > y) != (y1 > y) and x < x0 + (y - y0) * (x1 - x0) / (y1 - y0):
            inside = not inside
    return inside


def _placement_ok(kind: str, x: float, y: float, ground: Ground) -> bool:
    """Ships float on water; everything else stands on land."""
    on_water = bool(ground.water) and _inside_polygon(x, y, ground.water)
    return on_water if kind == "ship" else not on_water


def _sample_object(rng: np.random.Generator, kind: str, scene_w: int, scene_h: int, gsd: float,
                   edge_margin: float) -> SceneObject:
    spec = OBJECT_KINDS[kind]
    subtype = None
    if kind == "plane":
        subtype = str(rng.choice(list(PLANE_TYPES)))
        (lo, hi), ratio = PLANE_TYPES[subtype]
        length_m = rng.uniform(lo, hi)
        width_m = length_m * ratio
    else:
        length_m = rng.uniform(*spec.length_m)
        width_m = length_m if spec.square else rng.uniform(*spec.width_m)
        if spec.slender:
            width_m *= length_m
    length, width = max(length_m / gsd, 3.0), max(width_m / gsd, 2.0)
    if spec.square:
        width = length
    angle = 0.0 if kind in ("storage_tank", "person") else float(rng.uniform(-math.pi, math.pi))
    reach = 0.5 * math.hypot(length, width)
    lo_x, lo_y = reach * edge_margin, reach * edge_margin
    cx = float(rng.uniform(lo_x, max(lo_x + 1, scene_w - lo_x)))
    cy = float(rng.uniform(lo_y, max(lo_y + 1, scene_h - lo_y)))
    colour = str(rng.choice(spec.colours)) if spec.colours else None
    return SceneObject(kind, colour, cx, cy, length, width, angle, subtype)


def sample_scene(
    rng: np.random.Generator,
    scene_class: str,
    sensor: str,
    width: int,
    height: int,
    gsd: float,
    edge_objects: bool = False,
    max_tries: int = 60,
) -> Scene:
    """Draw one scene of `scene_class` as seen by `sensor`.

    Objects never overlap (their footprint circles are disjoint), so every object drawn is visible
    and counts in the ground truth equal the objects on the image. With `edge_objects`, objects may
    cross the image border (as in large DOTA scenes); otherwise they lie fully inside.
    """
    recipe = SCENE_CLASSES[scene_class]
    if sensor not in recipe.sensors:
        raise ValueError(f"scene class {scene_class!r} is not defined for sensor {sensor!r}")
    ground = _sample_ground(rng, recipe.ground, width, height)
    # counts grow with the ground extent, sub-linearly so large scenes stay plausible
    area_factor = min(max(1.0, (width * gsd) * (height * gsd) / (256.0 * 256.0)) ** 0.5, 6.0)
    placed: list[SceneObject] = []
    for kind, (lo, hi) in recipe.objects.items():
        wanted = int(round(int(rng.integers(lo, hi + 1)) * area_factor))
        for _ in range(wanted):
            for _try in range(max_tries):
                obj = _sample_object(rng, kind, width, height, gsd, edge_margin=0.3 if edge_objects else 1.05)
                if not _placement_ok(kind, obj.cx, obj.cy, ground):
                    continue
                reach = 0.5 * math.hypot(obj.length, obj.width)
                if all(
                    math.hypot(obj.cx - o.cx, obj.cy - o.cy) > reach + 0.5 * math.hypot(o.length, o.width) + 2
                    for o in placed
                ):
                    placed.append(obj)
                    break
    night = bool(rng.integers(0, 2)) if sensor == "infrared" else False
    return Scene(scene_class, sensor, width, height, gsd, ground, tuple(placed), night)
