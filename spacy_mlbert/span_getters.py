"""Windows over long documents, measured in the encoder's own wordpieces.

spacy-transformers' ``strided_spans.v1`` measures windows in spaCy tokens. One
spaCy token can hold any number of wordpieces (a Chinese sentence without
spaces is one token of the ``xx`` tokenizer), so a window can exceed the
encoder's limit, and spacy-transformers then drops the wordpieces past it.

``spacy-mlbert.wordpiece_strided_spans.v1`` counts the wordpieces of every
spaCy token with the encoder's own fast tokenizer (character offsets over the
whole ``doc.text``) and builds greedy windows of whole spaCy tokens that fit
the encoder. Each window is checked by tokenizing its own text, because a
wordpiece can change at a window edge (SentencePiece adds "▁" at the start of
a text; a wordpiece that crossed two spaCy tokens is split). Only a single
spaCy token with more wordpieces than a window (e.g. a 2,000-character URL)
still has to be cut; ``spacy-mlbert.TransformerModel.v1`` counts such cuts and
warns (W010).

The getter reads the tokenizer from the transformer at call time, through
``bind_model``, so it works after ``nlp.initialize`` and after ``spacy.load``
of a saved pipeline (whose tokenizer is stored inside it).
"""
from typing import Any, Iterable, List, Optional, Sequence, Tuple

import numpy
from spacy.tokens import Doc, Span
from spacy_transformers.util import registry

from .errors import Errors

# Tokenizers without a declared maximum report this sentinel (or more) as
# model_max_length; the window is then used as given.
NO_MAX_LENGTH = 10**9


@registry.span_getters("spacy-mlbert.wordpiece_strided_spans.v1")
def configure_wordpiece_strided_spans(window: int = 510, stride: int = 384) -> "WordpieceStridedSpans":
    """Strided windows of whole spaCy tokens, measured in the encoder's wordpieces.

    window (int): Wordpieces per window, NOT counting the special tokens the
        tokenizer adds (<s> and </s>, [CLS] and [SEP]). It is capped at what the
        encoder takes (model_max_length minus the special tokens: 510 for
        512-wordpiece encoders), so 510 fits the usual BERT/XLM-R encoders.
    stride (int): Wordpieces between the starts of two windows; window - stride
        wordpieces overlap (about, as windows start and end between spaCy tokens).
    RETURNS (WordpieceStridedSpans): The span getter, to be used as get_spans of
        "spacy-mlbert.TransformerModel.v1".
    """
    return WordpieceStridedSpans(window, stride)


class WordpieceStridedSpans:
    """Callable span getter: ``get_spans(docs) -> List[List[Span]]``.

    The transformer that uses it must call ``bind_model(model)`` (the
    architectures of this package do), because the wordpieces are counted
    with ``model.tokenizer``.
    """

    def __init__(self, window: int, stride: int) -> None:
        """Check and store the settings.

        window (int): Wordpieces per window, without the special tokens.
        stride (int): Wordpieces between the starts of two windows.
        """
        for value in (window, stride):
            if isinstance(value, bool) or not isinstance(value, int):
                raise ValueError(Errors.E070.format(window=window, stride=stride))
        if not 1 <= stride <= window:
            raise ValueError(Errors.E070.format(window=window, stride=stride))
        self.window = window
        self.stride = stride
        # A strong reference: a weak one could not be pickled (multiprocessing)
        # and deep-copying the transformer then maps it onto the copy.
        self._model: Optional[Any] = None

    def bind_model(self, model: Any) -> None:
        """Read the tokenizer from this transformer whenever windows are made.

        model (TransformerModel): A spacy-transformers TransformerModel.
        """
        self._model = model

    @property
    def tokenizer(self) -> Any:
        """The encoder's Hugging Face tokenizer, read from the bound model now."""
        if self._model is None:
            raise ValueError(Errors.E071)
        tokenizer = self._model.tokenizer
        if tokenizer is None:
            raise ValueError(Errors.E072)
        if not getattr(tokenizer, "is_fast", False):
            raise ValueError(Errors.E073.format(kind=type(tokenizer).__name__))
        return tokenizer

    def budget(self, tokenizer: Any) -> int:
        """The wordpieces a window may hold with this tokenizer.

        tokenizer (PreTrainedTokenizerFast): The encoder's tokenizer.
        RETURNS (int): min(window, model_max_length - special tokens).
        """
        max_length = tokenizer.model_max_length
        if max_length is None or max_length >= NO_MAX_LENGTH:
            return self.window
        room = max_length - tokenizer.num_special_tokens_to_add(pair=False)
        return max(1, min(self.window, room))

    def __call__(self, docs: Iterable[Doc]) -> List[List[Span]]:
        """The windows of each document.

        docs (Iterable[Doc]): The batch.
        RETURNS (List[List[Span]]): Per document, its windows in order; none
            for a document without tokens.
        """
        docs = list(docs)
        if not any(len(doc) for doc in docs):
            return [[] for _ in docs]
        tokenizer = self.tokenizer
        budget = self.budget(tokenizer)
        # One batched call over the whole texts gives every wordpiece's
        # character offsets; special tokens are left out (they belong to
        # windows, not to the text).
        encoding = tokenizer(
            [doc.text for doc in docs],
            add_special_tokens=False,
            return_offsets_mapping=True,
            return_attention_mask=False,
            return_token_type_ids=False,
            verbose=False,  # a text longer than the encoder is expected here
        )
        return [
            self.doc_windows(doc, offsets, tokenizer, budget)
            for doc, offsets in zip(docs, encoding["offset_mapping"])
        ]

    def doc_windows(
        self, doc: Doc, offsets: Sequence[Tuple[int, int]], tokenizer: Any, budget: int
    ) -> List[Span]:
        """Greedy windows of whole tokens: each takes as many tokens as fit the
        budget, the next one starts ``stride`` wordpieces after it. Linear in
        the length of the document (each window's text is tokenized once, or
        a few times when an edge effect makes it too long).

        doc (Doc): The document.
        offsets (Sequence[Tuple[int, int]]): Character offsets of the wordpieces
            of doc.text, without special tokens.
        tokenizer (PreTrainedTokenizerFast): Gives the true length of a window.
        budget (int): Wordpieces per window.
        RETURNS (List[Span]): The windows.
        """
        n_tokens = len(doc)
        if n_tokens == 0:
            return []
        counts = token_wordpiece_counts(doc, offsets)
        if int(counts.sum()) <= budget:
            # The whole text fits: its own tokenization was counted, no check needed.
            return [doc[:]]
        # prefix[i] = wordpieces of tokens [0, i)
        prefix = numpy.concatenate([[0], numpy.cumsum(counts)])
        windows: List[Span] = []
        # How many more wordpieces a window's own text has than its tokens'
        # counts. It is the same at most edges (SentencePiece's "▁" before the
        # first character), so after the first window the estimate aims lower
        # and the check seldom has to shrink a window.
        slack = 0
        start = 0
        while True:
            target = prefix[start] + budget - slack
            end = int(numpy.searchsorted(prefix, target, side="right")) - 1
            end = min(max(end, start + 1), n_tokens)
            end, overshoot = _fit_window(doc, start, end, prefix, tokenizer, budget)
            slack = min(max(slack, overshoot), budget // 2)
            windows.append(doc[start:end])
            if end >= n_tokens:
                return windows
            # the first token at least `stride` wordpieces on, but no later
            # than the end of this window, so that no token is skipped
            step = int(numpy.searchsorted(prefix, prefix[start] + self.stride, side="left"))
            start = min(max(step, start + 1), end)


def token_wordpiece_counts(doc: Doc, offsets: Sequence[Tuple[int, int]]) -> numpy.ndarray:
    """How many wordpieces of the whole-text tokenization belong to each token.

    A wordpiece belongs to the token that holds its last character: the
    SentencePiece "▁" of a word spans the space before it, which spaCy counts
    with the previous token.

    doc (Doc): The document.
    offsets (Sequence[Tuple[int, int]]): Character offsets of the wordpieces.
    RETURNS (numpy.ndarray): (len(doc),) counts.
    """
    n_tokens = len(doc)
    if len(offsets) == 0:
        return numpy.zeros((n_tokens,), dtype="i")
    starts = numpy.fromiter((token.idx for token in doc), dtype="i", count=n_tokens)
    spans = numpy.asarray(offsets, dtype="i").reshape((-1, 2))
    chars = numpy.where(spans[:, 1] > spans[:, 0], spans[:, 1] - 1, spans[:, 0])
    owners = numpy.searchsorted(starts, chars, side="right") - 1
    owners = numpy.clip(owners, 0, n_tokens - 1)
    return numpy.bincount(owners, minlength=n_tokens).astype("i")


def _fit_window(
    doc: Doc, start: int, end: int, prefix: numpy.ndarray, tokenizer: Any, budget: int
) -> Tuple[int, int]:
    """The end of the window starting at ``start``, checked against the
    window's own tokenization and moved back while it holds too many
    wordpieces. A single token is kept whatever its length (it is cut later,
    and counted).

    RETURNS (Tuple[int, int]): The end, and the largest number of wordpieces
        by which a checked text exceeded its tokens' counts.
    """
    overshoot = 0
    while end - start > 1:
        length = _n_wordpieces(tokenizer, doc[start:end].text)
        overshoot = max(overshoot, length - int(prefix[end] - prefix[start]))
        if length <= budget:
            break
        # drop from the end at least as many counted wordpieces as are too many
        excess = length - budget
        shorter = int(numpy.searchsorted(prefix, prefix[end] - excess, side="right")) - 1
        end = min(max(shorter, start + 1), end - 1)
    return end, overshoot


def _n_wordpieces(tokenizer: Any, text: str) -> int:
    encoding = tokenizer(
        text,
        add_special_tokens=False,
        return_attention_mask=False,
        return_token_type_ids=False,
        verbose=False,
    )
    return len(encoding["input_ids"])
