import dataclasses

import pytest
import torch
from safetensors.torch import save_file
from transformers import ConvNextModel

from models.config import CNNConfig, ViTConfig, paper, tiny
from models.vision import SINCOS_AMPLITUDE, VisualPerception, build_cnn, build_vit, sincos_positions
from models.weights import MissingWeightsError


@pytest.fixture
def vision():
    torch.manual_seed(0)
    return VisualPerception(tiny(), llm_width=128).eval()


def test_tokens_sit_on_the_vit_grid_at_the_llm_width(vision):
    tokens = vision(torch.randn(2, 3, 64, 64))
    assert tokens.shape == (2, tiny().num_visual_tokens, 128) == (2, 64, 128)


def test_multi_layer_and_multi_scale_features(vision):
    pixels = torch.randn(1, 3, 64, 64)
    vit = vision.vit_features(pixels)
    assert vit.shape == (1, 64, 64 * len(tiny().vit.layers))  # layers 2 and 4, CLS dropped
    hidden = vision.vit(pixels, output_hidden_states=True).hidden_states
    torch.testing.assert_close(vit[..., :64], hidden[2][:, 1:])
    cnn = vision.cnn_features(pixels)
    assert [t.shape for t in cnn] == [(1, 64, 16), (1, 64, 32), (1, 64, 64)]  # H/4, H/8 pooled; H/16 upsampled


def test_single_channel_images_are_replicated_to_rgb(vision):
    gray = torch.randn(2, 1, 64, 64)
    torch.testing.assert_close(vision(gray), vision(gray.expand(-1, 3, -1, -1)))


def test_encoders_are_frozen_without_dropout(vision):
    vision.train()
    dropouts = [m.p for m in [*vision.vit.modules(), *vision.cnn.modules()] if isinstance(m, torch.nn.Dropout)]
    assert all(p == 0.0 for p in dropouts)
    assert vision.vit.config.drop_path_rate == 0.0 and vision.cnn.config.drop_path_rate == 0.0
    assert all(not p.requires_grad for p in [*vision.vit.parameters(), *vision.cnn.parameters()])
    assert all(p.requires_grad for p in vision.projector.parameters())
    vision(torch.randn(1, 3, 64, 64)).sum().backward()
    assert all(p.grad is None for p in vision.vit.parameters())


def test_vit_and_cnn_load_from_hf_folders(tmp_path):
    torch.manual_seed(1)
    vit, cnn = build_vit(ViTConfig(), 64), build_cnn(CNNConfig())
    vit.save_pretrained(tmp_path / "dinov2")
    cnn.save_pretrained(tmp_path / "convnext")
    vit2 = build_vit(ViTConfig(path=str(tmp_path / "dinov2")), 64)
    cnn2 = build_cnn(CNNConfig(path=str(tmp_path / "convnext")))
    x = torch.randn(1, 3, 64, 64)
    torch.testing.assert_close(vit2(x).last_hidden_state, vit.eval()(x).last_hidden_state)
    torch.testing.assert_close(cnn2(x).last_hidden_state, cnn.eval()(x).last_hidden_state)


def test_open_clip_convnext_checkpoint_loads_into_the_hf_convnext(tmp_path, open_clip_state):
    torch.manual_seed(2)
    reference = ConvNextModel(build_cnn(CNNConfig()).config).eval()
    state = open_clip_state(reference)
    state["visual.trunk.head.norm.weight"] = torch.ones(128)  # heads and the text tower are ignored
    state["text.token_embedding.weight"] = torch.zeros(4, 4)
    assert any(k.endswith(".gamma") for k in state) and any(".mlp.fc1." in k for k in state)
    save_file(state, str(tmp_path / "open_clip_model.safetensors"))
    loaded = build_cnn(CNNConfig(backend="open_clip", path=str(tmp_path))).eval()
    x = torch.randn(1, 3, 64, 64)
    out, ref = loaded(x, output_hidden_states=True), reference(x, output_hidden_states=True)
    for a, b in zip(out.hidden_states, ref.hidden_states, strict=True):
        torch.testing.assert_close(a, b)


def test_incomplete_open_clip_checkpoint_is_refused(tmp_path):
    save_file({"visual.trunk.stem.0.weight": torch.zeros(16, 3, 4, 4)}, str(tmp_path / "open_clip_model.safetensors"))
    with pytest.raises(ValueError, match="lacks ConvNeXt tensors"):
        build_cnn(CNNConfig(backend="open_clip", path=str(tmp_path)))


def test_missing_weight_folder_is_an_error_that_names_it(tmp_path):
    with pytest.raises(MissingWeightsError, match=str(tmp_path / "nope")):
        build_vit(ViTConfig(path=str(tmp_path / "nope")), 64)


def test_paper_preset_shapes_without_weights(capsys):
    """DINOv2 ViT-L/14 + CLIP ConvNeXt-L + LLaMA-2-7B width, on the meta device (no memory, no weights)."""
    config = paper("llama", "dinov2", "convnext")
    config = dataclasses.replace(config, vit=dataclasses.replace(config.vit, path=None),
                                 cnn=dataclasses.replace(config.cnn, path=None))
    with torch.device("meta"):
        vision = VisualPerception(config, llm_width=4096)
        pixels = torch.empty(1, 3, 224, 224)
        vit = vision.vit_features(pixels)
        cnn = vision.cnn_features(pixels)
        tokens = vision(pixels)
    print(f"\npaper preset: image 224x224, ViT-L/14 grid {config.grid}x{config.grid}; "
          f"ViT layers {config.vit.layers} -> {tuple(vit.shape)}; "
          f"ConvNeXt-L stages {config.cnn.stages} -> {[tuple(t.shape) for t in cnn]} "
          f"(each -> {config.cnn.scale_channels} ch); visual tokens {tuple(tokens.shape)}")
    assert vit.shape == (1, 256, 3 * 1024)
    assert [t.shape[-1] for t in cnn] == [192, 384, 768]
    assert tokens.shape == (1, 256, 4096)
    projector = sum(p.numel() for p in vision.projector.parameters())
    assert projector == (192 + 384 + 768 + 3) * 512 + (3 * 1024 + 3 * 512 + 1) * 4096


def test_each_encoder_normalises_the_pixels_with_its_own_statistics():
    """The paper's CLIP ConvNeXt expects CLIP's mean and std, DINOv2 ImageNet's."""
    import dataclasses

    from models.config import CLIP_MEAN, CLIP_STD, IMAGENET_MEAN, IMAGENET_STD, tiny
    from models.vision import VisualPerception

    config = tiny()
    config = dataclasses.replace(config, cnn=dataclasses.replace(config.cnn, mean=CLIP_MEAN, std=CLIP_STD))
    torch.manual_seed(0)
    vision = VisualPerception(config, 32)
    seen = {}
    vit, cnn = vision.vit_features, vision.cnn_features
    vision.vit_features = lambda x: vit(seen.setdefault("vit", x))
    vision.cnn_features = lambda x: cnn(seen.setdefault("cnn", x))
    pixels = torch.rand(1, 3, 64, 64)
    vision(pixels)
    for name, mean, std in (("vit", IMAGENET_MEAN, IMAGENET_STD), ("cnn", CLIP_MEAN, CLIP_STD)):
        expected = (pixels - torch.tensor(mean).view(1, 3, 1, 1)) / torch.tensor(std).view(1, 3, 1, 1)
        torch.testing.assert_close(seen[name], expected)


def test_the_frozen_encoders_compute_the_same_in_train_and_eval_mode():
    """Built without dropout or drop-path, so the model can follow Lightning's train()/eval() switches."""
    torch.manual_seed(0)
    vision = VisualPerception(tiny(), 32)
    pixels = torch.rand(2, 3, 64, 64)
    with torch.no_grad():
        training = vision.train()(pixels)
        evaluating = vision.eval()(pixels)
    torch.testing.assert_close(training, evaluating)


def test_sincos_positions_code_row_and_column():
    table = sincos_positions(4, 8)  # 4 x 4 grid, 2 channels a (axis, sin/cos) pair
    assert table.shape == (16, 8)
    rows, cols = table[:, :4].view(4, 4, 4), table[:, 4:].view(4, 4, 4)
    torch.testing.assert_close(rows, rows[:, :1].expand(-1, 4, -1))  # the row half is the same along a row
    torch.testing.assert_close(cols, cols[:1].expand(4, -1, -1))  # the column half the same down a column
    torch.testing.assert_close(table[0], torch.tensor([0.0, 0.0, 1.0, 1.0, 0.0, 0.0, 1.0, 1.0]))
    with pytest.raises(ValueError, match="divisible by 4"):
        sincos_positions(4, 6)


def _position_r2(vit, images: torch.Tensor) -> float:
    """R^2 of a least-squares linear probe reading a patch token's (row, column) from the ViT features, fitted
    on the first half of `images` and scored on the second."""
    features = torch.cat([vit(images, output_hidden_states=True).hidden_states[i][:, 1:] for i in (2, 4)], -1)
    grid = int(features.shape[1] ** 0.5)
    target = torch.stack(torch.meshgrid(torch.arange(grid), torch.arange(grid), indexing="ij"), -1)
    target = target.reshape(1, -1, 2).expand(len(images), -1, -1).float()
    half = len(images) // 2
    x = torch.cat([features, torch.ones_like(features[..., :1])], -1)
    fit = torch.linalg.lstsq(x[:half].reshape(-1, x.shape[-1]), target[:half].reshape(-1, 2)).solution
    error = x[half:].reshape(-1, x.shape[-1]) @ fit - target[half:].reshape(-1, 2)
    return float(1 - error.pow(2).sum() / (target[half:] - target[half:].mean()).pow(2).sum())


@torch.no_grad()
def test_random_init_vit_tokens_say_where_they_are():
    torch.manual_seed(0)
    images = torch.rand(48, 3, 64, 64)
    images = images + torch.linspace(0, 1, 64).view(1, 1, 1, 64) * torch.rand(48, 3, 1, 1)  # a gradient each
    torch.manual_seed(0)
    sincos = build_vit(ViTConfig(), 64).eval()
    table = sincos.embeddings.position_embeddings[0, 1:]
    torch.testing.assert_close(table, SINCOS_AMPLITUDE * sincos_positions(8, 64))
    torch.manual_seed(0)
    library = build_vit(ViTConfig(position_init="random"), 64).eval()
    assert _position_r2(sincos, images) > 0.85 > 0.5 > _position_r2(library, images)  # 0.92, 0.41
    with pytest.raises(ValueError, match="position_init"):
        build_vit(ViTConfig(position_init="learned"), 64)
