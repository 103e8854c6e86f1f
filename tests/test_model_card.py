import srsly
from spacy.util import make_tempdir
from typer.testing import CliRunner

from spacy_mlbert.cli import app
from test_robustness import write_gold
from util import TRAIN_DATA


def test_model_card_carries_evaluation_and_quotes_the_benchmark(trained_nlp):
    runner = CliRunner()
    with make_tempdir() as d:
        trained_nlp.to_disk(d / "model")
        gold = write_gold(trained_nlp, TRAIN_DATA, d / "gold.spacy")
        done = runner.invoke(app, ["evaluate", str(d / "model"), str(gold), "--output", str(d / "metrics.json")])
        assert done.exit_code == 0, done.output
        (d / "bench.md").write_text("# Quality\n\n| macro-F1 | mlbert |\n|---|---:|\n| eng | 0.5 |\n", encoding="utf8")
        args = ["model-card", str(d / "model"), str(d / "metrics.json"), "-o", str(d / "meta.json"), "--name", "demo"]
        done = runner.invoke(app, args + ["--benchmark", str(d / "bench.md")])
        assert done.exit_code == 0, done.output
        meta = srsly.read_json(d / "meta.json")
        metrics = srsly.read_json(d / "metrics.json")
        missing = runner.invoke(app, args + ["--benchmark", str(d / "nope.md")])
    assert meta["name"] == "demo"
    assert meta["performance"]["cats_macro_f"] == metrics["overall"]["macro_f"]
    notes = meta["notes"]
    assert notes.index("## Evaluation") < notes.index("## Benchmark of this configuration")
    # the quoted file's headings nest under the card's section
    assert "### Quality" in notes and "| eng | 0.5 |" in notes
    assert missing.exit_code == 1 and "nope.md" in missing.output
