"""Where the pipeline runs when a command annotates or evaluates a corpus.

- ``local``: this process, through ``nlp.pipe`` (``n_process`` > 1 uses
  spaCy's own multiprocessing). See :mod:`spacy_mlbert.annotate.engines.local`.
- ``ray``: a pool of Ray actors, each loading the pipeline once, on a local
  Ray started on the fly or on a cluster. See
  :mod:`spacy_mlbert.annotate.engines.ray_engine`; it needs the ``ray`` extra.

Both engines give the same predictions for the same input: the local engine
batches by windows of ``batch_size`` input lines (or documents), and the Ray
engine cuts the input at multiples of ``batch_size``, so that the same texts
share a padded batch (see spacy_mlbert.annotate.jsonl).
"""
from typing import Any

from ...errors import Errors

LOCAL = "local"
RAY = "ray"
ENGINES = (LOCAL, RAY)


def check_engine(engine: Any) -> str:
    """Raise a coded error unless ``engine`` names an engine.

    engine (Any): The value given, e.g. from --engine.
    RETURNS (str): The engine name.
    """
    if engine not in ENGINES:
        raise ValueError(Errors.E092.format(engine=engine, options=", ".join(ENGINES)))
    return str(engine)
