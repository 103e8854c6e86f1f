"""The canonical label set: reading label lists, resolving names, comparing sets."""
import json
import unicodedata
from pathlib import Path
from typing import Dict, Iterable, List, Optional, Sequence, Tuple, Union

from ..errors import Errors
from .aliases import LabelAliases
from .records import DataError, PathLike

# Suffixes that make a --labels value a file name even when the file is missing,
# so that a typo in a path is not read as a one-label list.
_FILE_SUFFIXES = {".json", ".txt", ".labels", ".lst", ".list", ".yml", ".yaml", ".cfg"}


def check_label_name(name: object) -> Optional[str]:
    """Say what is wrong with a label name, if anything.

    name (object): the value from the data.
    RETURNS (Optional[str]): the problem, or None for a good name.
    """
    if not isinstance(name, str):
        return f"{name!r} is not a string"
    if not name.strip():
        return f"label name {name!r} is empty"
    if name != name.strip():
        return f"label name {name!r} starts or ends with whitespace"
    if any("\ud800" <= char <= "\udfff" for char in name):
        return f"label name {name!r} holds a lone surrogate (invalid Unicode)"
    return None


def load_label_list(value: Union[PathLike, Sequence[str]]) -> List[str]:
    """Read a label list from a file, a comma-separated string or a sequence.

    A file is a JSON list of names (e.g. the labels.json that ``convert`` writes)
    or a text file with one name per line (blank lines are ignored, spaces
    around names are removed). Names are NFC-normalised.

    value (Union[PathLike, Sequence[str]]): file path, "a,b,c" or a list.
    RETURNS (List[str]): the labels in the given order.
    """
    if isinstance(value, (str, Path)):
        path = Path(value)
        if path.is_file():
            return _read_label_file(path)
        looks_like_path = path.suffix.lower() in _FILE_SUFFIXES or ("/" in str(value) and "," not in str(value))
        if isinstance(value, Path) or looks_like_path:
            raise DataError(
                Errors.E043.format(where=str(value), problem="the file does not exist"), path=str(value)
            )
        names: Sequence[str] = [name.strip() for name in str(value).split(",")]
        return _check_names(names, "--labels")
    return _check_names(list(value), "label list")


def _read_label_file(path: Path) -> List[str]:
    try:
        content = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as err:
        raise DataError(Errors.E043.format(where=path, problem=f"cannot read it ({err})"), path=path) from None
    if path.suffix.lower() == ".json" or content.lstrip().startswith("["):
        try:
            names = json.loads(content)
        except (ValueError, RecursionError) as err:
            raise DataError(Errors.E043.format(where=path, problem=f"invalid JSON ({err})"), path=path) from None
        if not isinstance(names, list):
            raise DataError(Errors.E043.format(where=path, problem="the JSON is not a list"), path=path)
        return _check_names(names, str(path))
    names = [line.strip() for line in content.split("\n") if line.strip()]
    return _check_names(names, str(path))


def _check_names(names: Sequence[object], source: str) -> List[str]:
    result: List[str] = []
    seen = set()
    for name in names:
        problem = check_label_name(name)
        if problem is not None:
            raise DataError(Errors.E043.format(where=source, problem=problem), path=source)
        name = unicodedata.normalize("NFC", str(name))
        if name in seen:
            raise DataError(Errors.E043.format(where=source, problem=f"'{name}' is listed twice"), path=source)
        seen.add(name)
        result.append(name)
    if not result:
        raise DataError(Errors.E043.format(where=source, problem="it names no label"), path=source)
    return result


class LabelSet:
    """The canonical labels of one conversion, growing or fixed.

    Without a given label set, every label seen in the data is added (in order
    of first appearance). With one, a label outside it is an error, unless
    ``add_labels`` is set, which appends it.
    """

    def __init__(
        self,
        labels: Optional[Sequence[str]] = None,
        *,
        add_labels: bool = False,
        aliases: Optional[LabelAliases] = None,
    ) -> None:
        """Set up the label set.

        labels (Optional[Sequence[str]]): the given label set, or None to infer it.
        add_labels (bool): add labels outside a given label set instead of erroring.
        aliases (Optional[LabelAliases]): language-specific label names.
        """
        self.given: Optional[List[str]] = _check_names(labels, "label set") if labels is not None else None
        self.add_labels = add_labels
        self.aliases = aliases
        self.labels: List[str] = list(self.given or [])
        self._index = set(self.labels)
        self.added: List[str] = []
        if aliases is not None and self.given is not None:
            aliases.check_label_set(self.given)

    @property
    def is_fixed(self) -> bool:
        """RETURNS (bool): whether the label set cannot grow any more."""
        return self.given is not None and not self.add_labels

    def resolve(self, name: str, lang: Optional[str], *, location: str, field: str) -> str:
        """The canonical label for a name from the data; does not add it yet.

        name (str): the label name as written (a valid name, NFC-normalised).
        lang (Optional[str]): the record's language, for the aliases.
        location (str): "file, line N" for the message.
        field (str): where in the record the name is, for the message.
        RETURNS (str): the canonical label.
        """
        label = self.aliases.resolve(name, lang) if self.aliases is not None else name
        if self.is_fixed and label not in self._index:
            known = ", ".join(self.labels) if len(self.labels) <= 20 else f"{len(self.labels)} labels"
            shown = label if label == name else f"{name}' (alias of '{label}"
            raise DataError(
                Errors.E031.format(where=location, field=field, label=shown, known=known),
                field=field,
            )
        return label

    def commit(self, labels: Iterable[str]) -> None:
        """Add the labels of an accepted record that are new.

        labels (Iterable[str]): canonical labels.
        """
        for label in labels:
            if label not in self._index:
                self._index.add(label)
                self.labels.append(label)
                if self.given is not None:
                    self.added.append(label)

    def __contains__(self, label: object) -> bool:
        return label in self._index

    def __len__(self) -> int:
        return len(self.labels)


def check_label_sets_match(
    first: Iterable[str], second: Iterable[str], *, names: Tuple[str, str] = ("train", "dev")
) -> None:
    """Raise a DataError (E044) if two label sets differ; the order does not matter.

    Compare the labels.json files that ``convert`` writes. Labels read off a
    DocBin's doc.cats (:func:`docbin_labels`) miss labels unknown for every doc.

    first (Iterable[str]): e.g. the training labels.
    second (Iterable[str]): e.g. the development labels.
    names (Tuple[str, str]): what to call the two sets in the message.
    """
    set_a, set_b = set(first), set(second)
    if set_a == set_b:
        return

    def show(labels: Iterable[str]) -> str:
        items = sorted(labels)
        return ", ".join(f"'{label}'" for label in items) if items else "nothing"

    raise DataError(
        Errors.E044.format(
            first=names[0], second=names[1], only_first=show(set_a - set_b), only_second=show(set_b - set_a)
        )
    )


def docbin_labels(path: PathLike) -> List[str]:
    """The labels known for at least one doc of a .spacy file (or of a folder
    of them), in order of appearance.

    path (PathLike): a DocBin file, or a folder of DocBin files.
    RETURNS (List[str]): the labels.
    """
    from spacy.tokens import DocBin

    from ..evaluation.evaluate import docbin_files

    seen: Dict[str, None] = {}
    for file in docbin_files(path):
        # DocBin keeps each doc's cats: no need to make the docs
        for cats in DocBin().from_disk(file).cats:
            for label in cats:
                seen.setdefault(label, None)
    return list(seen)
