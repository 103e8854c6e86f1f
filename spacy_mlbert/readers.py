"""A corpus reader that can select languages, for per-language and
cross-lingual training from one multilingual ``.spacy`` file."""
from pathlib import Path
from typing import Callable, Iterable, Iterator, List, Optional, Set, Union

from spacy.language import Language
from spacy.training import Corpus, Example
from spacy.util import registry

from .extensions import install_extensions


@registry.readers("spacy-mlbert.MultilingualCorpus.v1")
def create_multilingual_corpus_reader(
    path: Optional[Union[str, Path]],
    *,
    langs: Optional[Union[List[str], str]] = None,
    exclude_langs: Optional[Union[List[str], str]] = None,
    max_length: int = 0,
    limit: int = 0,
) -> Callable[[Language], Iterable[Example]]:
    """Read a DocBin written by ``spacy-mlbert convert``, keeping only some languages.

    path (Optional[Union[str, Path]]): The ``.spacy`` file.
    langs (Optional[Union[List[str], str]]): Keep only documents whose
        ``doc._.mlbert_lang`` is one of these (a list, or "en,es" as given on
        the command line); None keeps every language.
    exclude_langs (Optional[Union[List[str], str]]): Drop documents of these languages.
    max_length (int): Skip documents longer than this many tokens (0: no limit).
    limit (int): Stop after this many documents (0: no limit), counted after
        the language filter.
    RETURNS (Callable[[Language], Iterable[Example]]): The reader.
    """
    install_extensions()
    corpus = Corpus(path, max_length=max_length, limit=0) if path is not None else None
    keep = _lang_set(langs) if langs is not None else None
    drop = _lang_set(exclude_langs or [])

    def read(nlp: Language) -> Iterator[Example]:
        if corpus is None:
            return
        count = 0
        for eg in corpus(nlp):
            lang = eg.reference._.mlbert_lang
            if (keep is not None and lang not in keep) or lang in drop:
                continue
            yield eg
            count += 1
            if limit and count >= limit:
                return

    return read


def _lang_set(langs: Union[List[str], str]) -> Set[str]:
    if isinstance(langs, str):
        langs = langs.split(",")
    return {lang.strip() for lang in langs if lang.strip()}
