"""Box confidence sources: CLIP similarity (a tiny random CLIP saved to a folder), the predictions'
log-probabilities, equal scores; and which one is chosen."""

import pytest
import torch
from PIL import Image
from tokenizers import Tokenizer, models, pre_tokenizers, trainers
from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel, CLIPProcessor, CLIPTokenizerFast

from evaluation.benchmarks import load_benchmark_data
from evaluation.confidence import BoxQuery, ClipScorer, EqualScorer, LogProbScorer, choose_scorer
from evaluation.images import box_pixels, load_square_rgb
from evaluation.predictions import EvaluationInputError, Prediction
from evaluation.scoring import get_benchmark


@pytest.fixture(scope="module")
def clip_dir(tmp_path_factory):
    """A random-init CLIP (1 layer per tower, 32 px images) with its processor, as a transformers folder."""
    bpe = Tokenizer(models.BPE(unk_token="<|endoftext|>"))
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.train_from_iterator(["a satellite image of a plane.", "a satellite image of a ship."] * 5, trainers.BpeTrainer(
        vocab_size=300, special_tokens=["<|startoftext|>", "<|endoftext|>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    tokenizer = CLIPTokenizerFast(tokenizer_object=bpe, bos_token="<|startoftext|>", eos_token="<|endoftext|>",
                                  unk_token="<|endoftext|>", pad_token="<|endoftext|>")
    config = CLIPConfig(
        text_config={"vocab_size": len(tokenizer), "hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 1,
                     "num_attention_heads": 2, "max_position_embeddings": 40, "eos_token_id": tokenizer.eos_token_id,
                     "bos_token_id": tokenizer.bos_token_id, "pad_token_id": tokenizer.pad_token_id},
        vision_config={"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 1, "num_attention_heads": 2,
                       "image_size": 32, "patch_size": 8},
        projection_dim=16)
    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("clip")
    CLIPModel(config).save_pretrained(folder)
    CLIPProcessor(image_processor=CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32}),
                  tokenizer=tokenizer).save_pretrained(folder)
    return str(folder)


def _query(record, boxes, scores=None):
    return BoxQuery(record, "plane", boxes, Prediction(f"{record['id']}#0", "...", scores))


def test_clip_scores_are_the_cosine_of_the_box_crop_and_the_class_prompt(clip_dir, converted):
    data = load_benchmark_data(get_benchmark("mar20_hbb"), str(converted))
    record = data.records[0]
    boxes = [tuple(b) for b in record["target"]["boxes_norm"][:3]] + [(0.0, 0.0, 0.001, 0.001)]  # a tiny box too
    scores = ClipScorer(clip_dir, data.image_root)(_query(record, boxes))
    assert len(scores) == len(boxes) and all(-1.0 <= s <= 1.0 for s in scores)
    # by hand, for the first box
    model, processor = CLIPModel.from_pretrained(clip_dir).eval(), CLIPProcessor.from_pretrained(clip_dir)
    square = load_square_rgb(data.image_root, record["image"])
    left, top, right, bottom = box_pixels(boxes[0], square.shape[0])
    with torch.no_grad():
        image = model.get_image_features(**processor(images=[Image.fromarray(square[top:bottom, left:right])],
                                                     return_tensors="pt")).pooler_output
        text = model.get_text_features(**processor(text=["a satellite image of a plane."], return_tensors="pt",
                                                   padding=True)).pooler_output
    assert scores[0] == pytest.approx(torch.nn.functional.cosine_similarity(image, text).item(), abs=1e-5)
    obb = ClipScorer(clip_dir, data.image_root)(_query(record, [(0.1, 0.1, 0.3, 0.12, 0.28, 0.3, 0.08, 0.28)]))
    assert len(obb) == 1


def test_log_prob_scores_come_from_the_predictions_and_must_fit_the_boxes():
    record = {"id": "r", "image": "x.png"}
    assert LogProbScorer()(_query(record, [(0, 0, 1, 1)] * 2, (-0.5, -2.0))) == [-0.5, -2.0]
    with pytest.raises(EvaluationInputError, match="1 box_scores for 2 boxes"):
        LogProbScorer()(_query(record, [(0, 0, 1, 1)] * 2, (-0.5,)))
    with pytest.raises(EvaluationInputError, match="no box_scores"):
        LogProbScorer()(_query(record, [(0, 0, 1, 1)]))
    assert EqualScorer()(_query(record, [(0, 0, 1, 1)] * 3)) == [1.0, 1.0, 1.0]


def test_the_scorer_is_clip_when_configured_else_log_probabilities_else_equal(clip_dir, tmp_path):
    with_scores, without = Prediction("a#0", "", (-1.0,)), Prediction("b#0", "")
    assert isinstance(choose_scorer([without]), EqualScorer)
    assert isinstance(choose_scorer([without, with_scores]), LogProbScorer)
    assert isinstance(choose_scorer([with_scores], clip_dir, str(tmp_path)), ClipScorer)
    with pytest.raises(EvaluationInputError, match="image root"):
        choose_scorer([], clip_dir)
