"""Evaluation of a trained pipeline: predictions to arrays, metrics overall and
per language, the Markdown report and plots, and side-by-side comparisons.

The public names of :mod:`.evaluate` are re-exported here.
"""
from .evaluate import (  # noqa: F401
    DEFAULT_BATCH_SIZE,
    TEXTCAT_FACTORY,
    UNKNOWN_LANG,
    DocsOrPath,
    GoldCollector,
    PredictionArrays,
    check_batch_size,
    check_files,
    check_gold_labels,
    compute_metrics,
    docbin_files,
    evaluate_docbin,
    find_textcat,
    gold_label_files,
    load_pipeline,
    predict_arrays,
    read_gold_docs,
)
