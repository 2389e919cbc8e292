import re

import pytest
import torch

from models.config import tiny
from models.earthgpt import EarthGPT
from models.tokenization import train_bpe_tokenizer

CORPUS = [
    "There are three planes near the runway of the airport.",
    "A harbor with five ships on the water.",
    "Is there a ship in the image? yes",
    "How many vehicles are there? 12",
    "Detect all ships shown in the image and describe using horizontal bounding boxes.",
    "[0.12,0.33,0.45,0.67;0.50,0.51,0.62,0.70]",
] * 20


@pytest.fixture(scope="session")
def tokenizer():
    return train_bpe_tokenizer(CORPUS, vocab_size=300)


@pytest.fixture
def model():
    torch.manual_seed(0)
    return EarthGPT(tiny()).eval()


# timm / open_clip ConvNeXt trunk naming, written out independently of models.vision
_HF_TO_TIMM = (
    (r"^embeddings\.patch_embeddings\.", "stem.0."),
    (r"^embeddings\.layernorm\.", "stem.1."),
    (r"^encoder\.stages\.(\d+)\.downsampling_layer\.(\d)\.", r"stages.\1.downsample.\2."),
    (r"^encoder\.stages\.(\d+)\.layers\.(\d+)\.dwconv\.", r"stages.\1.blocks.\2.conv_dw."),
    (r"^encoder\.stages\.(\d+)\.layers\.(\d+)\.layernorm\.", r"stages.\1.blocks.\2.norm."),
    (r"^encoder\.stages\.(\d+)\.layers\.(\d+)\.pwconv1\.", r"stages.\1.blocks.\2.mlp.fc1."),
    (r"^encoder\.stages\.(\d+)\.layers\.(\d+)\.pwconv2\.", r"stages.\1.blocks.\2.mlp.fc2."),
    (r"^encoder\.stages\.(\d+)\.layers\.(\d+)\.layer_scale_parameter$", r"stages.\1.blocks.\2.gamma"),
)


def _hf_to_timm_name(name: str) -> str:
    for pattern, repl in _HF_TO_TIMM:
        new, n = re.subn(pattern, repl, name)
        if n:
            return new
    raise KeyError(name)


@pytest.fixture
def open_clip_state():
    """model -> the state dict an open_clip CLIP-ConvNeXt checkpoint would hold for its trunk."""
    def convert(model):
        return {"visual.trunk." + _hf_to_timm_name(k): v for k, v in model.state_dict().items()
                if not k.startswith("layernorm.")}
    return convert
