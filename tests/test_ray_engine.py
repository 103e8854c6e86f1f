"""The Ray engine: same output as the local engine, nothing lost, killed actors retried.

The Ray tests share one local two-node cluster (two raylets, one CPU each, on
127.0.0.1 only), started once for the module and stopped afterwards. They are
skipped when Ray is not installed (pip install "spacy-mlbert[ray]"); the
checks that need no Ray run always.
"""
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy
import pytest
import srsly
from typer.testing import CliRunner

from engines_util import BATCH, corpus, local_output, make_gold, save_tiny_pipeline, write_lines
from spacy_mlbert.cli import app
from spacy_mlbert.annotate.engines import local as local_engine, ray_engine
from spacy_mlbert.annotate.engines.ray_engine import (
    MANIFEST,
    RayAnnotator,
    RaySettings,
    annotate_ray,
    iter_output_lines,
    predict_arrays_ray,
)
from spacy_mlbert.annotate.engines.ray_input import _jsonl_cuts, _split_lines
from spacy_mlbert.evaluation import compute_metrics, load_pipeline, predict_arrays


@pytest.fixture(scope="module")
def model_dir(workdir, tiny_xlmr_dir):
    return save_tiny_pipeline(tiny_xlmr_dir, workdir / "model")


@pytest.fixture(scope="module")
def ray_module():
    return pytest.importorskip("ray", reason="the Ray engine needs: pip install 'spacy-mlbert[ray]'")


@pytest.fixture(scope="module")
def cluster(ray_module):
    """A two-node Ray cluster on 127.0.0.1 (head and worker, one CPU each).

    Ray's test cluster starts the nodes' processes as children of this
    process and stops exactly those (nothing like `ray stop`, which would
    end every Ray of the machine). Ray binds to the loopback address only in
    its single-machine mode, which the engine sets while the nodes start.
    """
    from ray.cluster_utils import Cluster

    with ray_engine.loopback_only(ray_module):
        cluster = Cluster(
            initialize_head=True,
            head_node_args={"num_cpus": 1, "include_dashboard": False, "node_ip_address": "127.0.0.1"},
        )
        cluster.add_node(num_cpus=1, node_ip_address="127.0.0.1")
        # one connection for all the runs: the engine uses a Ray that is up
        ray_module.init(address=cluster.address, logging_level="WARNING")
    try:
        yield cluster
    finally:
        if ray_module.is_initialized():
            ray_module.shutdown()
        cluster.shutdown()


def settings(cluster, **kwargs) -> RaySettings:
    values = dict(address=cluster.address, actors=2, batch_size=BATCH, block_batches=2, progress=False)
    values.update(kwargs)
    return RaySettings(**values)


# ------------------------------------------------------------ needs no Ray


@pytest.mark.parametrize("ending", [b"", b"\n"])
@pytest.mark.parametrize("n_lines", [1, 7, 8, 9, 16, 17])
def test_jsonl_cuts_match_lines(tmp_path, n_lines, ending):
    lines = [f'{{"text": "line {i}\\r still {i}"}}'.encode() for i in range(n_lines)]
    path = tmp_path / "in.jsonl"
    path.write_bytes(b"\n".join(lines) + ending)
    cuts, count = _jsonl_cuts(path, block_size=8)
    assert count == n_lines
    data = path.read_bytes()
    blocks = [_split_lines(data[a:b]) for a, b in zip(cuts, cuts[1:])]
    assert [len(block) for block in blocks[:-1]] == [8] * (len(blocks) - 1)
    assert [line.rstrip(b"\n") for block in blocks for line in block] == lines


def test_missing_ray_is_a_coded_message(monkeypatch, workdir, model_dir):
    # None in sys.modules makes `import ray` fail as if it were not installed
    monkeypatch.setitem(sys.modules, "ray", None)
    source = write_lines(workdir / "noray.jsonl", corpus(3))
    for command in (
        ["annotate", str(model_dir), str(source), str(workdir / "noray-out"), "--engine", "ray"],
        ["evaluate", str(model_dir), str(workdir / "none.spacy"), "-o", str(workdir / "m.json"), "--engine", "ray"],
    ):
        result = CliRunner().invoke(app, command)
        assert result.exit_code == 1, result.output
        assert "[E091]" in result.output and 'pip install "spacy-mlbert[ray]"' in result.output
        assert "Traceback" not in result.output
    assert not (workdir / "noray-out").exists()


def test_engine_options_are_checked(workdir, model_dir):
    source = write_lines(workdir / "opts.jsonl", corpus(2))
    runner = CliRunner()
    cases = [
        (["--engine", "spark"], "[E092]"),
        (["--address", "auto"], "[E093] --address applies to --engine ray only"),
        (["--engine", "ray", "--n-process", "2"], "[E093] --n-process applies to --engine local only"),
        (["--engine", "ray", "--actors", "0"], "[E090] actors must be an integer >= 1"),
        (["--n-process", "0"], "[E090] n_process"),
    ]
    for extra, expected in cases:
        result = runner.invoke(app, ["annotate", str(model_dir), str(source), str(workdir / "o.jsonl")] + extra)
        assert result.exit_code == 1 and expected in result.output, result.output
    # an output folder that holds other files is never overwritten
    foreign = workdir / "foreign"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("keep me")
    result = runner.invoke(app, ["annotate", str(model_dir), str(source), str(foreign), "--engine", "ray"])
    assert result.exit_code == 1 and "[E094]" in result.output
    assert (foreign / "notes.txt").read_text() == "keep me"


def test_output_folder_is_synced_and_replaces_an_earlier_run(synced_inodes, workdir, model_dir):
    """The run folder goes through spacy_mlbert.atomic: every file and the
    folder fsynced before the rename, an earlier run's folder replaced. An
    empty input needs no Ray to start."""
    pytest.importorskip("ray")
    synced = synced_inodes
    source = write_lines(workdir / "empty.jsonl", [])
    out_dir = workdir / "empty-out"
    for _ in range(2):
        synced.clear()
        annotate_ray(str(model_dir), source, out_dir, settings=RaySettings(progress=False))
        assert {p.name for p in out_dir.iterdir()} == {MANIFEST, "failures.jsonl"}
        assert (out_dir / MANIFEST).stat().st_ino in synced and out_dir.stat().st_ino in synced
        assert out_dir.parent.stat().st_ino in synced
    assert [p.name for p in workdir.iterdir() if p.name.startswith(".empty-out")] == []


# ------------------------------------------------------------ on Ray


def test_ray_output_is_identical_to_local(cluster, workdir, model_dir):
    """A folder with ~200 JSONL lines (invalid, blank and cut-off ones among
    them) and 40 Parquet rows: the JSONL shards, concatenated in name order,
    are byte for byte the local engine's file; the Parquet rows get the
    predictions the local engine gives the same records."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    lines = list(corpus(200))
    lines[5] = "not json"
    lines[6] = ""
    lines[40] = {"id": "no-text", "lang": "en"}
    lines.append('{"id": "cut", "te')  # a last line cut off
    folder = workdir / "in"
    folder.mkdir()
    source = write_lines(folder / "a.jsonl", lines)
    source.write_bytes(source.read_bytes().rstrip(b"\n"))
    rows = [dict(row, id=str(row["id"])) for row in corpus(40, seed=3)]
    pq.write_table(pa.Table.from_pylist(rows), str(folder / "b.parquet"), row_group_size=7)
    nlp = load_pipeline(model_dir)
    counts, expected = local_output(nlp, source, workdir / "local.jsonl", skip_invalid=True)
    _, expected_b = local_output(nlp, write_lines(workdir / "b.jsonl", rows), workdir / "local-b.jsonl")
    out = workdir / "ray-out"
    args = ["annotate", str(model_dir), str(folder), str(out), "--engine", "ray", "--address", cluster.address]
    args += ["--actors", "2", "--batch-size", str(BATCH), "--block-batches", "2", "--skip-invalid", "--parquet"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "Annotated 237 of 241 line(s) on Ray" in result.output
    manifest = srsly.read_json(out / MANIFEST)
    assert manifest["counts"] == {"read": 241, "written": 237, "skipped": 4, "blank": 1, "failed": 0}
    assert (counts["read"], counts["written"], counts["skipped"]) == (201, 197, 4)
    merged = "".join(path.read_text(encoding="utf8") for path in sorted(out.glob("part-00000-*.jsonl")))
    assert merged == expected
    shards_b = sorted(out.glob("part-00001-*.jsonl"))
    from_parquet = [json.loads(line) for path in shards_b for line in path.read_text(encoding="utf8").splitlines()]
    assert from_parquet == [json.loads(line) for line in expected_b.splitlines()]
    assert "\n".join(iter_output_lines(out)) + "\n" == expected + expected_b
    # every skipped line is reported, with its id where the line had one
    failures = [json.loads(line) for line in (out / "failures.jsonl").read_text(encoding="utf8").splitlines()]
    assert [f["line"] for f in failures] == counts["skipped_lines"] == [6, 7, 41, 201]
    assert failures[2]["id"] == "no-text" and "E023" in failures[2]["reason"]
    assert failures[1]["kind"] == "blank" and failures[3]["kind"] == "invalid"
    # blocks of 16 lines, on two nodes
    firsts = [(s["source"], s["first_line"]) for s in manifest["shards"]]
    assert firsts == [(0, n) for n in range(1, 202, 16)] + [(1, n) for n in range(1, 41, 16)]
    assert sum(s["lines"] for s in manifest["ray"]["actor_stats"]) == 241
    assert manifest["ray"]["nodes"] == 2
    assert manifest["settings"]["batch_size"] == BATCH and manifest["model"]["labels"]
    # the Parquet shards hold the same records
    table = pq.read_table(str(out / manifest["shards"][0]["parquet"]))
    shard_rows = table.to_pylist()
    first_lines = expected.splitlines()[: len(shard_rows)]
    assert [row["json"] for row in shard_rows] == first_lines
    assert shard_rows[0]["cats"] == json.loads(first_lines[0])["cats"]
    assert shard_rows[0]["id"] == "0" and shard_rows[0]["line"] == 1


def test_invalid_line_stops_the_run(cluster, workdir, model_dir):
    lines = list(corpus(40))
    lines[25] = '{"id": "bad", "text": 5}'
    source = write_lines(workdir / "bad.jsonl", lines)
    out = workdir / "bad-out"
    with pytest.raises(ValueError, match=r"E024.*bad.jsonl, line 26"):
        annotate_ray(model_dir, source, out, settings=settings(cluster, actors=1))
    assert not out.exists()
    assert [p.name for p in workdir.iterdir() if p.name.startswith(".bad-out")] == []


class CrashOnce(RayAnnotator):
    """An actor whose first call (in any actor process) leaves a half-written
    shard behind and kills its process, as a node failure would."""

    marker = ""

    def __call__(self, batch):
        if not os.path.exists(self.marker):
            with open(self.marker, "w") as file_:
                file_.write(str(os.getpid()))
            stray = Path(self.options["out_dir"]) / ".part-00000-000000000001.jsonl.dead.tmp"
            stray.write_text('{"half": ')
            os._exit(1)
        return super().__call__(batch)


def test_killed_actor_is_retried_without_loss_or_duplicates(cluster, ray_module, workdir, model_dir):
    # the test module is not importable on Ray's workers: send the class itself
    ray_module.cloudpickle.register_pickle_by_value(sys.modules[__name__])
    CrashOnce.marker = str(workdir / "crashed.marker")
    source = write_lines(workdir / "crash.jsonl", corpus(120, seed=1))
    _, expected = local_output(load_pipeline(model_dir), source, workdir / "crash-local.jsonl")
    out = workdir / "crash-out"
    manifest = annotate_ray(
        model_dir, source, out, settings=settings(cluster, max_restarts=2, max_task_retries=2), annotator_cls=CrashOnce
    )
    killed_pid = int(Path(CrashOnce.marker).read_text())
    assert killed_pid not in {s["pid"] for s in manifest["ray"]["actor_stats"]}
    assert manifest["counts"]["read"] == manifest["counts"]["written"] == 120
    lines = list(iter_output_lines(out))
    ids = [json.loads(line)["id"] for line in lines]
    assert len(ids) == len(set(ids)) == 120
    assert "\n".join(lines) + "\n" == expected
    # what the killed attempt left is gone
    assert sorted(p.name for p in out.iterdir() if not p.name.startswith("part-")) == ["failures.jsonl", MANIFEST]


def test_evaluate_on_ray_equals_local(cluster, workdir, model_dir, monkeypatch):
    nlp = load_pipeline(model_dir)
    data = workdir / "gold"
    data.mkdir()
    # two files: the batches run across the boundary, as in the local engine
    make_gold(nlp, 13, "a").to_disk(data / "a.spacy")
    make_gold(nlp, 30, "b").to_disk(data / "b.spacy")
    expected = predict_arrays(nlp, data, batch_size=BATCH)
    arrays = predict_arrays_ray(nlp, model_dir, data, settings=settings(cluster))
    assert arrays.n_docs == 6 * 43
    assert numpy.array_equal(arrays.y_prob, expected.y_prob)
    assert numpy.array_equal(arrays.y_true, expected.y_true) and numpy.array_equal(arrays.known, expected.known)
    assert arrays.langs == expected.langs and arrays.ids == expected.ids
    # the command with --engine ray: the same metrics as the local engine,
    # which it must not fall back on
    def no_local_engine(*args, **kwargs):
        raise AssertionError("evaluate --engine ray ran the local engine")

    monkeypatch.setattr(local_engine, "predict_arrays_local", no_local_engine)
    command = ["evaluate", str(model_dir), str(data), "-o", str(workdir / "m.json"), "-b", str(BATCH)]
    command += ["--engine", "ray", "--address", cluster.address, "--actors", "2", "--block-batches", "2"]
    result = CliRunner().invoke(app, command)
    assert result.exit_code == 0, result.output
    metrics = compute_metrics(expected, nlp.get_pipe("mlbert_textcat").thresholds)
    assert srsly.read_json(workdir / "m.json") == srsly.json_loads(srsly.json_dumps(metrics))


@pytest.mark.slow
def test_ten_thousand_docs_on_a_local_ray(ray_module, workdir, model_dir):
    """The command as a user runs it: a local Ray started on the fly."""
    source = write_lines(workdir / "big.jsonl", corpus(10_000, seed=2))
    _, expected = local_output(load_pipeline(model_dir), source, workdir / "big-local.jsonl")
    out = workdir / "big-out"
    command = [sys.executable, "-m", "spacy_mlbert", "annotate", str(model_dir), str(source), str(out)]
    command += ["--engine", "ray", "--actors", "2", "--batch-size", str(BATCH)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stdout + done.stderr
    manifest = srsly.read_json(out / MANIFEST)
    assert manifest["counts"]["written"] == 10_000 and manifest["ray"]["nodes"] == 1
    assert "\n".join(iter_output_lines(out)) + "\n" == expected


class CrashMidRun(RayAnnotator):
    """An actor that kills its own process after ``after`` batches, once in
    the whole run (the first actor to get there), with its batch unanswered."""

    marker = ""
    after = 5

    def __call__(self, batch):
        self.calls = getattr(self, "calls", 0) + 1
        if self.calls > self.after and not os.path.exists(self.marker):
            Path(self.marker).write_text(str(os.getpid()))
            os._exit(1)
        return super().__call__(batch)


@pytest.mark.slow
def test_ten_thousand_docs_on_the_two_node_cluster_with_a_killed_actor(cluster, ray_module, workdir, model_dir):
    """Issue 5's acceptance run: 10,000 documents over both nodes, one actor
    killed mid-run; the output equals the local engine's, line for line."""
    ray_module.cloudpickle.register_pickle_by_value(sys.modules[__name__])
    CrashMidRun.marker = str(workdir / "crashed-mid-run.marker")
    source = write_lines(workdir / "big2.jsonl", corpus(10_000, seed=3))
    _, expected = local_output(load_pipeline(model_dir), source, workdir / "big2-local.jsonl")
    out = workdir / "big2-out"
    manifest = annotate_ray(
        model_dir,
        source,
        out,
        settings=settings(cluster, max_restarts=2, max_task_retries=2),
        annotator_cls=CrashMidRun,
    )
    assert Path(CrashMidRun.marker).exists()
    assert manifest["ray"]["nodes"] == 2
    # both nodes annotated (each node has one CPU, so one actor each)
    assert len({a["node"] for a in manifest["ray"]["actor_stats"] if a["lines"]}) == 2
    assert manifest["counts"]["read"] == manifest["counts"]["written"] == 10_000
    lines = list(iter_output_lines(out))
    ids = [json.loads(line)["id"] for line in lines]
    assert len(ids) == len(set(ids)) == 10_000
    assert "\n".join(lines) + "\n" == expected
