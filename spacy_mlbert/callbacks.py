"""Training callbacks, referenced from configs (``[initialize.after_init]``)."""
from typing import Callable

from spacy.language import Language
from spacy.util import registry


@registry.callbacks("spacy-mlbert.freeze_word_embeddings.v1")
def make_freeze_word_embeddings(component: str = "transformer") -> Callable[[Language], Language]:
    """Stop training the encoder's word-embedding matrix.

    In multilingual encoders the word embeddings are most of the weights
    (XLM-R and e5: a 250k-piece vocabulary), so the optimizer step over them
    dominates a CPU update; the pieces a classification corpus touches are a
    small part of them anyway. Frozen parameters get no gradient, and thinc's
    PyTorch shim skips parameters without one.

    component (str): Name of the spacy-transformers component.
    RETURNS (Callable[[Language], Language]): Used as ``[initialize.after_init]``.
    """

    def freeze_word_embeddings(nlp: Language) -> Language:
        hf_model = nlp.get_pipe(component).model.transformer
        hf_model.get_input_embeddings().weight.requires_grad_(False)
        return nlp

    return freeze_word_embeddings
