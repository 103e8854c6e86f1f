"""Doc extension attributes the package reads and writes.

- ``doc._.mlbert_labels``: the labels whose probability reaches the component's
  per-label threshold (set by ``mlbert_textcat``), a list in label order.
- ``doc._.mlbert_lang``: the text's language code from the source data (set by
  the converter), used to break metrics down per language.
- ``doc._.mlbert_id``: the record id from the source data (set by the converter).
"""
from spacy.tokens import Doc

DOC_EXTENSIONS = ("mlbert_labels", "mlbert_lang", "mlbert_id")


def install_extensions() -> None:
    """Register the extensions once; safe to call any number of times."""
    for attr in DOC_EXTENSIONS:
        if not Doc.has_extension(attr):
            Doc.set_extension(attr, default=None)
