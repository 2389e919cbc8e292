import numpy as np

from mmrs.synthetic.render import object_mask, render, sar_to_uint8, sar_to_uint16
from mmrs.synthetic.scene import sample_scene


def _scene(cls, sensor, gsd=1.0, seed=0):
    return sample_scene(np.random.default_rng(seed), cls, sensor, 256, 256, gsd)


def test_dtypes_and_shapes_per_sensor():
    assert render(_scene("airport", "optical")).shape == (256, 256, 3)
    assert render(_scene("airport", "optical")).dtype == np.uint8
    sar = render(_scene("sea", "sar"))
    assert sar.shape == (256, 256) and sar.dtype == np.float32
    ir = render(_scene("street", "infrared", gsd=0.06))
    assert ir.shape == (256, 256) and ir.dtype == np.uint8


def test_sar_ships_are_bright_on_dark_water_with_speckle():
    scene = _scene("sea", "sar", seed=4)
    amp = render(scene)
    ships = np.any([object_mask(scene, i) for i in range(len(scene.objects))], axis=0)
    water = ~ships
    assert np.median(amp[ships]) > 5 * np.median(amp[water])
    # multiplicative speckle: the coefficient of variation on homogeneous water is near that of gamma(L)
    cv = amp[water].std() / amp[water].mean()
    assert 0.2 < cv < 0.8


def test_sar_conversions():
    amp = render(_scene("harbor", "sar", seed=1))
    dn16 = sar_to_uint16(amp)
    assert dn16.dtype == np.uint16 and dn16.max() > 10 * np.median(dn16)  # long tail
    dn8 = sar_to_uint8(amp)
    assert dn8.dtype == np.uint8 and dn8.min() == 0 and dn8.max() == 255


def test_infrared_people_are_warmer_than_the_ground():
    scene = _scene("street", "infrared", gsd=0.06, seed=2)
    img = render(scene).astype(float)
    people = [i for i, o in enumerate(scene.objects) if o.kind == "person"]
    assert people
    warm = np.any([object_mask(scene, i) for i in people], axis=0)
    cold = ~np.any([object_mask(scene, i) for i in range(len(scene.objects))], axis=0)
    assert img[warm].mean() > img[cold].mean() + 60


def test_optical_objects_have_their_colour():
    scene = _scene("parking_lot", "optical", seed=3)
    img = render(scene).astype(float)
    reds = [i for i, o in enumerate(scene.objects) if o.colour == "red"]
    assert reds
    for i in reds:
        r, g, b = img[object_mask(scene, i)].mean(axis=0)
        assert r > g + 40 and r > b + 40
