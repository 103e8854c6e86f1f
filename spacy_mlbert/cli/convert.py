"""``spacy-mlbert convert INPUT... OUTPUT_DIR``: data files to spaCy DocBins."""
from pathlib import Path
from typing import List, Optional

import typer
from wasabi import Printer, msg

from ._app import app, require_extra

# How many skipped records to list on the terminal; the report file has all.
MAX_ISSUES_SHOWN = 20


@app.command("convert")
def convert_cli(
    inputs: List[Path] = typer.Argument(
        ..., help="Input files or directories: .jsonl, SemEval .csv (one per language), GoEmotions .tsv"
    ),
    output_dir: Path = typer.Argument(..., help="Folder for the .spacy files and labels.json"),
    fmt: str = typer.Option("auto", "--format", "-f", help="auto (by suffix), jsonl, semeval or goemotions"),
    aliases: Optional[Path] = typer.Option(None, "--aliases", "-a", help="Label alias file (JSON/YAML)"),
    labels: Optional[str] = typer.Option(
        None, "--labels", "-l", help="The label set: a file (JSON list or one per line) or a,b,c"
    ),
    add_labels: bool = typer.Option(False, "--add-labels", help="Add labels outside --labels instead of failing"),
    skip_invalid: bool = typer.Option(
        False, "--skip-invalid", help="Skip invalid records and report them instead of failing"
    ),
    split: Optional[str] = typer.Option(
        None, "--split", help="Ratios train,dev[,test], e.g. 0.8,0.1,0.1: write train/dev/test.spacy"
    ),
    seed: int = typer.Option(0, "--seed", help="Random seed of the split"),
    lang: Optional[str] = typer.Option(None, "--lang", help="Language of texts whose data names none"),
    goemotions_labels: Optional[Path] = typer.Option(
        None, "--goemotions-labels", help="GoEmotions labels.txt (line n = label id n-1)"
    ),
    stats_dir: Optional[Path] = typer.Option(
        None, "--stats-dir", help="Folder for the label statistics and report (default: OUTPUT_DIR)"
    ),
    name: Optional[str] = typer.Option(
        None, "--name", "-n", help="Output name without --split: OUTPUT_DIR/NAME.spacy (default: train)"
    ),
    shard_size: int = typer.Option(
        10_000,  # data.shards.DEFAULT_SHARD_SIZE (not imported here: it loads spaCy)
        "--shard-size",
        help="Most docs in one .spacy file; a larger output is a folder of such files",
    ),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Print errors only, no progress bars"),
) -> None:
    """Convert multilingual multi-label data to spaCy DocBins (.spacy).

    Each doc gets doc.cats (known labels as 1.0/0.0, unknown labels left out),
    doc._.mlbert_lang and doc._.mlbert_id. Without --split all inputs go to
    OUTPUT_DIR/NAME.spacy; with --split, duplicate texts are removed and the
    rest is split, stratified over labels and languages, into train.spacy,
    dev.spacy (and test.spacy). labels.json holds the label set, and per output
    NAME.stats.json/.md the label counts per language. An output of more than
    --shard-size docs is a folder NAME.spacy of .spacy files (spacy train and
    every command here read both). The inputs are read twice, so memory stays
    small for any corpus size; all outputs appear together once complete, or,
    after an error, none.
    """
    require_extra("project", "tqdm", purpose="convert data")
    from ..data import DataError

    try:
        _convert(
            inputs,
            output_dir,
            fmt=fmt,
            aliases=aliases,
            labels=labels,
            add_labels=add_labels,
            skip_invalid=skip_invalid,
            split=split,
            seed=seed,
            lang=lang,
            goemotions_labels=goemotions_labels,
            stats_dir=stats_dir,
            name=name,
            shard_size=shard_size,
            quiet=quiet,
        )
    except DataError as err:
        # the coded message names file, line and what to do; no traceback
        msg.fail(str(err))
        raise typer.Exit(code=1) from None
    except OSError as err:
        msg.fail(f"Can't read or write a file: {err}")
        raise typer.Exit(code=1) from None


def _convert(
    inputs: List[Path],
    output_dir: Path,
    *,
    fmt: str,
    aliases: Optional[Path],
    labels: Optional[str],
    add_labels: bool,
    skip_invalid: bool,
    split: Optional[str],
    seed: int,
    lang: Optional[str],
    goemotions_labels: Optional[Path],
    stats_dir: Optional[Path],
    name: Optional[str],
    shard_size: int,
    quiet: bool,
) -> None:
    from ..data import DataError, print_label_stats
    from ..data.shards import check_shard_size
    from ..data.split import parse_ratios
    from ..data.stream import ReadOptions, index_corpus, plan_outputs, write_outputs
    from ..errors import Errors

    out = Printer(no_print=quiet)
    ratios = parse_ratios(split) if split is not None else None  # fail before reading
    check_shard_size(shard_size)
    if ratios is not None and name is not None:
        out.warn("--name is ignored with --split: the outputs are train/dev/test.spacy")
    options = ReadOptions(
        fmt=fmt,
        aliases=aliases,
        label_set=labels,
        add_labels=add_labels,
        skip_invalid=skip_invalid,
        lang=lang,
        goemotions_labels=goemotions_labels,
        progress=not quiet,
    )
    index = index_corpus(inputs, options)
    report = index.report
    _print_issues(out, report)
    if not len(index):
        shown = ", ".join(str(path) for path in inputs)
        detail = f"{report.skipped} record(s) skipped, {report.blank} blank line(s)"
        raise DataError(Errors.E048.format(inputs=shown, detail=detail))
    plan = plan_outputs(index, ratios, seed=seed, name=name or "train")
    if ratios is None and plan.duplicates:
        out.info(f"{plan.duplicates} text(s) occur more than once; kept (only --split removes duplicates)")
    written = write_outputs(inputs, options, index, plan, output_dir, stats_dir=stats_dir, shard_size=shard_size)
    if written.duplicates:
        differing = sum(not dup.same_labels for dup in written.duplicates)
        out.info(
            f"Removed {len(written.duplicates)} duplicate text(s), keeping the first of each "
            f"({differing} had other labels than the kept one); see convert-report.json"
        )
    out.good(f"Read {report.summary()}")
    if report.default_lang:
        out.warn(f"{report.default_lang} record(s) name no language and got 'xx'; pass --lang to set one")
    if report.added_labels:
        out.warn(f"Added label(s) outside --labels: {', '.join(report.added_labels)}")
    if not report.counts_add_up:  # a bug, not a data problem: say so loudly
        out.warn(f"The counts do not add up: {report.to_dict()}")
    for split_name, path in written.paths.items():
        shape = "a folder of .spacy files" if path.is_dir() else "one file"
        out.good(f"Wrote {plan.sizes[split_name]} doc(s) to {path} ({shape})")
        if not quiet:
            stats = written.stats[split_name]
            print_label_stats(stats, title=f"{split_name}: positives/known per language", printer=out)
    out.good(f"Wrote the label set ({len(index.labels)} labels) to {written.labels_path}")
    out.text(f"Label statistics and the report are in {stats_dir if stats_dir is not None else output_dir}")


def _print_issues(out: Printer, report) -> None:
    if not report.issues:
        return
    out.warn(f"Skipped {report.skipped} invalid record(s):")
    for issue in report.issues[:MAX_ISSUES_SHOWN]:
        out.text(f"  {issue.message}")
    if len(report.issues) > MAX_ISSUES_SHOWN:
        out.text(f"  ... and {len(report.issues) - MAX_ISSUES_SHOWN} more (all are in convert-report.json)")
