"""Writing records to a ``.spacy`` file, or to a folder of shard files.

An output of at most ``shard_size`` docs is one DocBin file, as always. A
larger one is a folder with that name holding DocBins of ``shard_size`` docs
(``0000.spacy``, ``0001.spacy``, ...): ``spacy train``'s Corpus, the
``MultilingualCorpus`` reader, evaluate, tune-thresholds and annotate read
every ``.spacy`` file under a folder, in name order, so the docs keep their
order. Only one shard is in memory at a time, and each shard is made with a
fresh blank pipeline, so that the vocabulary (every token string seen) does
not grow with the corpus either.
"""
from pathlib import Path
from typing import Optional, Sequence

from spacy.language import Language
from spacy.tokens import DocBin

from ..errors import Errors
from ..extensions import install_extensions
from .docbin import make_nlp, record_to_doc
from .records import DataError, PathLike, Record

# Docs per shard: a DocBin of 10,000 short texts adds some 100 MB to the
# peak while it is built and serialised (measured: 10 KB a doc), and a corpus
# of up to this many docs (BRIGHTER's largest language, the sample corpus)
# stays one file.
DEFAULT_SHARD_SIZE = 10_000


def check_shard_size(shard_size: int) -> int:
    """RETURNS (int): the shard size, if it is a whole number of at least 1."""
    if isinstance(shard_size, bool) or not isinstance(shard_size, int) or shard_size < 1:
        raise DataError(Errors.E161.format(value=shard_size))
    return shard_size


class DocBinWriter:
    """Adds records as docs and writes them out shard by shard.

    path (Path): where to write: the file, or the folder of shards.
    n_docs (int): how many docs will be added (decides file or folder).
    shard_size (int): the most docs in one file.
    labels (Optional[Sequence[str]]): the label set (see ``record_to_doc``).
    nlp (Optional[str]): the language code of the blank pipeline that
        tokenizes (default "xx").
    """

    def __init__(
        self,
        path: PathLike,
        *,
        n_docs: int,
        shard_size: int = DEFAULT_SHARD_SIZE,
        labels: Optional[Sequence[str]] = None,
        nlp: Optional[str] = None,
    ) -> None:
        install_extensions()
        self.path = Path(path)
        self.shard_size = check_shard_size(shard_size)
        self.labels = labels
        self.lang = nlp
        self.sharded = n_docs > shard_size
        n_shards = -(-n_docs // shard_size)
        self.width = max(4, len(str(n_shards - 1)))
        self.shards = 0
        self.n_docs = 0
        self._nlp: Optional[Language] = None
        self._docbin: Optional[DocBin] = None
        if self.sharded:
            self.path.mkdir()

    def add(self, record: Record) -> None:
        """Add one record; a full shard is written out."""
        if self._docbin is None:
            self._docbin = DocBin(store_user_data=True)
            if self._nlp is None or self.sharded:
                self._nlp = make_nlp(self.lang)
        self._docbin.add(record_to_doc(record, self._nlp, self.labels))
        self.n_docs += 1
        if self.sharded and len(self._docbin) >= self.shard_size:
            self._flush()

    def close(self) -> Path:
        """Write what is left (an empty DocBin for an output without docs).

        RETURNS (Path): the file or folder.
        """
        if self._docbin is not None or not self.sharded:
            if self._docbin is None:
                self._docbin = DocBin(store_user_data=True)
            self._flush()
        return self.path

    def _flush(self) -> None:
        docbin, self._docbin = self._docbin, None
        target = self.path / f"{self.shards:0{self.width}d}.spacy" if self.sharded else self.path
        docbin.to_disk(target)  # type: ignore[union-attr]
        self.shards += 1
