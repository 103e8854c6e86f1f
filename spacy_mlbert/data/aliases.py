"""Label aliases: per-language label names mapped onto one canonical label set.

An alias file is a JSON (or, with PyYAML installed, YAML) object::

    {"es": {"positivo": "positive"}, "*": {"good": "positive"}}

``"*"`` applies to every language. The file is rejected (``DataError``) when

- one alias maps to two labels, inside one language, through a duplicate key,
  or through a language entry that disagrees with the ``"*"`` entry;
- a canonical label (the target of some alias, or a label of the given label
  set) is itself used as an alias of another label.

An identity entry (``"positive": "positive"``) is allowed and has no effect.
Names are NFC-normalised like texts.
"""
import json
import unicodedata
from pathlib import Path
from typing import Any, Dict, Iterable, List, Mapping, Optional, Tuple

from ..errors import Errors
from .records import DataError, PathLike

ANY_LANG = "*"


class LabelAliases:
    """A validated alias table. Use :func:`load_aliases` to read one from a file."""

    def __init__(self, table: Mapping[str, Mapping[str, str]], *, path: PathLike = "<aliases>") -> None:
        """Build and validate the table.

        table (Mapping[str, Mapping[str, str]]): language (or "*") -> alias -> label.
        path (PathLike): where the table came from, for messages.
        """
        self.path = str(path)
        self.table: Dict[str, Dict[str, str]] = {}
        if not isinstance(table, Mapping):
            raise DataError(
                Errors.E040.format(path=self.path, problem=f"the top level is {_kind(table)}, not an object"),
                path=self.path,
            )
        for lang, mapping in table.items():
            if not isinstance(lang, str) or not lang.strip():
                raise DataError(
                    Errors.E040.format(
                        path=self.path,
                        problem=f"language key {lang!r} is not a non-empty string (quote it in YAML: 'no')",
                    ),
                    path=self.path,
                )
            if not isinstance(mapping, Mapping):
                raise DataError(
                    Errors.E040.format(
                        path=self.path, problem=f"the entry for '{lang}' is {_kind(mapping)}, not an object"
                    ),
                    path=self.path,
                )
            entries: Dict[str, str] = {}
            for alias, target in mapping.items():
                for value in (alias, target):
                    if not isinstance(value, str) or not value.strip() or value != value.strip():
                        raise DataError(
                            Errors.E040.format(
                                path=self.path,
                                problem=f"in '{lang}', {value!r} is not a label name (a non-empty "
                                "string without surrounding spaces)",
                            ),
                            path=self.path,
                        )
                alias = unicodedata.normalize("NFC", alias)
                target = unicodedata.normalize("NFC", target)
                if alias in entries and entries[alias] != target:
                    # two spellings that are equal after NFC
                    raise DataError(
                        Errors.E038.format(path=self.path, alias=alias, first=entries[alias], second=target, lang=lang),
                        path=self.path,
                    )
                entries[alias] = target
            self.table[lang] = entries
        self._check()

    def _check(self) -> None:
        generic = self.table.get(ANY_LANG, {})
        for lang, entries in self.table.items():
            if lang == ANY_LANG:
                continue
            for alias, target in entries.items():
                if alias in generic and generic[alias] != target:
                    raise DataError(
                        Errors.E038.format(path=self.path, alias=alias, first=generic[alias], second=target, lang=lang),
                        path=self.path,
                    )
        targets = self.canonical_labels()
        for lang, entries in self.table.items():
            for alias, target in entries.items():
                if alias != target and alias in targets:
                    why = f"the target of {_sources_of(self.table, alias)}"
                    raise DataError(
                        Errors.E039.format(path=self.path, alias=alias, target=target, why=why),
                        path=self.path,
                    )

    def canonical_labels(self) -> List[str]:
        """RETURNS (List[str]): the labels that aliases map to, in file order."""
        seen: Dict[str, None] = {}
        for entries in self.table.values():
            for target in entries.values():
                seen.setdefault(target, None)
        return list(seen)

    def check_label_set(self, label_set: Iterable[str]) -> None:
        """Error if a label of the label set is used as an alias of another label.

        label_set (Iterable[str]): the canonical labels.
        """
        labels = set(label_set)
        for entries in self.table.values():
            for alias, target in entries.items():
                if alias != target and alias in labels:
                    raise DataError(
                        Errors.E039.format(path=self.path, alias=alias, target=target, why="a label of the label set"),
                        path=self.path,
                    )

    def resolve(self, name: str, lang: Optional[str]) -> str:
        """Map a label name to its canonical label.

        name (str): the label name as written in the data.
        lang (Optional[str]): the record's language.
        RETURNS (str): the canonical label (``name`` itself if it has no alias).
        """
        if lang is not None:
            entries = self.table.get(lang)
            if entries and name in entries:
                return entries[name]
        generic = self.table.get(ANY_LANG)
        if generic and name in generic:
            return generic[name]
        return name

    def __len__(self) -> int:
        return sum(len(entries) for entries in self.table.values())


def load_aliases(path: PathLike) -> LabelAliases:
    """Read and validate an alias file (JSON, or YAML if PyYAML is installed).

    path (PathLike): the file; ``.yml``/``.yaml`` files are read as YAML.
    RETURNS (LabelAliases): the validated table.
    """
    path = Path(path)
    if not path.is_file():
        problem = "it is not a file" if path.exists() else "the file does not exist"
        raise DataError(Errors.E040.format(path=path, problem=problem), path=path)
    try:
        content = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as err:
        raise DataError(Errors.E040.format(path=path, problem=f"cannot read it ({err})"), path=path) from None
    if path.suffix.lower() in (".yml", ".yaml"):
        table = _parse_yaml(content, path)
    else:
        hook = _CheckedPairs()
        try:
            table = json.loads(content, object_pairs_hook=hook)
        except (ValueError, RecursionError) as err:
            raise DataError(Errors.E040.format(path=path, problem=f"invalid JSON ({err})"), path=path) from None
        hook.check(table, path)
    return LabelAliases(table, path=path)


class _CheckedPairs:
    """An object_pairs_hook that notes keys given twice in one object.

    JSON parsers (and PyYAML) keep the last value of a repeated key silently;
    the hook remembers the repeats per object, so that the message can name
    the language whose entry repeats an alias.
    """

    def __init__(self) -> None:
        self.repeats: List[Tuple[Dict[str, Any], str, Any, Any]] = []

    def __call__(self, pairs: List[Tuple[Any, Any]]) -> Dict[Any, Any]:
        result: Dict[Any, Any] = {}
        for key, value in pairs:
            if key in result and result[key] != value:
                self.repeats.append((result, key, result[key], value))
            result[key] = value
        return result

    def check(self, table: Any, path: Path) -> None:
        """Raise for the first repeated key, naming its language if it has one."""
        for obj, key, first, second in self.repeats:
            if obj is table:
                problem = f"language '{key}' is given twice"
                raise DataError(Errors.E040.format(path=path, problem=problem), path=path)
            lang = "?"
            if isinstance(table, dict):
                lang = next((k for k, v in table.items() if v is obj), "?")
            if isinstance(first, str) and isinstance(second, str):
                raise DataError(
                    Errors.E038.format(path=path, alias=key, first=first, second=second, lang=lang), path=path
                )
            problem = f"key '{key}' is given twice"
            raise DataError(Errors.E040.format(path=path, problem=problem), path=path)


def _parse_yaml(content: str, path: Path) -> Any:
    try:
        import yaml
    except ImportError:
        raise DataError(
            Errors.E040.format(path=path, problem="YAML needs PyYAML (pip install pyyaml); or write the file as JSON"),
            path=path,
        ) from None

    class _CheckedLoader(yaml.SafeLoader):
        """SafeLoader that refuses duplicate keys (PyYAML keeps the last one silently)."""

    hook = _CheckedPairs()

    def construct_mapping(loader: Any, node: Any, deep: bool = False) -> Dict[Any, Any]:
        pairs = [
            (loader.construct_object(k, deep=True), loader.construct_object(v, deep=True)) for k, v in node.value
        ]
        return hook(pairs)

    _CheckedLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, construct_mapping)
    try:
        table = yaml.load(content, Loader=_CheckedLoader)  # noqa: S506 (a SafeLoader subclass)
    except (yaml.YAMLError, TypeError) as err:  # TypeError: a list or mapping as key
        raise DataError(Errors.E040.format(path=path, problem=f"invalid YAML ({err})"), path=path) from None
    hook.check(table, path)
    return table


def _sources_of(table: Mapping[str, Mapping[str, str]], label: str) -> str:
    sources = [
        f"'{alias}' ({lang})"
        for lang, entries in table.items()
        for alias, target in entries.items()
        if target == label and alias != label
    ]
    return ", ".join(sources) if sources else "an identity entry"


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    return {dict: "an object", list: "a list", str: "a string", bool: "a boolean"}.get(
        type(value), f"a {type(value).__name__}"
    )
