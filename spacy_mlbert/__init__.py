"""spacy-mlbert: multilingual multi-label text classification for spaCy.

Importing the package registers the ``mlbert_textcat`` factory, the
``spacy-mlbert.*`` architectures, scorer, reader, optimizer, schedule, callback, tokenizer
and span getter; installed, they are also found
through entry points without an import.
"""
from importlib.metadata import PackageNotFoundError, version

from . import architectures, callbacks, optimizers, readers, schedules, scorers, span_getters, tokenizer  # noqa: F401  (registers the names)
from .extensions import install_extensions
from .pipeline import MultiLabelBertCategorizer, make_mlbert_textcat

try:
    __version__ = version("spacy-mlbert")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0"

__all__ = ["MultiLabelBertCategorizer", "make_mlbert_textcat", "install_extensions", "__version__"]
