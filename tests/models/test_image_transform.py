import io
import tarfile

import numpy as np
import tifffile
import torch
from PIL import Image

from models.config import tiny
from models.image_transform import load_record_image, preprocess, read_image


def test_16_bit_single_channel_and_rgb_give_the_same_normalised_shape(tmp_path):
    sar = (np.random.default_rng(0).gamma(1.0, 500.0, size=(40, 60))).astype(np.uint16)
    tifffile.imwrite(tmp_path / "sar.tiff", sar)
    pixels = read_image(tmp_path / "sar.tiff")
    assert pixels.dtype == np.uint16
    tensor = preprocess(pixels, tiny())
    assert tensor.shape == (3, 64, 64)
    torch.testing.assert_close(tensor[0], tensor[1])  # gray replicated
    assert float(tensor.min()) >= 0.0 and float(tensor.max()) <= 1.0


def test_padding_is_centred_black():
    white = np.full((20, 40, 3), 255, np.uint8)  # wide: padded above and below
    tensor = preprocess(white, tiny())
    top_row, centre = tensor[:, 0, 32], tensor[:, 32, 32]
    assert torch.allclose(top_row, torch.zeros(3), atol=1e-5) and torch.allclose(centre, torch.ones(3), atol=1e-5)


def test_record_images_from_folders_and_tar_members(tmp_path):
    image = np.arange(8 * 9 * 3, dtype=np.uint8).reshape(8, 9, 3)
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="PNG")
    (tmp_path / "imgs").mkdir()
    (tmp_path / "imgs" / "a.png").write_bytes(buffer.getvalue())
    with tarfile.open(tmp_path / "shard-00000.tar", "w") as tar:
        info = tarfile.TarInfo("000001.png")
        info.size = len(buffer.getvalue())
        tar.addfile(info, io.BytesIO(buffer.getvalue()))
    assert np.array_equal(load_record_image(str(tmp_path), "imgs/a.png"), image)
    assert np.array_equal(load_record_image(str(tmp_path), "shard-00000.tar::000001.png"), image)
