"""Smoke test of benchmarks/annotate_memory.py on a tiny pipeline and input:
the figures mean nothing, the wiring, the JSON and the zones' effect do."""
import json
import sys
from pathlib import Path

from util import save_tiny_pipeline

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"
sys.path.insert(0, str(BENCHMARKS))

import annotate_memory  # noqa: E402


def test_annotate_memory_runs_both_modes(tmp_path, tiny_xlmr_dir):
    model = save_tiny_pipeline(tiny_xlmr_dir, tmp_path / "model")
    out = tmp_path / "results.json"
    annotate_memory.main(
        ["--model", str(model), "--sizes", "20KB", "--work-dir", str(tmp_path / "work"), "--out", str(out)]
    )
    results = json.loads(out.read_text(encoding="utf8"))
    rows = {row["mode"]: row for row in results["rows"]}
    assert set(rows) == {"zone", "no-zone"}
    records = rows["zone"]["records"]
    assert records == rows["no-zone"]["records"] and records > 300
    assert all(row["peak_rss_mb"] > 0 and row["bytes"] >= 20 * 1024 for row in rows.values())
    # each record brings a word of its own: kept without the zones, freed with them
    assert rows["no-zone"]["strings_added"] >= records
    assert rows["zone"]["strings_added"] < 100
    assert annotate_memory.parse_size("5MB") == 5 << 20 and annotate_memory.parse_size("100") == 100
