"""A multilingual tokenizer that cuts text written without spaces into characters.

spaCy's ``xx`` tokenizer splits on whitespace, then on punctuation affixes. A
Chinese, Japanese or Thai sentence has no spaces, so it stays ONE spaCy token
(``spacy.blank("xx")("这个产品很好，非常实用。我很喜欢它")`` has one token).
Windows over a document can only start and end between spaCy tokens, so such
a token cannot be divided among windows, however many wordpieces it holds.

``ScriptAwareTokenizer`` runs the default ``xx`` tokenizer and then splits
every run of characters of a script written without spaces into one token per
character (with its combining marks), as BERT's pre-tokenizer does for CJK.
Everything else is tokenized exactly as before, so "iPhone的价格" becomes
"iPhone", "的", "价", "格".
"""
import re
import unicodedata
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, List, Tuple, Union

from spacy.language import Language
from spacy.tokenizer import Tokenizer
from spacy.tokens import Doc
from spacy.util import SimpleFrozenList, registry

# Unicode blocks of scripts that are written without spaces between words,
# with their punctuation (full stops and commas of CJK text are not split off
# by the xx tokenizer either). Korean is left out: Hangul is written with spaces.
NO_SPACE_RANGES: Tuple[Tuple[int, int, str], ...] = (
    (0x0E00, 0x0E7F, "Thai"),
    (0x0E80, 0x0EFF, "Lao"),
    (0x0F00, 0x0FFF, "Tibetan"),
    (0x1000, 0x109F, "Myanmar"),
    (0x1780, 0x17FF, "Khmer"),
    (0x19E0, 0x19FF, "Khmer symbols"),
    (0x1B00, 0x1B7F, "Balinese"),
    (0x2E80, 0x2FDF, "CJK and Kangxi radicals"),
    (0x2FF0, 0x2FFF, "Ideographic description characters"),
    (0x3000, 0x303F, "CJK symbols and punctuation"),
    (0x3040, 0x309F, "Hiragana"),
    (0x30A0, 0x30FF, "Katakana"),
    (0x3100, 0x312F, "Bopomofo"),
    (0x31A0, 0x31BF, "Bopomofo extended"),
    (0x31C0, 0x31EF, "CJK strokes"),
    (0x31F0, 0x31FF, "Katakana phonetic extensions"),
    (0x3400, 0x4DBF, "CJK extension A"),
    (0x4E00, 0x9FFF, "CJK unified ideographs"),
    (0xA000, 0xA4CF, "Yi"),
    (0xA980, 0xA9DF, "Javanese"),
    (0xA9E0, 0xA9FF, "Myanmar extended B"),
    (0xAA60, 0xAA7F, "Myanmar extended A"),
    (0xF900, 0xFAFF, "CJK compatibility ideographs"),
    (0xFE10, 0xFE1F, "Vertical forms"),
    (0xFE30, 0xFE4F, "CJK compatibility forms"),
    (0xFF01, 0xFF60, "Fullwidth ASCII variants and punctuation"),
    (0xFF61, 0xFF9F, "Halfwidth CJK punctuation and Katakana"),
    (0x1B000, 0x1B16F, "Kana supplement and extended"),
    (0x20000, 0x323AF, "CJK extensions B to H and compatibility supplement"),
)

NO_SPACE_CHARS = re.compile(
    "[" + "".join(f"\\U{start:08X}-\\U{end:08X}" for start, end, _ in NO_SPACE_RANGES) + "]"
)


@registry.tokenizers("spacy-mlbert.ScriptAwareTokenizer.v1")
def create_script_aware_tokenizer() -> Callable[[Language], "ScriptAwareTokenizer"]:
    """The language's default tokenizer, with runs of Han, Kana, Thai, Lao,
    Khmer, Myanmar, Tibetan (and other scripts written without spaces) split
    into one token per character.

    RETURNS (Callable[[Language], ScriptAwareTokenizer]): The tokenizer factory.
    """
    default_factory = registry.tokenizers.get("spacy.Tokenizer.v1")()

    def make_tokenizer(nlp: Language) -> ScriptAwareTokenizer:
        return ScriptAwareTokenizer(default_factory(nlp))

    return make_tokenizer


class ScriptAwareTokenizer:
    """Wraps a spaCy ``Tokenizer`` and splits its tokens of scripts written
    without spaces into characters. Serialization, special cases and the
    other tokenizer settings are those of the wrapped tokenizer.
    """

    def __init__(self, tokenizer: Tokenizer) -> None:
        """Wrap a tokenizer.

        tokenizer (Tokenizer): The tokenizer whose output is refined.
        """
        self.tokenizer = tokenizer

    @property
    def vocab(self):
        return self.tokenizer.vocab

    def __call__(self, text: str) -> Doc:
        """Tokenize a text.

        text (str): The text.
        RETURNS (Doc): The document.
        """
        doc = self.tokenizer(text)
        # Most texts have no such character: they keep the Doc made above.
        if NO_SPACE_CHARS.search(text) is None:
            return doc
        return split_no_space_tokens(doc)

    def pipe(self, texts: Iterable[str], batch_size: int = 1000) -> Iterator[Doc]:
        """Tokenize a stream of texts.

        texts (Iterable[str]): The texts.
        batch_size (int): Unused, for compatibility with spaCy's Tokenizer.
        YIELDS (Doc): The documents, in order.
        """
        for text in texts:
            yield self(text)

    # Serialization is the wrapped tokenizer's: the splitting has no settings.

    def to_bytes(self, *, exclude: Iterable[str] = SimpleFrozenList()) -> bytes:
        return self.tokenizer.to_bytes(exclude=exclude)

    def from_bytes(
        self, bytes_data: bytes, *, exclude: Iterable[str] = SimpleFrozenList()
    ) -> "ScriptAwareTokenizer":
        self.tokenizer.from_bytes(bytes_data, exclude=exclude)
        return self

    def to_disk(self, path: Union[str, Path], *, exclude: Iterable[str] = SimpleFrozenList()) -> None:
        self.tokenizer.to_disk(path, exclude=exclude)

    def from_disk(
        self, path: Union[str, Path], *, exclude: Iterable[str] = SimpleFrozenList()
    ) -> "ScriptAwareTokenizer":
        self.tokenizer.from_disk(path, exclude=exclude)
        return self

    def __getattr__(self, name: str) -> Any:
        # Settings such as rules, url_match or add_special_case() belong to the
        # wrapped tokenizer. Names that __getattr__ is asked for before
        # __init__ has run (pickle, copy) must not recurse into it.
        if name.startswith("__") or name == "tokenizer":
            raise AttributeError(name)
        return getattr(self.tokenizer, name)


def split_no_space_tokens(doc: Doc) -> Doc:
    """A new Doc in which each token holding characters of a script written
    without spaces is split: one token per such character (with the
    combining marks that follow it), and one per run of other characters.

    doc (Doc): A document straight from a tokenizer (no annotations).
    RETURNS (Doc): The document; ``doc`` itself when nothing is split.
    """
    words: List[str] = []
    spaces: List[bool] = []
    norms: List[Tuple[int, str]] = []  # (new index, norm) set by special cases
    changed = False
    for token in doc:
        text = token.text
        pieces = split_no_space_text(text) if len(text) > 1 else [text]
        if len(pieces) == 1:
            if token.norm != doc.vocab[token.orth].norm:
                norms.append((len(words), token.norm_))
            words.append(text)
            spaces.append(bool(token.whitespace_))
            continue
        changed = True
        words.extend(pieces)
        spaces.extend([False] * (len(pieces) - 1) + [bool(token.whitespace_)])
    if not changed:
        return doc
    new_doc = Doc(doc.vocab, words=words, spaces=spaces)
    for i, norm in norms:
        new_doc[i].norm_ = norm
    return new_doc


def split_no_space_text(text: str) -> List[str]:
    """Split a token's text: each character of a script written without
    spaces becomes a piece of its own (with the combining marks after it, so
    that a Thai vowel sign stays on its consonant); runs of other characters
    stay together.

    text (str): The text of one token.
    RETURNS (List[str]): The pieces, which join up to ``text``.
    """
    if NO_SPACE_CHARS.search(text) is None:
        return [text]
    pieces: List[str] = []
    current = ""
    current_is_char = False  # whether `current` is a no-space character (+ marks)
    for char in text:
        if current and unicodedata.category(char)[0] == "M":
            current += char  # a combining mark belongs to what precedes it
        elif NO_SPACE_CHARS.match(char):
            if current:
                pieces.append(current)
            current, current_is_char = char, True
        elif current_is_char:
            pieces.append(current)
            current, current_is_char = char, False
        else:
            current += char
    if current:
        pieces.append(current)
    return pieces
