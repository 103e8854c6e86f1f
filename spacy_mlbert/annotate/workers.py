"""Worker processes for ``annotate`` with ``n_process`` > 1.

spaCy's ``nlp.pipe(n_process=...)`` keeps its workers for the whole stream
and runs them outside any memory zone, so each worker's vocab grows with
every new word it sees (and the parent's too, as it rebuilds every
document). Here each worker loads the pipeline once and predicts the line
windows it is sent, each inside its own ``nlp.memory_zone()``
(:func:`~spacy_mlbert.annotate.util.predict_window`), and sends back only
the predictions: memory stays flat over any stream length, and the batches
are the line windows of the one-process path, so the output is the same.

Workers are spawned, not forked (see :func:`~spacy_mlbert.annotate.util.spawn_processes`).
"""
import multiprocessing
from collections import deque
from typing import Any, Deque, Iterable, Iterator, List, Optional, Tuple

from spacy.language import Language

from ..extensions import install_extensions
from .util import LineRecord, Prediction, predict_window, window_texts

# Windows sent ahead per worker: enough to keep every worker busy, few enough
# that the input is not read into memory ahead of the output.
WINDOWS_AHEAD = 2

# The worker's pipeline and labels, set once by _start.
_worker: Optional[Tuple[Language, List[str]]] = None


def _start(nlp: Language, labels: List[str]) -> None:
    global _worker
    install_extensions()
    _worker = (nlp, labels)


def _predict(texts: List[str]) -> List[Prediction]:
    assert _worker is not None, "_start runs first in every worker"
    nlp, labels = _worker
    return predict_window(nlp, texts, labels)


def predict_windows(
    nlp: Language,
    windows: Iterable[List[LineRecord]],
    labels: List[str],
    n_process: int,
) -> Iterator[Tuple[List[LineRecord], List[Prediction]]]:
    """Predict line windows in ``n_process`` spawned workers, in order.

    nlp (Language): The pipeline (sent to each worker once).
    windows (Iterable[List[LineRecord]]): The windows, from util.windows.
    labels (List[str]): The component's labels, in order.
    n_process (int): Worker processes.
    YIELDS (Tuple[List[LineRecord], List[Prediction]]): Each window with its
        predictions, in input order.
    """
    context = multiprocessing.get_context("spawn")
    with context.Pool(n_process, initializer=_start, initargs=(nlp, labels)) as pool:
        pending: Deque[Tuple[List[LineRecord], Any]] = deque()
        for window in windows:
            pending.append((window, pool.apply_async(_predict, (window_texts(window),))))
            if len(pending) >= WINDOWS_AHEAD * n_process:
                done, result = pending.popleft()
                yield done, result.get()
        while pending:
            done, result = pending.popleft()
            yield done, result.get()
