"""A Markdown report and PNG plots of evaluation metrics.

The plots use matplotlib's object API on an Agg canvas, never pyplot, so
writing a report neither needs a display nor changes the global backend of a
program that imports this module.
"""
import contextlib
import logging
import math
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence, Union

import numpy

from ..atomic import atomic_path
from ..errors import Errors, require_extra
from .markdown import UNDEFINED, format_number, markdown_table, overall_table, per_label_table, undefined_note
from .evaluate import PredictionArrays

logger = logging.getLogger("spacy_mlbert")

REPORT_FILE = "report.md"
F1_PLOT_FILE = "f1_per_language.png"
PR_PLOT_FILE = "pr_curves.png"
RELIABILITY_PLOT_FILE = "reliability.png"
REQUIRED_KEYS = ("overall", "per_language", "labels", "thresholds", "n_docs", "languages")
# Write the value into each heatmap cell only while the cells stay readable.
MAX_ANNOTATED_CELLS = 400


def write_report(
    metrics: Mapping[str, Any],
    arrays: Optional[PredictionArrays],
    output_dir: Union[str, Path],
) -> Dict[str, Path]:
    """Write report.md, f1_per_language.png and (with arrays) pr_curves.png
    and reliability.png.

    metrics (Mapping[str, Any]): From evaluation.evaluate_docbin / compute_metrics.
    arrays (Optional[PredictionArrays]): The predictions behind the metrics;
        needed for the precision-recall curves, which are skipped without them.
    output_dir (Union[str, Path]): Folder to write to; created if missing.
    RETURNS (Dict[str, Path]): The files written: "markdown", "f1_plot",
        "pr_plot" and "reliability_plot" (the last two only with arrays).
    """
    for key in REQUIRED_KEYS:
        if key not in metrics:
            raise ValueError(Errors.E065.format(key=key))
    output_dir = Path(output_dir)
    if output_dir.exists() and not output_dir.is_dir():
        raise ValueError(Errors.E062.format(path=output_dir))
    written = {"markdown": output_dir / REPORT_FILE, "f1_plot": output_dir / F1_PLOT_FILE}
    if arrays is not None:
        written["pr_plot"] = output_dir / PR_PLOT_FILE
        written["reliability_plot"] = output_dir / RELIABILITY_PLOT_FILE
    # every file is made under a temporary name and renamed only once all
    # are made: a failure (a plot, a full disk) leaves none of them behind.
    # A new folder is made whole; in an existing one (which may hold other
    # files) each file replaces its old version.
    with contextlib.ExitStack() as stack:
        if output_dir.exists():
            tmp = {key: stack.enter_context(atomic_path(path)) for key, path in written.items()}
        else:
            folder = stack.enter_context(atomic_path(output_dir))
            folder.mkdir()
            tmp = {key: folder / path.name for key, path in written.items()}
        plot_f1_per_language(metrics, tmp["f1_plot"])
        if arrays is not None:
            plot_pr_curves(arrays, metrics, tmp["pr_plot"])
            plot_reliability(arrays, tmp["reliability_plot"])
        tmp["markdown"].write_text(
            markdown_report(metrics, plots=[p.name for k, p in written.items() if k != "markdown"]),
            encoding="utf8",
        )
    logger.info("Wrote the evaluation report to '%s'.", output_dir)
    return written


# --- Markdown ---------------------------------------------------------------


def markdown_report(metrics: Mapping[str, Any], plots: Sequence[str] = ()) -> str:
    """The report as Markdown text.

    metrics (Mapping[str, Any]): From evaluation.compute_metrics.
    plots (Sequence[str]): Image files (relative to the report) to embed.
    RETURNS (str): The Markdown.
    """
    labels: List[str] = list(metrics["labels"])
    overall = metrics["overall"]
    per_language = metrics["per_language"]
    lines = [
        "# Evaluation report",
        "",
        f"{metrics['n_docs']} documents, {len(metrics['languages'])} language(s), "
        f"{len(labels)} label(s). A label missing from a document's gold "
        "annotation is unknown there and not scored; '–' marks a label with "
        "no annotation at all.",
        "",
    ]
    note = undefined_note(metrics)
    if note:
        lines += [note, ""]
    lines += [
        "## Overall",
        "",
    ]
    lines += markdown_table(*overall_table(overall))
    lines += ["", "## Per label", ""]
    lines += markdown_table(*per_label_table(metrics))
    lines += ["", "## F1 per language and label", ""]
    lines += markdown_table(
        ["Language", "Docs", "Macro F1", "Micro F1"] + labels,
        [
            [lang, str(scores["n_docs"]), format_number(scores["macro_f"]), format_number(scores["micro_f"])]
            + [format_number((scores["per_label"].get(label) or {}).get("f")) for label in labels]
            for lang, scores in per_language.items()
        ],
    )
    lines += [
        "",
        "## Counts",
        "",
        "Positives / annotated documents per language and label.",
        "",
    ]
    count_rows = []
    for lang, scores in list(per_language.items()) + [("all", overall)]:
        row = [lang, str(scores["n_docs"])]
        for label in labels:
            values = scores["per_label"].get(label)
            row.append(f"{values['support']} / {values['n_known']}" if values else UNDEFINED)
        count_rows.append(row)
    lines += markdown_table(["Language", "Docs"] + labels, count_rows)
    if metrics.get("ece"):
        lines += ["", *markdown_calibration(metrics["ece"], labels)]
    if plots:
        lines += ["", "## Plots", ""]
        lines += [f"![{Path(name).stem}]({name})" for name in plots]
    return "\n".join(lines) + "\n"


def markdown_calibration(ece: Mapping[str, Any], labels: Sequence[str]) -> List[str]:
    """The "Calibration" section: expected calibration error per label, macro
    and per language.

    ece (Mapping[str, Any]): metrics["ece"], from evaluation.ece_metrics.
    labels (Sequence[str]): The labels, in table order.
    RETURNS (List[str]): Markdown lines.
    """
    n_bins = ece.get("n_bins", 15)
    lines = [
        "## Calibration",
        "",
        f"Expected calibration error (ECE): {n_bins} equal-width probability bins "
        "over each label's annotated cells; per bin, the gap between the share of "
        "positives and the mean probability, weighted by the bin's share of the "
        "cells. Macro ECE is the mean over labels. 0 is perfect; '–' marks a label "
        "with no annotation.",
        "",
    ]
    rows = [["Macro", format_number(ece.get("macro"))]]
    rows += [[label, format_number(ece["per_label"].get(label))] for label in labels]
    lines += markdown_table(["Label", "ECE"], rows)
    per_language = ece.get("per_language") or {}
    if per_language:
        lines += ["", "Macro ECE per language:", ""]
        lines += markdown_table(
            ["Language", "Macro ECE"], [[lang, format_number(value)] for lang, value in per_language.items()]
        )
    return lines


# --- plots ------------------------------------------------------------------


def _figure(width: float, height: float) -> Any:
    require_extra("project", "matplotlib", purpose="plot the report")
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, height), dpi=100)
    FigureCanvasAgg(figure)
    return figure


def plot_f1_per_language(metrics: Mapping[str, Any], path: Union[str, Path]) -> Path:
    """A heatmap of F1 per language (rows, "all" first) and label (columns).

    Grey cells: the label is not annotated for that language.

    metrics (Mapping[str, Any]): From evaluation.compute_metrics.
    path (Union[str, Path]): The PNG file to write.
    RETURNS (Path): The path written.
    """
    labels = list(metrics["labels"])
    rows = [("all", metrics["overall"])] + list(metrics["per_language"].items())
    values = numpy.full((len(rows), len(labels)), numpy.nan)
    for i, (_, scores) in enumerate(rows):
        for j, label in enumerate(labels):
            cell = scores["per_label"].get(label)
            if cell is not None:
                values[i, j] = cell["f"]
    figure = _figure(max(4.0, 1.0 + 0.6 * len(labels)), max(2.5, 1.2 + 0.4 * len(rows)))
    axes = figure.add_subplot(1, 1, 1)
    from matplotlib import colormaps

    cmap = colormaps["viridis"].with_extremes(bad="lightgrey")
    image = axes.imshow(numpy.ma.masked_invalid(values), cmap=cmap, vmin=0.0, vmax=1.0, aspect="auto")
    axes.set_xticks(range(len(labels)), labels=labels, rotation=45, ha="right")
    axes.set_yticks(range(len(rows)), labels=[name for name, _ in rows])
    axes.set_title("F1 per language and label")
    if len(rows) > 1:
        axes.axhline(0.5, color="white", linewidth=3)  # sets "all" apart
    if values.size <= MAX_ANNOTATED_CELLS:
        for (i, j), value in numpy.ndenumerate(values):
            if not numpy.isnan(value):
                colour = "black" if value > 0.6 else "white"
                axes.text(j, i, f"{value:.2f}", ha="center", va="center", fontsize=7, color=colour)
    figure.colorbar(image, ax=axes, label="F1")
    figure.tight_layout()
    figure.savefig(path, format="png")
    return Path(path)


def plot_pr_curves(
    arrays: PredictionArrays, metrics: Mapping[str, Any], path: Union[str, Path]
) -> Path:
    """Precision-recall curves, one panel per label, over its annotated
    documents, with a dot at the label's decision threshold.

    arrays (PredictionArrays): The predictions.
    metrics (Mapping[str, Any]): The metrics of these predictions, for the
        thresholds and the precision and recall at them.
    path (Union[str, Path]): The PNG file to write.
    RETURNS (Path): The path written.
    """
    require_extra("project", "sklearn", purpose="plot precision-recall curves")
    from sklearn.metrics import average_precision_score, precision_recall_curve

    labels = list(arrays.labels)
    n_cols = min(4, max(1, len(labels)))
    n_rows = max(1, math.ceil(len(labels) / n_cols))
    figure = _figure(3.2 * n_cols, 3.0 * n_rows)
    for j, label in enumerate(labels):
        axes = figure.add_subplot(n_rows, n_cols, j + 1)
        axes.set_title(label, fontsize=9)
        axes.set_xlim(0.0, 1.0)
        axes.set_ylim(0.0, 1.02)
        axes.set_xlabel("recall", fontsize=8)
        axes.set_ylabel("precision", fontsize=8)
        mask = arrays.known[:, j]
        gold = arrays.y_true[mask, j] >= 0.5
        probs = arrays.y_prob[mask, j]
        if not gold.any():
            # the curve is undefined without a positive
            axes.text(0.5, 0.5, "no positives", ha="center", va="center", transform=axes.transAxes)
            continue
        precision, recall, _ = precision_recall_curve(gold, probs)
        ap = average_precision_score(gold, probs)
        axes.step(recall, precision, where="post", label=f"AP {ap:.2f}")
        threshold = float(metrics["thresholds"].get(label, 0.5))
        point = metrics["overall"]["per_label"].get(label)
        if point is not None:
            axes.plot([point["r"]], [point["p"]], "o", color="red", label=f"t={threshold:.2f}")
        axes.axhline(gold.mean(), color="grey", linestyle=":", linewidth=0.8)
        axes.legend(loc="lower left", fontsize=7)
    figure.suptitle("Precision-recall per label")
    figure.tight_layout()
    figure.savefig(path, format="png")
    return Path(path)


def plot_reliability(arrays: PredictionArrays, path: Union[str, Path]) -> Path:
    """A reliability diagram of all labels' annotated cells together: share of
    positives against mean probability in 15 equal-width bins (the diagonal is
    perfect calibration), with the number of cells per bin below.

    arrays (PredictionArrays): The predictions.
    path (Union[str, Path]): The PNG file to write.
    RETURNS (Path): The path written.
    """
    from ..calibration import DEFAULT_BINS, calibration_errors, reliability_bins

    mask = arrays.known
    counts, mean_prob, frequency = reliability_bins(arrays.y_true[mask], arrays.y_prob[mask], DEFAULT_BINS)
    macro = calibration_errors(arrays.y_true, arrays.y_prob, arrays.known, arrays.labels)["macro"]
    edges = numpy.linspace(0.0, 1.0, DEFAULT_BINS + 1)
    centres = (edges[:-1] + edges[1:]) / 2
    width = 1.0 / DEFAULT_BINS
    filled = counts > 0
    figure = _figure(5.0, 6.0)
    top = figure.add_subplot(2, 1, 1)
    top.plot([0.0, 1.0], [0.0, 1.0], linestyle="--", color="grey", linewidth=1, label="perfect")
    top.bar(centres[filled], frequency[filled], width=width * 0.9, color="tab:blue", alpha=0.8, label="share of positives")
    top.plot(mean_prob[filled], frequency[filled], "o", color="tab:red", markersize=4, label="bin mean probability")
    top.set_xlim(0.0, 1.0)
    top.set_ylim(0.0, 1.02)
    top.set_ylabel("share of positives")
    title = "Reliability (all labels' annotated cells)"
    if macro is not None:
        title += f"\nmacro ECE {macro:.3f}"
    top.set_title(title, fontsize=10)
    top.legend(loc="upper left", fontsize=7)
    bottom = figure.add_subplot(2, 1, 2)
    bottom.bar(centres, counts, width=width * 0.9, color="grey")
    bottom.set_xlim(0.0, 1.0)
    bottom.set_xlabel("predicted probability")
    bottom.set_ylabel("cells")
    figure.tight_layout()
    figure.savefig(path, format="png")
    return Path(path)
