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
