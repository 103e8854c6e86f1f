"""Gold values for evaluation when the predictions are made elsewhere.

:func:`spacy_mlbert.evaluation.predict_arrays` predicts and collects in one
loop. An engine that predicts in other processes (spaCy's multiprocessing,
Ray actors) collects the gold side here, in gold document order, and adds the
probabilities it gets back; the arrays are built the same way as in
:func:`spacy_mlbert.metrics.examples_to_arrays`, so the scores are the same.
"""
import logging
from pathlib import Path
from typing import Dict, List, Optional, Union

import numpy
from spacy.tokens import Doc

from ..errors import Errors
from .evaluate import UNKNOWN_LANG, PredictionArrays, check_gold_labels, gold_label_files

logger = logging.getLogger("spacy_mlbert")


class GoldCollector:
    """Gold rows of one data set, added one document at a time.

    labels (List[str]): The component's labels: the columns.
    """

    def __init__(self, labels: List[str]) -> None:
        self.labels = list(labels)
        self.rows_true: List[List[float]] = []
        self.rows_known: List[List[bool]] = []
        self.langs: List[str] = []
        self.ids: List[Optional[str]] = []
        self.gold_labels: Dict[str, None] = {}  # an ordered set

    def __len__(self) -> int:
        return len(self.rows_true)

    def add(self, gold: Doc) -> str:
        """Keep the gold values of a document.

        gold (Doc): A gold document (doc.cats, doc._.mlbert_lang, doc._.mlbert_id).
        RETURNS (str): The text to predict.
        """
        cats = gold.cats
        self.gold_labels.update(dict.fromkeys(cats))
        self.rows_true.append([float(cats.get(label, 0.0)) for label in self.labels])
        self.rows_known.append([label in cats for label in self.labels])
        lang = gold._.mlbert_lang
        self.langs.append(str(lang) if lang else UNKNOWN_LANG)
        self.ids.append(gold._.mlbert_id)
        return gold.text

    def arrays(
        self, y_prob: numpy.ndarray, where: str, name: str, *, checked: bool = False
    ) -> PredictionArrays:
        """The arrays for scoring, with the checks of predict_arrays.

        y_prob (numpy.ndarray): (n_docs, n_labels) probabilities, row i for gold doc i.
        where (str): The data, for the messages.
        name (str): The component's name, for the messages.
        checked (bool): The gold files were checked already (check_files).
        RETURNS (PredictionArrays): Gold values, probabilities, known-mask,
            languages and ids.
        """
        n_docs = len(self.rows_true)
        if not checked:
            label_where = {label: [where] for label in self.gold_labels}
            check_gold_labels(n_docs, label_where, name, self.labels, where, False)
        if n_docs == 0:
            raise ValueError(Errors.E052.format(path=where, action="evaluate"))
        shape = (n_docs, len(self.labels))
        y_true = numpy.asarray(self.rows_true, dtype="f").reshape(shape)
        known = numpy.asarray(self.rows_known, dtype=bool).reshape(shape)
        y_prob = numpy.asarray(y_prob, dtype="f").reshape(shape)
        return PredictionArrays(self.labels, y_true, y_prob, known, list(self.langs), list(self.ids))


def check_files(path: Union[str, Path], name: str, labels: List[str]) -> None:
    """Check gold files against the component's labels before predicting
    anything, as predict_arrays does: fail in seconds on the wrong data."""
    n_gold, label_files = gold_label_files(path)
    check_gold_labels(n_gold, label_files, name, list(labels), str(path), False)


def probabilities(doc: Doc, labels: List[str]) -> List[float]:
    """A predicted document's probabilities in label order (0.0 where missing),
    as examples_to_arrays reads them."""
    return [float(doc.cats.get(label, 0.0)) for label in labels]
