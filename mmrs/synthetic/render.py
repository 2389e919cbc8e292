"""Turn a `Scene` into pixels as one of three sensors sees it.

- optical: (H, W, 3) uint8 RGB; ground textures and coloured objects.
- SAR: (H, W) float32 amplitude; reflectivity map (calm water dark, metal bright, a few very bright
  point scatterers per object) times multiplicative gamma speckle, then square root.
  `sar_to_uint8` (dB + 1-99 percentile stretch) and `sar_to_uint16` (linear, long tail) write it.
- infrared: (H, W) uint8; a temperature map where people and engines are warm, slightly blurred.

Every object is drawn inside its oriented footprint (`SceneObject.corners`), never outside it, and
objects do not overlap: `object_mask` gives the pixels of one object for checks.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
from PIL import Image, ImageDraw

from mmrs.imaging import log_stretch_to_uint8
from mmrs.synthetic.scene import COLOURS_RGB, Scene, SceneObject

Polygon = list[tuple[float, float]]

_GROUND_RGB: dict[str, tuple[int, int, int]] = {
    "runway": (172, 172, 166),
    "coast": (150, 140, 118),
    "parking": (98, 98, 104),
    "houses": (104, 136, 82),
    "industrial": (140, 136, 130),
    "grass": (96, 146, 76),
    "fields": (128, 150, 82),
    "forest": (42, 82, 42),
    "sand": (214, 190, 140),
    "river": (112, 130, 82),
    "water": (32, 62, 100),
    "street": (96, 130, 80),
}
_WATER_RGB = (40, 72, 110)
_FIELD_TONES = ((120, 162, 70), (184, 172, 92), (88, 128, 60), (162, 140, 100))
_ROOF_TONES = ((170, 70, 55), (200, 120, 70), (140, 140, 140))

# SAR mean reflectivity (linear intensity) of grounds and objects.
_GROUND_SAR = {"runway": 0.30, "coast": 0.25, "water": 0.02, "industrial": 0.35, "parking": 0.3,
               "houses": 0.4, "grass": 0.2, "fields": 0.2, "forest": 0.45, "sand": 0.12, "river": 0.22,
               "street": 0.25}
_OBJECT_SAR = {"ship": 4.0, "plane": 3.0, "vehicle": 2.5, "truck": 3.0, "storage_tank": 4.0,
               "tennis_court": 0.15, "person": 0.5, "bicycle": 1.0}
# Infrared temperature in [0, 1] (day, night).
_GROUND_IR = {"water": (0.25, 0.40), "street": (0.55, 0.38), "grass": (0.40, 0.18), "coast": (0.45, 0.22)}
_OBJECT_IR = {"person": 0.92, "vehicle": 0.72, "truck": 0.78, "bicycle": 0.55, "ship": 0.70, "plane": 0.6,
              "storage_tank": 0.5, "tennis_court": 0.45}


def _to_image_frame(obj: SceneObject, local: list[tuple[float, float]]) -> Polygon:
    """Map (u, v) in units of half length / half width (u forward, v to the right) to pixels."""
    ux, uy = math.cos(obj.angle), math.sin(obj.angle)
    vx, vy = -uy, ux
    hl, hw = obj.length / 2.0, obj.width / 2.0
    return [(obj.cx + ux * u * hl + vx * v * hw, obj.cy + uy * u * hl + vy * v * hw) for u, v in local]


def object_parts(obj: SceneObject) -> list[tuple[Polygon | tuple[float, float, float, float], float, str]]:
    """Shape of an object as (polygon or ellipse-bbox, shade, kind) parts, all inside the footprint.

    shade scales the object's colour (1 = body colour); kind is "poly" or "ellipse".
    """
    k = obj.kind
    if k == "plane":
        fuselage_half = min(0.12 * obj.length / obj.width, 1.0)
        return [
            (_to_image_frame(obj, [(1, -fuselage_half), (1, fuselage_half), (-1, fuselage_half),
                                   (-1, -fuselage_half)]), 1.0, "poly"),
            (_to_image_frame(obj, [(0.35, -0.08), (0.35, 0.08), (-0.25, 1.0), (-0.45, 1.0), (-0.2, 0.0),
                                   (-0.45, -1.0), (-0.25, -1.0)]), 0.92, "poly"),
            (_to_image_frame(obj, [(-0.75, 0.0), (-0.9, 0.35), (-1.0, 0.35), (-1.0, -0.35), (-0.9, -0.35)]),
             0.92, "poly"),
        ]
    if k == "ship":
        return [
            (_to_image_frame(obj, [(1, 0), (0.55, 1), (-1, 1), (-1, -1), (0.55, -1)]), 1.0, "poly"),
            (_to_image_frame(obj, [(-0.2, -0.55), (-0.2, 0.55), (-0.75, 0.55), (-0.75, -0.55)]), 0.7, "poly"),
        ]
    if k in ("storage_tank", "person"):
        x0, y0 = obj.cx - obj.length / 2, obj.cy - obj.width / 2
        parts = [((x0, y0, x0 + obj.length, y0 + obj.width), 1.0, "ellipse")]
        if k == "storage_tank":
            inset = 0.18 * obj.length
            parts.append(((x0 + inset, y0 + inset, x0 + obj.length - inset, y0 + obj.width - inset), 0.85,
                          "ellipse"))
        return parts
    if k == "tennis_court":
        body = _to_image_frame(obj, [(1, -1), (1, 1), (-1, 1), (-1, -1)])
        net = _to_image_frame(obj, [(0.03, -0.8), (0.03, 0.8), (-0.03, 0.8), (-0.03, -0.8)])
        inner = _to_image_frame(obj, [(0.75, -0.75), (0.75, 0.75), (-0.75, 0.75), (-0.75, -0.75)])
        return [(body, 1.0, "poly"), (inner, 1.25, "poly"), (net, 2.0, "poly")]
    # vehicle, truck, bicycle: a box with a darker windshield or cab
    body = _to_image_frame(obj, [(1, -1), (1, 1), (-1, 1), (-1, -1)])
    if k == "bicycle":
        return [(body, 1.0, "poly")]
    cab = _to_image_frame(obj, [(0.6, -0.85), (0.6, 0.85), (0.3, 0.85), (0.3, -0.85)])
    return [(body, 1.0, "poly"), (cab, 0.55, "poly")]


def _draw_object(draw: ImageDraw.ImageDraw, obj: SceneObject, fill: Callable[[float], object]) -> None:
    for shape, shade, kind in object_parts(obj):
        if kind == "ellipse":
            draw.ellipse(shape, fill=fill(shade))
        else:
            draw.polygon(shape, fill=fill(shade))


def object_mask(scene: Scene, index: int) -> np.ndarray:
    """(H, W) bool: the pixels the renderer paints for object `index`."""
    img = Image.new("L", (scene.width, scene.height), 0)
    _draw_object(ImageDraw.Draw(img), scene.objects[index], lambda _shade: 255)
    return np.asarray(img) > 0


def painted_centres(scene: Scene, index: int) -> np.ndarray:
    """(N, 2) pixel-centre coordinates (x + 0.5, y + 0.5) of the pixels painted for object `index`."""
    ys, xs = np.nonzero(object_mask(scene, index))
    return np.stack([xs + 0.5, ys + 0.5], axis=1)


def _smooth_noise(rng: np.random.Generator, h: int, w: int, cell: int) -> np.ndarray:
    """(H, W) float32 noise with unit variance and features of about `cell` pixels."""
    small = rng.standard_normal((max(2, h // cell + 2), max(2, w // cell + 2))).astype(np.float32)
    return np.asarray(Image.fromarray(small, mode="F").resize((w, h), Image.BILINEAR), dtype=np.float32)


def _ground_layers(scene: Scene) -> tuple[Image.Image, Image.Image]:
    """Label images of the ground: (water mask L, feature map L with 0=base, 1=strip, 2+tone=patch)."""
    w, h = scene.width, scene.height
    water = Image.new("L", (w, h), 0)
    if scene.ground.water:
        ImageDraw.Draw(water).polygon(list(scene.ground.water), fill=255)
    features = Image.new("L", (w, h), 0)
    fdraw = ImageDraw.Draw(features)
    for cx, cy, length, width, angle in scene.ground.strips:
        strip = SceneObject("strip", None, cx, cy, length, width, angle)
        fdraw.polygon(strip.corners, fill=1)
    for x0, y0, x1, y1, tone in scene.ground.patches:
        fdraw.rectangle((x0, y0, x1, y1), fill=2 + tone)
    return water, features


def render_optical(scene: Scene) -> np.ndarray:
    """(H, W, 3) uint8 RGB image."""
    rng = np.random.default_rng(scene.ground.texture_seed)
    h, w = scene.height, scene.width
    kind = scene.ground.kind
    water, features = _ground_layers(scene)
    water_a, feat_a = np.asarray(water) > 0, np.asarray(features)
    img = np.empty((h, w, 3), np.float32)
    img[:] = _GROUND_RGB[kind]
    if kind == "fields":
        for tone, rgb in enumerate(_FIELD_TONES):
            img[feat_a == 2 + tone] = rgb
    elif kind == "houses":
        for tone, rgb in enumerate(_ROOF_TONES):
            img[feat_a == 2 + tone] = rgb
    elif kind == "runway":
        img[feat_a == 1] = (88, 88, 94)
    elif kind == "street":
        img[feat_a == 1] = (90, 90, 92)
    img[water_a] = _WATER_RGB if kind != "water" else _GROUND_RGB["water"]
    texture = 26.0 if kind == "forest" else 9.0
    cell = 6 if kind == "forest" else 24
    img += _smooth_noise(rng, h, w, cell)[..., None] * texture
    if kind == "sand":
        yy, xx = np.mgrid[0:h, 0:w]
        img += (10 * np.sin((xx * 0.7 + yy) / 9.0))[..., None].astype(np.float32)
    base = Image.fromarray(np.clip(img, 0, 255).astype(np.uint8), "RGB")
    draw = ImageDraw.Draw(base)
    if kind == "parking":
        for x in range(0, w, max(8, int(round(2.8 / scene.gsd)))):
            draw.line([(x, 0), (x, h)], fill=(215, 215, 215), width=1)
    for obj in scene.objects:
        rgb = np.array(COLOURS_RGB[obj.colour or "gray"], np.float32)
        _draw_object(draw, obj, lambda shade, rgb=rgb: tuple(int(c) for c in np.clip(rgb * shade, 0, 255)))
    out = np.asarray(base, np.float32) + rng.normal(0, 3.0, size=(h, w, 3)).astype(np.float32)
    return np.clip(out, 0, 255).astype(np.uint8)


def render_sar(scene: Scene) -> np.ndarray:
    """(H, W) float32 SAR amplitude (linear, mean around 0.5 on land, tens at scatterers)."""
    rng = np.random.default_rng(scene.ground.texture_seed)
    h, w = scene.height, scene.width
    water, features = _ground_layers(scene)
    refl = np.full((h, w), _GROUND_SAR.get(scene.ground.kind, 0.25), np.float32)
    refl[np.asarray(features) == 1] = 0.05  # smooth asphalt strips reflect away
    refl[np.asarray(features) >= 2] = 0.6
    refl[np.asarray(water) > 0] = _GROUND_SAR["water"]
    refl *= np.exp(0.3 * _smooth_noise(rng, h, w, 32))
    obj_img = Image.new("F", (w, h), 0.0)
    draw = ImageDraw.Draw(obj_img)
    for obj in scene.objects:
        level = _OBJECT_SAR[obj.kind]
        _draw_object(draw, obj, lambda shade, level=level: float(level * shade))
    obj_refl = np.asarray(obj_img, np.float32)
    refl = np.where(obj_refl > 0, obj_refl, refl)
    for i in range(len(scene.objects)):  # a few strong point scatterers per object
        ys, xs = np.nonzero(object_mask(scene, i))
        if xs.size:
            pick = rng.integers(0, xs.size, size=min(4, xs.size))
            refl[ys[pick], xs[pick]] = 40.0
    looks = int(rng.choice([1, 2, 4]))
    speckle = rng.gamma(looks, 1.0 / looks, size=(h, w)).astype(np.float32)
    return np.sqrt(refl * speckle, dtype=np.float32)


def _blur3(a: np.ndarray) -> np.ndarray:
    """Separable [1, 2, 1] / 4 blur (the thermal camera's point spread), edges replicated."""
    p = np.pad(a, 1, mode="edge")
    a = (p[:, :-2] + 2 * p[:, 1:-1] + p[:, 2:]) / 4.0
    return (a[:-2] + 2 * a[1:-1] + a[2:]) / 4.0


def render_infrared(scene: Scene) -> np.ndarray:
    """(H, W) uint8 thermal image; warm is bright."""
    rng = np.random.default_rng(scene.ground.texture_seed)
    h, w = scene.height, scene.width
    water, features = _ground_layers(scene)
    pick = 1 if scene.night else 0
    temp = np.full((h, w), _GROUND_IR.get(scene.ground.kind, _GROUND_IR["grass"])[pick], np.float32)
    temp[np.asarray(features) == 1] = _GROUND_IR["street"][pick]
    temp[np.asarray(water) > 0] = _GROUND_IR["water"][pick]
    temp += 0.04 * _smooth_noise(rng, h, w, 24)
    img = Image.fromarray(temp, mode="F")
    draw = ImageDraw.Draw(img)
    for obj in scene.objects:
        level = _OBJECT_IR[obj.kind]
        _draw_object(draw, obj, lambda shade, level=level: float(min(1.0, level * (2.0 - shade))))
    out = _blur3(np.asarray(img, np.float32)) * 255.0 + rng.normal(0, 2.0, size=(h, w)).astype(np.float32)
    return np.clip(out, 0, 255).astype(np.uint8)


def render(scene: Scene) -> np.ndarray:
    """Pixels for the scene's sensor: see the module docstring for dtypes and shapes."""
    return {"optical": render_optical, "sar": render_sar, "infrared": render_infrared}[scene.sensor](scene)


def sar_to_uint8(amplitude: np.ndarray) -> np.ndarray:
    """SAR amplitude -> 8-bit display image (dB, 1-99 percentile stretch; see mmrs.imaging)."""
    return log_stretch_to_uint8(amplitude)


def sar_to_uint16(amplitude: np.ndarray, gain: float = 1000.0) -> np.ndarray:
    """SAR amplitude -> 16-bit digital numbers (linear, long-tailed like Gaofen-3 products)."""
    return np.clip(np.rint(amplitude.astype(np.float64) * gain), 0, 65535).astype(np.uint16)
