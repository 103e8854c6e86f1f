"""Smoke test of benchmarks/convert_scale.py on tiny corpora: the wiring and
the JSON, not the figures."""
import json
import sys
from pathlib import Path

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"
sys.path.insert(0, str(BENCHMARKS))

import convert_scale  # noqa: E402


def test_generate_writes_multilingual_jsonl_of_the_size(tmp_path):
    path = tmp_path / "c.jsonl"
    count = convert_scale.generate(path, 20_000)
    lines = [json.loads(line) for line in path.read_text(encoding="utf8").splitlines()]
    assert len(lines) == count and 20_000 <= path.stat().st_size < 21_000
    assert len({line["lang"] for line in lines}) == len(convert_scale.SCRIPTS)
    assert convert_scale.parse_size("1GB") == 1 << 30 and convert_scale.parse_size("64KB") == 65536


def test_convert_scale_runs_convert_in_a_child_and_writes_results(tmp_path):
    out = tmp_path / "convert_scale.json"
    results = convert_scale.main(
        ["--sizes", "40KB,80KB", "--work-dir", str(tmp_path / "work"), "--shard-size", "100", "--out", str(out)]
    )
    assert json.loads(out.read_text(encoding="utf8")) == results
    small, large = results["points"]
    assert large["records"] > small["records"] > 100
    assert small["peak_rss_mb"] > 50 and small["wall_seconds"] > 0
    assert large["outputs"]["train"]["folder"] and large["outputs"]["train"]["files"] > 1
    assert large["outputs"]["converted"] == sum(large["outputs"][n]["texts"] for n in ("train", "dev", "test"))
    assert results["rss_ratio_largest_to_smallest"] > 0
    assert list((tmp_path / "work").iterdir()) == []  # corpora and outputs deleted
