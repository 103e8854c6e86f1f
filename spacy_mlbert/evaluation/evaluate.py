"""Evaluate an ``mlbert_textcat`` pipeline on gold documents, overall and per language.

Prediction and scoring are separate steps: :func:`predict_arrays` runs the
pipeline once and keeps the gold values, the probabilities and each document's
language, so that metrics (:func:`compute_metrics`), threshold tuning and
precision-recall curves can all reuse the same predictions.
"""
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, Iterable, Iterator, List, Mapping, Optional, Tuple, Union

import numpy
import spacy
from spacy.language import Language
from spacy.tokens import Doc, DocBin

from ..calibration import calibration_errors
from ..errors import Errors
from ..extensions import install_extensions
from ..metrics import LabelRows, multilabel_scores
from ..pipeline import MultiLabelBertCategorizer

logger = logging.getLogger("spacy_mlbert")

TEXTCAT_FACTORY = "mlbert_textcat"
# Language key for gold documents whose doc._.mlbert_lang is not set.
UNKNOWN_LANG = "unknown"
DEFAULT_BATCH_SIZE = 64

DocsOrPath = Union[str, Path, Iterable[Doc]]


@dataclass
class PredictionArrays:
    """Gold values and predicted probabilities of one data set; row i is gold doc i.

    labels (List[str]): Column names: the component's labels.
    y_true (numpy.ndarray): (n_docs, n_labels) gold 0/1 values (0 where unknown).
    y_prob (numpy.ndarray): (n_docs, n_labels) predicted probabilities.
    known (numpy.ndarray): (n_docs, n_labels) True where the gold value is annotated.
    langs (List[str]): Each document's language ("unknown" where not set).
    ids (List[Optional[str]]): Each document's record id, None where not set.
    """

    labels: List[str]
    y_true: numpy.ndarray
    y_prob: numpy.ndarray
    known: numpy.ndarray
    langs: List[str] = field(default_factory=list)
    ids: List[Optional[str]] = field(default_factory=list)

    @property
    def n_docs(self) -> int:
        return int(self.y_true.shape[0])

    def language_counts(self) -> Dict[str, int]:
        """RETURNS (Dict[str, int]): Number of documents per language, sorted by language."""
        counts: Dict[str, int] = {}
        for lang in self.langs:
            counts[lang] = counts.get(lang, 0) + 1
        return dict(sorted(counts.items()))

    def select(self, rows: numpy.ndarray) -> "PredictionArrays":
        """The rows where the boolean mask ``rows`` is True.

        rows (numpy.ndarray): (n_docs,) boolean mask.
        RETURNS (PredictionArrays): A new object with those rows only.
        """
        indices = numpy.flatnonzero(rows)
        return PredictionArrays(
            labels=list(self.labels),
            y_true=self.y_true[indices],
            y_prob=self.y_prob[indices],
            known=self.known[indices],
            langs=[self.langs[i] for i in indices],
            ids=[self.ids[i] for i in indices],
        )

    def by_language(self) -> Dict[str, "PredictionArrays"]:
        """RETURNS (Dict[str, PredictionArrays]): The rows of each language, sorted by language."""
        langs = numpy.asarray(self.langs, dtype=object)
        return {lang: self.select(langs == lang) for lang in self.language_counts()}


def load_pipeline(path: Union[str, Path]) -> Language:
    """Load a pipeline that has an ``mlbert_textcat`` component.

    path (Union[str, Path]): A pipeline folder (e.g. training/model-best) or
        the name of an installed pipeline package.
    RETURNS (Language): The loaded pipeline.
    """
    install_extensions()
    path = Path(path)
    if not path.exists():
        if spacy.util.is_package(str(path)):
            nlp = spacy.load(str(path))
            find_textcat(nlp, path)
            return nlp
        raise ValueError(Errors.E012.format(path=path, hint="The path does not exist."))
    if not path.is_dir() or not (path / "config.cfg").is_file():
        hint = (
            "Give the folder written by `spacy train` (e.g. training/model-best) "
            "or by nlp.to_disk()."
        )
        raise ValueError(Errors.E012.format(path=path, hint=hint))
    try:
        nlp = spacy.load(path)
    except OSError as err:
        # e.g. meta.json or the weights missing: spaCy's own code for that
        # (its E053) would read like one of this package's
        hint = f"spaCy could not read it: {err}"
        raise ValueError(Errors.E012.format(path=path, hint=hint)) from err
    find_textcat(nlp, path)
    return nlp


def find_textcat(
    nlp: Language, path: Optional[Union[str, Path]] = None
) -> Tuple[str, MultiLabelBertCategorizer]:
    """The first active pipe made by the ``mlbert_textcat`` factory.

    nlp (Language): The pipeline.
    path (Optional[Union[str, Path]]): Where the pipeline came from, for the error.
    RETURNS (Tuple[str, MultiLabelBertCategorizer]): The pipe's name and the pipe.
    """
    for name, pipe in nlp.pipeline:
        if nlp.get_pipe_meta(name).factory == TEXTCAT_FACTORY:
            return name, pipe
    where = path if path is not None else nlp.meta.get("name", "<in memory>")
    raise ValueError(Errors.E013.format(path=where, factory=TEXTCAT_FACTORY))


def docbin_files(path: Union[str, Path]) -> List[Path]:
    """The .spacy files to read: ``path`` itself, or those under a folder.

    path (Union[str, Path]): A .spacy file or a folder of them.
    RETURNS (List[Path]): The files, sorted.
    """
    path = Path(path)
    if not path.exists():
        raise ValueError(Errors.E050.format(path=path))
    if path.is_file():
        return [path]
    files = sorted(
        p
        for p in path.rglob("*.spacy")
        if p.is_file() and not any(part.startswith(".") for part in p.relative_to(path).parts)
    )
    if not files:
        raise ValueError(Errors.E051.format(path=path, detail="the folder holds no .spacy file"))
    return files


def read_gold_docs(nlp: Language, path: Union[str, Path]) -> Iterator[Doc]:
    """Stream the gold documents of a .spacy file (or folder), user data included.

    nlp (Language): Gives the vocab.
    path (Union[str, Path]): A .spacy file or a folder of them.
    YIELDS (Doc): The gold documents, in file order.
    """
    install_extensions()
    for file in docbin_files(path):
        yield from _read_docbin(file).get_docs(nlp.vocab)


def _read_docbin(file: Path) -> DocBin:
    try:
        return DocBin(store_user_data=True).from_disk(file)
    except (ValueError, KeyError, TypeError) as err:
        # DocBin reports format problems as any of these; say which file
        raise ValueError(Errors.E051.format(path=file, detail=err)) from err


def gold_label_files(path: Union[str, Path]) -> Tuple[int, Dict[str, List[str]]]:
    """The labels that the gold documents annotate, and where, without
    making the documents (a DocBin keeps each document's cats apart).

    path (Union[str, Path]): A .spacy file or a folder of them.
    RETURNS (Tuple[int, Dict[str, List[str]]]): The number of documents, and
        {label: the files that annotate it}, labels in order of appearance.
    """
    n_docs = 0
    where: Dict[str, List[str]] = {}
    for file in docbin_files(path):
        doc_bin = _read_docbin(file)
        n_docs += len(doc_bin)
        for cats in doc_bin.cats:
            for label in cats:
                files = where.setdefault(label, [])
                if not files or files[-1] != str(file):
                    files.append(str(file))
    return n_docs, where


def predict_arrays(
    nlp: Language,
    path_or_docs: DocsOrPath,
    *,
    batch_size: int = DEFAULT_BATCH_SIZE,
    allow_unknown_labels: bool = False,
) -> PredictionArrays:
    """Predict every gold document's text and collect the arrays for scoring.

    The pipeline runs on new documents made from the gold texts, so the gold
    ``doc.cats`` can neither leak into nor be overwritten by the predictions.
    Gold labels that the component lacks are an error (E074): the scores would
    leave them out without a word. Gold files are checked before anything is
    predicted; documents given directly, after.

    nlp (Language): A pipeline with an ``mlbert_textcat`` component.
    path_or_docs (Union[str, Path, Iterable[Doc]]): A .spacy file or folder,
        or the gold documents themselves.
    batch_size (int): Texts per batch for nlp.pipe.
    allow_unknown_labels (bool): Log gold labels the component lacks and
        leave them out, instead of raising E074.
    RETURNS (PredictionArrays): Gold values, probabilities, known-mask,
        languages and ids, in gold document order.
    """
    check_batch_size(batch_size)
    install_extensions()
    name, textcat = find_textcat(nlp)
    labels = list(textcat.labels)
    if isinstance(path_or_docs, (str, Path)):
        where = str(path_or_docs)
        # fail in seconds on the wrong data, not after predicting all of it
        n_gold, label_files = gold_label_files(path_or_docs)
        check_gold_labels(n_gold, label_files, name, labels, where, allow_unknown_labels)
        gold_docs: Iterable[Doc] = read_gold_docs(nlp, path_or_docs)
        checked = True
    else:
        where = "<docs>"
        gold_docs = path_or_docs
        checked = False
    collector = GoldCollector(labels)
    # the pipeline sees new documents made from the gold texts
    texts = (collector.add(gold) for gold in gold_docs)
    for predicted in nlp.pipe(texts, batch_size=batch_size):
        collector.add_predicted(predicted.cats)
    return collector.prediction_arrays(where, name, checked=checked, allow_unknown=allow_unknown_labels)


def check_gold_labels(
    n_docs: int,
    label_files: Mapping[str, List[str]],
    name: str,
    labels: List[str],
    where: str,
    allow_unknown: bool,
) -> None:
    """Check gold data against the component's labels before scoring it.

    n_docs (int): Number of gold documents.
    label_files (Mapping[str, List[str]]): {gold label: files that annotate it}
        (e.g. from gold_label_files), in order of appearance.
    name (str): The component's name, for the messages.
    labels (List[str]): The component's labels.
    where (str): The data, for the messages.
    allow_unknown (bool): Log gold labels the component lacks instead of
        raising E074.
    RAISES (ValueError): E052 (no documents), E053 (no label of the component
        annotated) or E074 (gold labels the component lacks).
    """
    if n_docs == 0:
        raise ValueError(Errors.E052.format(path=where, action="evaluate"))
    if not any(label in label_files for label in labels):
        raise ValueError(
            Errors.E053.format(
                n_docs=n_docs, path=where, name=name, labels=labels, found=list(label_files)
            )
        )
    extra = [label for label in label_files if label not in labels]
    if not extra:
        return
    if allow_unknown:
        logger.warning(
            "Gold labels %s in '%s' are not labels of component '%s'; they are ignored.",
            extra,
            where,
            name,
        )
        return
    files = sorted({file for label in extra for file in label_files[label]})
    shown = ", ".join(f"'{file}'" for file in files[:5])
    shown += f" and {len(files) - 5} more file(s)" if len(files) > 5 else ""
    raise ValueError(Errors.E074.format(name=name, labels=extra, where=shown, known=labels))


class GoldCollector(LabelRows):
    """The rows of a gold data set, added one document at a time, with each
    document's language and id; the probabilities come from add_predicted
    or, when the predictions are made elsewhere (spaCy's worker processes,
    Ray actors), as one array.

    labels (List[str]): The component's labels: the columns.
    """

    def __init__(self, labels: List[str]) -> None:
        super().__init__(labels)
        self.langs: List[str] = []
        self.ids: List[Optional[str]] = []
        self.gold_labels: Dict[str, None] = {}  # an ordered set

    def add(self, gold: Doc) -> str:
        """Keep the gold values of a document.

        gold (Doc): A gold document (doc.cats, doc._.mlbert_lang, doc._.mlbert_id).
        RETURNS (str): The text to predict.
        """
        self.gold_labels.update(dict.fromkeys(gold.cats))
        self.add_gold(gold.cats)
        lang = gold._.mlbert_lang
        self.langs.append(str(lang) if lang else UNKNOWN_LANG)
        self.ids.append(gold._.mlbert_id)
        return gold.text

    def prediction_arrays(
        self,
        where: str,
        name: str,
        *,
        y_prob: Optional[numpy.ndarray] = None,
        checked: bool = False,
        allow_unknown: bool = False,
    ) -> PredictionArrays:
        """The arrays for scoring, after the checks of the gold labels.

        where (str): The data, for the messages.
        name (str): The component's name, for the messages.
        y_prob (Optional[numpy.ndarray]): (n_docs, n_labels) probabilities
            made elsewhere, row i for gold doc i; default: add_predicted's.
        checked (bool): The gold files were checked already (check_files).
        allow_unknown (bool): Log gold labels the component lacks instead of
            raising E074.
        RETURNS (PredictionArrays): Gold values, probabilities, known-mask,
            languages and ids.
        """
        if not checked:
            label_where = {label: [where] for label in self.gold_labels}
            check_gold_labels(len(self), label_where, name, self.labels, where, allow_unknown)
        if len(self) == 0:
            raise ValueError(Errors.E052.format(path=where, action="evaluate"))
        y_true, probs, known = self.arrays(y_prob)
        return PredictionArrays(self.labels, y_true, probs, known, list(self.langs), list(self.ids))


def check_files(path: Union[str, Path], name: str, labels: List[str]) -> None:
    """Check gold files against the component's labels before predicting
    anything: fail in seconds on the wrong data."""
    n_gold, label_files = gold_label_files(path)
    check_gold_labels(n_gold, label_files, name, list(labels), str(path), False)


def compute_metrics(arrays: PredictionArrays, thresholds: Mapping[str, float]) -> Dict[str, Any]:
    """Overall and per-language scores of predictions at the given thresholds.

    arrays (PredictionArrays): From predict_arrays.
    thresholds (Mapping[str, float]): Decision threshold per label.
    RETURNS (Dict[str, Any]): JSON-serialisable: overall and per_language
        (each from metrics.multilabel_scores), labels, thresholds, n_docs,
        languages ({lang: number of documents}) and ece (see ece_metrics).
    """
    thresholds = {label: float(thresholds.get(label, 0.5)) for label in arrays.labels}
    overall = multilabel_scores(arrays.y_true, arrays.y_prob, arrays.known, arrays.labels, thresholds)
    per_language = {
        lang: multilabel_scores(part.y_true, part.y_prob, part.known, part.labels, thresholds)
        for lang, part in arrays.by_language().items()
    }
    return {
        "overall": overall,
        "per_language": per_language,
        "labels": list(arrays.labels),
        "thresholds": thresholds,
        "n_docs": arrays.n_docs,
        "languages": arrays.language_counts(),
        "ece": ece_metrics(arrays),
    }


def ece_metrics(arrays: PredictionArrays) -> Dict[str, Any]:
    """Expected calibration error of the probabilities: 15 equal-width bins
    of [0, 1] over each label's annotated cells, per label and macro (the
    mean over labels), overall and per language.

    arrays (PredictionArrays): From predict_arrays.
    RETURNS (Dict[str, Any]): calibration.calibration_errors of all documents
        (macro, per_label, n_bins, bins), plus per_language ({lang: macro ECE}).
    """
    overall = calibration_errors(arrays.y_true, arrays.y_prob, arrays.known, arrays.labels)
    overall["per_language"] = {
        lang: calibration_errors(part.y_true, part.y_prob, part.known, part.labels)["macro"]
        for lang, part in arrays.by_language().items()
    }
    return overall


def evaluate_docbin(
    nlp: Language,
    path_or_docs: DocsOrPath,
    *,
    batch_size: int = DEFAULT_BATCH_SIZE,
    allow_unknown_labels: bool = False,
) -> Dict[str, Any]:
    """Score a pipeline on gold documents with the component's own thresholds.

    nlp (Language): A pipeline with an ``mlbert_textcat`` component.
    path_or_docs (Union[str, Path, Iterable[Doc]]): A .spacy file or folder,
        or the gold documents.
    batch_size (int): Texts per batch for nlp.pipe.
    allow_unknown_labels (bool): See predict_arrays.
    RETURNS (Dict[str, Any]): See compute_metrics.
    """
    arrays = predict_arrays(
        nlp, path_or_docs, batch_size=batch_size, allow_unknown_labels=allow_unknown_labels
    )
    _, textcat = find_textcat(nlp)
    return compute_metrics(arrays, textcat.thresholds)


def check_batch_size(batch_size: Any) -> None:
    """Raise a coded error unless ``batch_size`` is a positive integer."""
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(Errors.E058.format(value=batch_size))

