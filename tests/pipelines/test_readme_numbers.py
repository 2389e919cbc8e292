import json

import pytest

from pipelines import readme_numbers
from pipelines.readme_numbers import BEGIN, END, collect, readme_block, record, render, replace_block


def test_the_readmes_demo_numbers_are_rendered_from_the_recorded_runs():
    """A number typed into the README's block by hand, or a run recorded without rendering, fails here."""
    runs = json.loads(readme_numbers.RUNS.read_text())
    assert readme_block(readme_numbers.README.read_text()) == render(runs)


def _result(path, name, ours, baseline, oa=None):
    metrics = {"Top-1": ours} if oa is None else {"presence balanced": ours, "OA": oa}
    path.joinpath(f"{name}.json").write_text(json.dumps({"benchmark": name, "metrics": metrics,
                                                         "baseline": {k: baseline for k in metrics}}))


def test_collect_takes_the_headline_and_the_papers_oa_from_the_results(tmp_path):
    _result(tmp_path, "nwpu_resisc45", 97.123, 10.75)
    _result(tmp_path, "rsvqa_hr_phili", 60.0, 50.0, oa=70.0)
    manifest = tmp_path / "mmrs_1m.json"
    manifest.write_text(json.dumps({"records": 3505, "sources": {"a": 1, "b": 2}}))
    entry = collect(tmp_path, manifest, ["nwpu_resisc45", "rsvqa_hr_phili", "clrs"])  # clrs not evaluated
    assert entry == {"benchmarks": {"nwpu_resisc45": {"Top-1": {"ours": 97.12, "baseline": 10.75}},
                                    "rsvqa_hr_phili": {"presence balanced": {"ours": 60.0, "baseline": 50.0},
                                                       "OA": {"ours": 70.0, "baseline": 50.0}}},
                     "training_records": 3505, "sources": 2}


def test_seeds_render_as_median_and_range_and_a_seed_rerun_replaces_its_entry(tmp_path):
    runs_file = tmp_path / "runs.json"
    for seed, ours in [(0, 40.0), (1, 60.0), (2, 50.0), (1, 55.0)]:
        record(seed, {"benchmarks": {"clrs": {"Top-1": {"ours": ours, "baseline": 45.0}}}, "training_records": 10,
                      "sources": 1, "commit": "abc", "minutes": 7.0 + seed}, runs_file)
    runs = json.loads(runs_file.read_text())
    assert [r["seed"] for r in runs["runs"]] == [0, 1, 2]
    block = render(runs)
    assert "| `clrs` | Top-1 | 50.0 (40.0-55.0) | 45.0 (45.0-45.0) | 2 of 3 |" in block
    assert "seeds 0, 1, 2" in block and "8.0 (7.0-9.0) minutes" in block


def test_the_block_is_replaced_between_its_markers_only():
    readme = f"intro\n{BEGIN}\nold\n{END}\noutro\n"
    assert replace_block(readme, f"{BEGIN}\nnew\n{END}") == f"intro\n{BEGIN}\nnew\n{END}\noutro\n"
    with pytest.raises(ValueError, match="no block"):
        replace_block("no markers", "x")
