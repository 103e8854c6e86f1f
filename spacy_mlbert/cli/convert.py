"""``spacy-mlbert convert INPUT... OUTPUT_DIR``: data files to spaCy DocBins."""
from pathlib import Path
from typing import Dict, List, Optional

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
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Print errors only, no progress bars"),
) -> None:
    """Convert multilingual multi-label data to spaCy DocBins (.spacy).

    Each doc gets doc.cats (known labels as 1.0/0.0, unknown labels left out),
    doc._.mlbert_lang and doc._.mlbert_id. Without --split all inputs go to
    OUTPUT_DIR/NAME.spacy; with --split, duplicate texts are removed and the
    rest is split, stratified over labels and languages, into train.spacy,
    dev.spacy (and test.spacy). labels.json holds the label set, and per output
    NAME.stats.json/.md the label counts per language.
    """
    modules = ("tqdm", "iterstrat") if split is not None else ("tqdm",)
    require_extra("project", *modules, purpose="convert data" + (" and split it" if split else ""))
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
    quiet: bool,
) -> None:
    import srsly

    from ..data import (
        DataError,
        Record,
        label_stats,
        parse_ratios,
        print_label_stats,
        read_records,
        records_to_docbin,
        remove_duplicate_texts,
        save_label_stats,
        split_records,
    )
    from ..errors import Errors

    out = Printer(no_print=quiet)
    ratios = parse_ratios(split) if split is not None else None  # fail before reading
    if ratios is not None and name is not None:
        out.warn("--name is ignored with --split: the outputs are train/dev/test.spacy")
    records, report = read_records(
        inputs,
        fmt=fmt,
        aliases=aliases,
        label_set=labels,
        add_labels=add_labels,
        skip_invalid=skip_invalid,
        lang=lang,
        goemotions_labels=goemotions_labels,
        progress=not quiet,
    )
    _print_issues(out, report)
    if not records:
        shown = ", ".join(str(path) for path in inputs)
        detail = f"{report.skipped} record(s) skipped, {report.blank} blank line(s)"
        raise DataError(Errors.E048.format(inputs=shown, detail=detail))
    label_list = report.labels
    outputs: Dict[str, List[Record]]
    if ratios is not None:
        outputs, duplicates = split_records(records, ratios, seed=seed, labels=label_list)
        report.note_duplicates_removed(duplicates)
        if duplicates:
            differing = sum(not dup.same_labels for dup in duplicates)
            out.info(
                f"Removed {len(duplicates)} duplicate text(s), keeping the first of each "
                f"({differing} had other labels than the kept one); see convert-report.json"
            )
    else:
        outputs = {name or "train": records}
        _, duplicates = remove_duplicate_texts(records)
        if duplicates:
            out.info(f"{len(duplicates)} text(s) occur more than once; kept (only --split removes duplicates)")
    out.good(f"Read {report.summary()}")
    if report.default_lang:
        out.warn(f"{report.default_lang} record(s) name no language and got 'xx'; pass --lang to set one")
    if report.added_labels:
        out.warn(f"Added label(s) outside --labels: {', '.join(report.added_labels)}")
    if not report.counts_add_up:  # a bug, not a data problem: say so loudly
        out.warn(f"The counts do not add up: {report.to_dict()}")

    output_dir.mkdir(parents=True, exist_ok=True)
    stats_dir = stats_dir if stats_dir is not None else output_dir
    for split_name, part in outputs.items():
        path = output_dir / f"{split_name}.spacy"
        records_to_docbin(part, labels=label_list).to_disk(path)
        out.good(f"Wrote {len(part)} doc(s) to {path}")
        stats = label_stats(part, label_list)
        if not quiet:
            print_label_stats(stats, title=f"{split_name}: positives/known per language", printer=out)
        save_label_stats(stats, stats_dir, split_name)
    labels_path = output_dir / "labels.json"
    srsly.write_json(labels_path, label_list)
    srsly.write_json(stats_dir / "convert-report.json", report.to_dict())
    out.good(f"Wrote the label set ({len(label_list)} labels) to {labels_path}")
    out.text(f"Label statistics and the report are in {stats_dir}")


def _print_issues(out: Printer, report) -> None:
    if not report.issues:
        return
    out.warn(f"Skipped {report.skipped} invalid record(s):")
    for issue in report.issues[:MAX_ISSUES_SHOWN]:
        out.text(f"  {issue.message}")
    if len(report.issues) > MAX_ISSUES_SHOWN:
        out.text(f"  ... and {len(report.issues) - MAX_ISSUES_SHOWN} more (all are in convert-report.json)")
