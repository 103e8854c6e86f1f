"""The local engine: the pipeline runs in this process (or in spaCy's worker
processes with ``n_process`` > 1).

Annotation is :func:`spacy_mlbert.annotate.jsonl.annotate`; this module adds
evaluation with ``n_process``.
"""
from pathlib import Path

from spacy.language import Language

from ..util import check_n_process, spawn_processes
from ...evaluation.evaluate import (
    DEFAULT_BATCH_SIZE,
    DocsOrPath,
    GoldCollector,
    PredictionArrays,
    check_batch_size,
    check_files,
    find_textcat,
    predict_arrays,
    read_gold_docs,
)
from ...extensions import install_extensions


def predict_arrays_local(
    nlp: Language,
    path_or_docs: DocsOrPath,
    *,
    batch_size: int = DEFAULT_BATCH_SIZE,
    n_process: int = 1,
) -> PredictionArrays:
    """Predict the gold documents' texts here and collect the arrays for scoring.

    nlp (Language): A pipeline with an ``mlbert_textcat`` component.
    path_or_docs (Union[str, Path, Iterable[Doc]]): A .spacy file or folder,
        or the gold documents.
    batch_size (int): Texts per batch for nlp.pipe.
    n_process (int): Processes for nlp.pipe; 1 is
        :func:`spacy_mlbert.evaluation.predict_arrays` itself.
    RETURNS (PredictionArrays): As predict_arrays.
    """
    check_batch_size(batch_size)
    check_n_process(n_process)
    if n_process == 1:
        return predict_arrays(nlp, path_or_docs, batch_size=batch_size)
    install_extensions()
    name, textcat = find_textcat(nlp)
    labels = list(textcat.labels)
    checked = isinstance(path_or_docs, (str, Path))
    if checked:
        where = str(path_or_docs)
        check_files(path_or_docs, name, labels)
        gold_docs = read_gold_docs(nlp, path_or_docs)
    else:
        where = "<docs>"
        gold_docs = iter(path_or_docs)
    collector = GoldCollector(labels)
    # only the texts go to the worker processes; the gold documents stay here
    texts = (collector.add(gold) for gold in gold_docs)
    with spawn_processes():
        for doc in nlp.pipe(texts, batch_size=batch_size, n_process=n_process):
            collector.add_predicted(doc.cats)
    return collector.prediction_arrays(where, name, checked=checked)

