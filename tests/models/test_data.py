"""MMRSDataModule on converted sample-corpus sources: batches, mixing, determinism, resume, padding, s3."""

import json
import math
import shutil
from collections import Counter
from dataclasses import replace
from pathlib import Path

import fsspec
import lightning as L
import numpy as np
import pytest
import torch
from lightning.pytorch.callbacks import ModelCheckpoint

import models.data as data
from mmrs.shards import iter_source_records
from models.config import tiny
from models.data import DataConfig, MMRSDataModule
from models.earthgpt import IGNORE_INDEX
from models.prompt_variation import vary_record
from models.tokenization import encode_conversation, train_bpe_tokenizer

NAMES = ("rsicd", "rsvqa_lr", "dior")
MODEL = replace(tiny(), max_text_tokens=1024)  # room for whole captions, long VQA and detection answers


@pytest.fixture(scope="module")
def corpus(sample_corpus) -> Path:
    """rsicd (captioning), rsvqa_lr (vqa), dior (detection) converted, merged into mmrs_1m.json."""
    return sample_corpus(NAMES, merge=True) / "mmrs"


@pytest.fixture(scope="module")
def records(corpus) -> dict[str, dict]:
    return {r["id"]: r for name in NAMES for r in iter_source_records(str(corpus / name))}


@pytest.fixture(scope="module")
def tok(records):
    return train_bpe_tokenizer([t["value"] for r in records.values() for t in r["conversations"]], vocab_size=1000)


def _module(tok, model=MODEL, **config) -> MMRSDataModule:
    dm = MMRSDataModule(DataConfig(**config), model, tok)
    dm.setup("fit")
    return dm


def _take(dm: MMRSDataModule, n: int) -> list[dict]:
    """The next n training batches, across epochs as a trainer would iterate."""
    batches: list[dict] = []
    while len(batches) < n:
        for batch in dm.train_dataloader():
            batches.append(batch)
            if len(batches) == n:
                break
    return batches


def _epoch(loader) -> list[dict]:
    return list(loader)


def _ids(batches: list[dict]) -> list[str]:
    return [i for b in batches for i in b["ids"]]


def _assert_same(a: list[dict], b: list[dict]) -> None:
    assert len(a) == len(b)
    for x, y in zip(a, b, strict=True):
        assert x["ids"] == y["ids"]
        for key in ("input_ids", "attention_mask", "labels", "pixels"):
            assert torch.equal(x[key], y[key]), key


def _two_sources(corpus: Path) -> list[str]:
    return [str(corpus / "rsicd"), str(corpus / "rsvqa_lr")]


def test_batches_have_the_documented_shapes_and_masks(corpus, records, tok):
    dm = _module(tok, manifest=str(corpus / "mmrs_1m.json"), batch_size=4)
    batches = _epoch(dm.train_dataloader())
    assert len(batches) == len(dm.train_dataloader()) == math.ceil(114 / 4)  # train+val records of the 3 sources
    assert sorted(_ids(batches)) == sorted(i for i, r in records.items() if r["split"] in ("train", "val"))
    for batch in batches[:8]:
        b, t = batch["input_ids"].shape
        assert batch["pixels"].shape == (b, 3, MODEL.image_size, MODEL.image_size)
        assert batch["pixels"].dtype == torch.float32 and batch["input_ids"].dtype == torch.long
        assert batch["attention_mask"].shape == batch["labels"].shape == (b, t)
        assert batch["attention_mask"].sum(1).max() == t  # padded to the longest sample
        for row, record_id in enumerate(batch["ids"]):
            n = int(batch["attention_mask"][row].sum())
            assert batch["attention_mask"][row, :n].all() and not batch["attention_mask"][row, n:].any()
            assert (batch["input_ids"][row, n:] == tok.pad_token_id).all()
            assert (batch["labels"][row, n:] == IGNORE_INDEX).all()
            expected = encode_conversation(tok, records[record_id]["conversations"], MODEL.max_text_tokens)
            assert batch["input_ids"][row, :n].tolist() == expected.input_ids
            assert batch["labels"][row, :n].tolist() == expected.labels
            supervised = tok.decode([x for x in batch["labels"][row].tolist() if x != IGNORE_INDEX])
            answers = "".join(f" {turn['value'].strip()}</s>" for turn in records[record_id]["conversations"][1::2])
            assert answers.startswith(supervised) and len(supervised) > 4  # answers only, maybe the last cut


def test_mixing_follows_the_weights(corpus, tok):
    mixed = {"sources": _two_sources(corpus), "weights": {"rsicd": 1, "rsvqa_lr": 3}, "batch_size": 4}
    dm = _module(tok, **mixed)
    assert dm.train_stream.quota == {"rsicd": 22, "rsvqa_lr": 68}  # 90 records a pass, shared 1:3
    epochs = [Counter(i.split("/")[0] for i in _ids(_epoch(dm.train_dataloader()))) for _ in range(2)]
    assert epochs == [{"rsicd": 22, "rsvqa_lr": 68}] * 2
    first_half = Counter(i.split("/")[0] for i in _ids(_take(_module(tok, **mixed, seed=5), 11)))
    assert abs(first_half["rsvqa_lr"] / 44 - 0.75) < 0.12  # the ratio holds along the epoch, not just in total
    by_size = _module(tok, sources=_two_sources(corpus), batch_size=4)
    ids = _ids(_epoch(by_size.train_dataloader()))
    assert len(ids) == len(set(ids)) == 54 + 36  # default weights: one pass, every record once


def test_the_seed_decides_the_batches(corpus, tok):
    config = {"sources": _two_sources(corpus), "batch_size": 8, "bucket_batches": 2}
    first = _take(_module(tok, **config), 4)
    _assert_same(first, _take(_module(tok, **config), 4))
    assert _ids(_take(_module(tok, **config, seed=1), 4)) != _ids(first)
    dm = _module(tok, **config)
    dm.train_stream.set_epoch(1)
    assert _ids(_take(dm, 4)) != _ids(first)  # each epoch is reshuffled


@pytest.mark.parametrize("split", [5, 12])  # mid-epoch, and the last batch of epoch 0 (12 batches)
def test_resume_continues_with_the_next_batch(corpus, tok, monkeypatch, split):
    config = {"sources": _two_sources(corpus), "batch_size": 8, "bucket_batches": 4}
    straight = _take(_module(tok, **config), 16)
    first = _module(tok, **config)
    head = _take(first, split)
    state = json.loads(json.dumps(first.state_dict()))  # survives a checkpoint's serialisation
    resumed = MMRSDataModule(DataConfig(**config), MODEL, tok)
    resumed.load_state_dict(state)  # before setup, as Lightning may do
    resumed.setup("fit")
    loads: list[str] = []
    read = data.load_record_image

    def counting_read(image_root: str, image: str):
        loads.append(image)
        return read(image_root, image)

    monkeypatch.setattr(data, "load_record_image", counting_read)
    tail = _take(resumed, 16 - split)
    assert len(loads) == sum(len(b["ids"]) for b in tail)  # the fast-forward decoded no image
    _assert_same(head + tail, straight)
    assert resumed.stats.samples == sum(len(b["ids"]) for b in straight)  # statistics carry over


class _Recorder(L.LightningModule):
    """Records the batches a trainer feeds it; a single weight keeps the optimiser busy."""

    def __init__(self):
        super().__init__()
        self.weight = torch.nn.Parameter(torch.zeros(1))
        self.seen: list[list[str]] = []

    def training_step(self, batch, batch_idx):
        self.seen.append(batch["ids"])
        return (self.weight * batch["input_ids"].float().mean()).sum()

    def validation_step(self, batch, batch_idx):
        return None

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)


def _fit(tok, config, root: Path, steps: int, ckpt: str | None = None) -> list[list[str]]:
    module = _Recorder()
    trainer = L.Trainer(max_steps=steps, accelerator="cpu", logger=False, enable_progress_bar=False,
                        enable_model_summary=False, default_root_dir=str(root),
                        callbacks=[ModelCheckpoint(dirpath=root, every_n_train_steps=4, save_top_k=-1,
                                                   filename="{step}")])
    trainer.fit(module, datamodule=MMRSDataModule(DataConfig(**config), MODEL, tok), ckpt_path=ckpt)
    return module.seen


def test_lightning_checkpoint_resumes_at_the_next_batch(corpus, tok, tmp_path):
    config = {"sources": [str(corpus / "rsicd")], "batch_size": 8, "tasks": ("captioning",)}  # 7 batches/epoch
    straight = _fit(tok, config, tmp_path / "a", steps=12)
    assert len(straight) == 12
    resumed = _fit(tok, config, tmp_path / "b", steps=12, ckpt=str(tmp_path / "a" / "step=8.ckpt"))
    assert resumed == straight[8:]  # no batch lost to Lightning's prefetching, none repeated


def test_length_grouping_reduces_padding(corpus, tok):
    fractions = {}
    for group in (False, True):
        dm = _module(tok, manifest=str(corpus / "mmrs_1m.json"), batch_size=4, group_by_length=group)
        _epoch(dm.train_dataloader())
        fractions[group] = dm.stats.padding_fraction
    print(f"padding fraction: plain order {fractions[False]:.3f}, length-grouped {fractions[True]:.3f}")
    assert fractions[True] < 0.5 * fractions[False]


def test_bad_records_are_counted_not_fatal(corpus, tok, tmp_path):
    shutil.copytree(corpus.parent, tmp_path / "copy")  # shards with their raw data (relative image roots)
    source = tmp_path / "copy" / "mmrs" / "rsicd"
    shard = source / "train-00000.jsonl"
    good = json.loads(shard.read_text().splitlines()[0])
    long = good | {"id": "rsicd/bad/long", "conversations": [{"from": "human", "value": "big " * 2000},
                                                             {"from": "gpt", "value": "x"}]}
    lost = good | {"id": "rsicd/bad/image", "image": "missing.png"}
    no_turns = {"id": "rsicd/bad/record", "task": "captioning"}
    bad = ["{not json", json.dumps(long), json.dumps(lost), json.dumps(no_turns)]
    shard.write_text("\n".join(bad) + "\n" + shard.read_text())
    dm = _module(tok, sources=[str(source)], batch_size=1, group_by_length=False, shuffle_buffer=0)
    batches = _epoch(dm.train_dataloader())
    assert len(batches) == len(dm.train_dataloader()) - 1  # the batch of the missing image only counts
    skipped = dm.stats.skipped
    assert skipped.pop(data.MALFORMED_LINE) == skipped.pop(data.MALFORMED_RECORD) == 1
    assert skipped.pop(data.UNREADABLE_IMAGE) == 1
    assert list(skipped) == [f"the first question alone needs more than {MODEL.max_text_tokens} tokens"]
    assert dm.state_dict()["epoch"] == 1


def test_shards_on_s3(corpus, tok, s3_bucket):
    fsspec.filesystem("s3").put(str(corpus.parent), f"{s3_bucket}/corpus", recursive=True)  # shards and images
    config = {"batch_size": 8, "shuffle_buffer": 16, "tasks": ("captioning",)}
    remote = _module(tok, manifest=f"s3://{s3_bucket}/corpus/mmrs/mmrs_1m.json", **config)
    assert remote.train_stream.sources[0].image_root.startswith(f"s3://{s3_bucket}/corpus/sample/")
    local = _module(tok, manifest=str(corpus / "mmrs_1m.json"), **config)
    _assert_same(_epoch(remote.train_dataloader()), _epoch(local.train_dataloader()))
    assert remote.state_dict() == local.state_dict()  # a position saved on one resumes on the other


def test_workers_deliver_the_same_batches(corpus, tok):
    config = {"sources": _two_sources(corpus), "batch_size": 8, "bucket_batches": 2}
    plain = _take(_module(tok, **config), 8)
    workers = _module(tok, **config, num_workers=2)
    _assert_same(_take(workers, 3), plain[:3])
    resumed = _module(tok, **config, num_workers=2)
    resumed.load_state_dict(workers.state_dict())
    _assert_same(_take(resumed, 5), plain[3:])


def test_ranks_share_the_batches_of_one_stream(corpus, tok):
    config = DataConfig(sources=_two_sources(corpus), batch_size=8)
    sources = data.load_sources(config, None)
    single = _epoch(data.StreamLoader(data.MMRSStream(sources, config, MODEL, tok)))
    ranks = [_epoch(data.StreamLoader(data.MMRSStream(sources, config, MODEL, tok, rank=r, world_size=2)))
             for r in (0, 1)]
    assert len(ranks[0]) == len(ranks[1]) == len(single) // 2  # equal lengths, or DDP would hang
    _assert_same([batch for pair in zip(*ranks, strict=True) for batch in pair], single[: 2 * len(ranks[0])])


def test_validation_reads_held_out_splits_the_same_way_every_time(corpus, records, tok):
    dm = _module(tok, manifest=str(corpus / "mmrs_1m.json"), val_splits=("test",), batch_size=8)
    first, second = _epoch(dm.val_dataloader()), _epoch(dm.val_dataloader())
    _assert_same(first, second)
    assert sorted(_ids(first)) == sorted(i for i, r in records.items() if r["split"] == "test")
    assert (dm.state_dict()["epoch"], dm.state_dict()["position"]) == (0, 0)
    assert _module(tok, manifest=str(corpus / "mmrs_1m.json")).val_dataloader() == []


def test_stage_two_reads_only_captions(corpus, tok):
    dm = _module(tok, manifest=str(corpus / "mmrs_1m.json"), tasks=("captioning",), batch_size=8)
    ids = _ids(_epoch(dm.train_dataloader()))
    assert len(ids) == 54 and all(i.startswith("rsicd/") for i in ids)


def test_bad_configuration_is_a_clear_error(corpus, tok):
    with pytest.raises(ValueError, match="exactly one"):
        DataConfig()
    with pytest.raises(ValueError, match="no mixing weight"):
        _module(tok, sources=_two_sources(corpus), weights={"rsicd": 1})
    with pytest.raises(ValueError, match="no records"):
        _module(tok, sources=_two_sources(corpus), tasks=("grounding",))
    saved = _module(tok, sources=_two_sources(corpus)).state_dict()
    with pytest.raises(ValueError, match="cannot be resumed"):
        _module(tok, sources=_two_sources(corpus), seed=1).load_state_dict(saved)


def test_text_only_batches_read_no_image(corpus, tok, monkeypatch):
    with_images = _take(_module(tok, manifest=str(corpus / "mmrs_1m.json"), batch_size=4), 2)

    def no_image(*args):
        raise AssertionError("text-only batches must not read images")

    monkeypatch.setattr(data, "load_record_image", no_image)
    text_only = _take(_module(tok, manifest=str(corpus / "mmrs_1m.json"), batch_size=4, images=False), 2)
    assert "pixels" not in text_only[0]
    assert _ids(text_only) == _ids(with_images)  # the same records in the same batches, without pixels
    assert torch.equal(text_only[1]["input_ids"], with_images[1]["input_ids"])


def test_a_moved_corpus_gives_the_same_batches(corpus, tok, tmp_path):
    """Raw data and converted shards copied elsewhere together (another clone, a DVC checkout): the same
    batches, pixels included, since manifests record local image roots relative to themselves."""
    shutil.copytree(corpus.parent, tmp_path / "copy")
    here = _take(_module(tok, manifest=str(corpus / "mmrs_1m.json"), batch_size=4), 3)
    there = _take(_module(tok, manifest=str(tmp_path / "copy" / "mmrs" / "mmrs_1m.json"), batch_size=4), 3)
    assert _ids(here) == _ids(there)
    for a, b in zip(here, there, strict=True):
        assert torch.equal(a["pixels"], b["pixels"])
    copied = data.load_sources(DataConfig(manifest=str(tmp_path / "copy" / "mmrs" / "mmrs_1m.json")), None)
    assert all(source.image_root.startswith(str(tmp_path / "copy" / "sample")) for source in copied)  # not the original


def test_two_ranks_read_one_stored_plan_with_disjoint_complete_coverage(corpus, tok, tmp_path, monkeypatch):
    """The epoch's plan is computed once and stored; each rank memory-maps it and takes its own batches."""
    monkeypatch.setenv(data.PLAN_CACHE_ENV, str(tmp_path / "plans"))
    written = []
    write = data.PlanIndex.write
    monkeypatch.setattr(data.PlanIndex, "write", staticmethod(lambda folder, batches: (written.append(folder),
                                                                                       write(folder, batches))))
    config = DataConfig(manifest=str(corpus / "mmrs_1m.json"), batch_size=4, num_workers=2)
    sources = data.load_sources(config, None)
    streams = [data.MMRSStream(sources, config, MODEL, tok, rank=r, world_size=2) for r in (0, 1)]
    ranks = [_ids(_epoch(data.StreamLoader(s, num_workers=2))) for s in streams]
    assert len(written) == 1  # one plan for both ranks and their four workers
    plan = streams[0].plan_index(0)
    assert isinstance(plan.samples, np.memmap) and plan.folder == streams[1].plan_index(0).folder
    assert set(ranks[0]).isdisjoint(ranks[1]) and len(set(ranks[0])) == len(ranks[0])
    delivered = 2 * len(streams[0])  # batches of the epoch both ranks deliver (an odd last one is left)
    planned = [streams[0].planned_batch(plan, i) for i in range(delivered)]
    assert sorted(ranks[0] + ranks[1]) == sorted(s.id for b in planned for s in b.samples)
    assert [int(n) for n in plan.samples["tokens"][:4]] == [len(s.input_ids) for s in planned[0].samples]


def test_the_stored_plan_holds_each_records_place_and_tokens(corpus, records, tok, tmp_path, monkeypatch):
    monkeypatch.setenv(data.PLAN_CACHE_ENV, str(tmp_path / "plans"))
    config = DataConfig(sources=tuple(_two_sources(corpus)), batch_size=8, bucket_batches=2)
    stream = data.MMRSStream(data.load_sources(config, None), config, MODEL, tok)
    plan = stream.plan_index(0)
    assert len(plan) == math.ceil(sum(stream.quota.values()) / 8)
    for index in range(len(plan)):
        batch = stream.planned_batch(plan, index)
        rows = plan.samples[plan.batches[index]:plan.batches[index + 1]]
        for sample, tokens in zip(batch.samples, rows["tokens"], strict=True):
            expected = encode_conversation(tok, records[sample.id]["conversations"], MODEL.max_text_tokens)
            assert sample.input_ids == expected.input_ids and len(sample.input_ids) == tokens


def test_lines_encoded_by_a_pool_of_processes_give_the_same_plan(corpus, tok, tmp_path, monkeypatch):
    config = DataConfig(manifest=str(corpus / "mmrs_1m.json"), batch_size=4)
    plans = []
    for processes in ("1", "2"):
        monkeypatch.setenv(data.PLAN_CACHE_ENV, str(tmp_path / processes))
        monkeypatch.setenv(data.PLAN_PROCESSES_ENV, processes)
        monkeypatch.setattr(data, "PARALLEL_RECORDS", 0)
        plans.append(data.MMRSStream(data.load_sources(config, None), config, MODEL, tok).plan_index(0))
    assert np.array_equal(plans[0].samples, plans[1].samples) and np.array_equal(plans[0].batches, plans[1].batches)
    assert plans[0].tallies == plans[1].tallies


def test_a_plan_stored_by_other_code_is_not_reused(corpus, tok, tmp_path, monkeypatch):
    # a machine whose cache holds plans of older code (another prompt variation, say) must plan afresh:
    # the same data, settings and tokenizer, but other planning code, give other keys and another folder
    monkeypatch.setenv(data.PLAN_CACHE_ENV, str(tmp_path / "plans"))
    config = DataConfig(sources=tuple(_two_sources(corpus)), batch_size=8)
    stream = data.MMRSStream(data.load_sources(config, None), config, MODEL, tok)
    keys = {key: getattr(stream, key) for key in ("fingerprint", "plan_key", "lines_key")}
    stream.plan_index(0)
    stored = set((tmp_path / "plans").iterdir())
    monkeypatch.setattr(data, "planning_code_version", lambda: "0123456789abcdef")
    again = data.MMRSStream(data.load_sources(config, None), config, MODEL, tok)
    assert all(getattr(again, key) != value for key, value in keys.items())
    again.plan_index(0)
    assert len(set((tmp_path / "plans").iterdir()) - stored) == len(stored)  # nothing of the first plan read


def test_prompt_variation_rewords_the_batches_and_keys_the_plan(corpus, records, tok):
    config = {"sources": _two_sources(corpus), "batch_size": 8}
    plain, varied = _module(tok, **config), _module(tok, **config, prompt_variation=True)
    for key in ("fingerprint", "plan_key", "lines_key"):
        assert getattr(plain.train_stream, key) != getattr(varied.train_stream, key)
    batches = _epoch(varied.train_dataloader())
    assert sorted(_ids(batches)) == sorted(_ids(_epoch(plain.train_dataloader())))
    changed = 0
    for batch in batches:
        for row, record_id in enumerate(batch["ids"]):
            n = int(batch["attention_mask"][row].sum())
            turns = vary_record(records[record_id], 0)["conversations"]
            expected = encode_conversation(tok, turns, MODEL.max_text_tokens).input_ids
            assert batch["input_ids"][row, :n].tolist() == expected
            changed += turns != records[record_id]["conversations"]
    assert changed > len(_ids(batches)) // 4  # about half reworded (KEEP_SHARE); the same tokens when read again
