"""Converting multilingual multi-label data to spaCy DocBins.

Inputs: JSONL (``{"id", "lang", "text", "labels" | "cats"}`` per line),
SemEval-2025 Task 11 track A CSV (``id,text,<label columns>``, language from
the file name) and GoEmotions TSV (``text<TAB>label ids<TAB>id`` with a
labels file). Output: DocBins whose docs carry ``doc.cats`` (known labels only,
1.0/0.0), ``doc._.mlbert_lang`` and ``doc._.mlbert_id``.

Decisions
---------
Labels and unknowns

- ``labels: [...]`` lists the labels that apply: every other label of the
  final label set is 0 for the text; ``labels: []`` means all labels are 0.
- ``cats: {...}`` gives explicit 0/1 values; a label that is not listed is
  *unknown* for the text and is left out of doc.cats (spaCy treats it as
  missing). ``cats: {}`` means no label is known.
- A record with both is an error. A record with neither is an error by
  default (it is usually a mistake, and guessing would change the data);
  ``require_labels=False`` accepts it with no known label (texts to annotate).
- A value of null counts as absent, for ``id``, ``lang``, ``labels`` and ``cats``.
- Label values must be 0 or 1 (1.0/0.0 too); true/false, NaN, strings and
  other numbers are refused.
- A SemEval file without a column for a label (eng has no ``disgust``) leaves
  that label unknown for its texts; an empty cell is unknown too.
- GoEmotions: every label of the labels file is known (1 if its id is listed,
  else 0); labels of a wider label set are unknown. Language "en" unless --lang.
- Without a given label set, the label set is every label seen, in order of
  first appearance. With one (``label_set``/--labels), a label outside it is
  an error, or is appended with ``add_labels``/--add-labels.
- Aliases (``{"es": {"positivo": "positive"}, "*": {...}}``) map per-language
  names to canonical labels. An alias mapping to two labels (also through a
  duplicate key, or a language entry disagreeing with ``"*"``), or a canonical
  label used as an alias of another label, is an error. Names that merge into
  one label: in ``labels``/GoEmotions ids, the label is 1 if any name is; in
  ``cats``/CSV columns, their values must agree.

Text and fields

- Texts are normalised to Unicode NFC; nothing else is changed (no stripping,
  no whitespace or case changes). Label names are NFC-normalised as well and
  must not start or end with whitespace.
- Record ids: a string or an integer; default ``<file stem>:<line>``. Ids must
  be unique across all inputs of one conversion.
- Languages: the record's ``lang`` (SemEval: the file name), else the
  ``lang`` option (--lang), else "xx". Codes are kept as written.
- Other JSONL fields are kept: in ``Record.meta`` and, as a JSON string, in
  ``doc.user_data["mlbert_meta"]``. ``doc.user_data["mlbert_source"]`` holds
  "file name:line".

Files

- UTF-8 only; a byte order mark at the start is accepted and stripped; CRLF
  line endings are accepted. Invalid UTF-8 is an error naming its line.
  Lines are split at "\\n" only, so U+2028 and the like stay in the text.
- A last line that is not valid JSON and has no newline is reported as a
  truncated file. A key given twice in one JSON object is an error (JSON
  would keep only one value).
- An empty file (or one with only blank lines, or a CSV header and no rows)
  is an error; with skip_invalid it is noted in the report instead.
- Problems of a whole file (a bad CSV header, a label column outside the label
  set, a missing input, a bad alias or label file) raise even with
  skip_invalid, which only skips records.

Counting (``ConversionReport``)

- ``read == blank + converted + skipped + duplicates_removed``, always. JSONL
  and TSV count lines; CSV counts rows (a quoted text may span lines), the
  header excluded. Blank lines are counted as blank, not skipped.
- With skip_invalid, each skipped record is listed with file, line, code and
  reason (``report.issues``); a record is skipped whole, never in part.

Splitting

- Exact duplicate texts (equal after NFC, any language) are removed before
  splitting, keeping the first in input order, so that no text is in two
  splits; each removal is reported, flagged when the labels differed.
  Without a split nothing is removed.
- Iterative stratification in one pass with the target ratios, over the
  labels (unknown counts as 0, for the split only) plus one column per
  language; seeded and deterministic. ``stratify.py`` holds the matrix as
  bits and makes the same folds, draw for draw, as the
  ``iterative-stratification`` package that earlier versions called.

Large corpora (``stream.py``, what ``convert`` runs)

- The inputs are read twice: first to validate them and note each record's
  text hash, language and positives (some 20 bytes a record), which decide
  the de-duplication and the split; then to stream the records into their
  outputs. The split is the one ``split_records`` makes of the same records.
- An output of more than ``shard_size`` docs (10,000) is a folder of
  ``.spacy`` files of that many docs (``shards.py``), which ``spacy train``
  and every reader here read in name order; smaller ones stay one file.
- All outputs go to temporary names and appear together once complete; on
  an error none does, and earlier outputs stay as they were. An input that
  changes between the two readings is an error (E160).
"""
from .aliases import LabelAliases, load_aliases
from .docbin import doc_to_record, read_docbin, record_to_doc, records_to_docbin
from .goemotions import iter_goemotions_records, load_goemotions_labels
from .jsonl import iter_jsonl_records
from .labels import check_label_sets_match, docbin_labels, load_label_list
from .reader import FORMATS, detect_format, expand_inputs, iter_records, read_records
from .records import ConversionReport, DataError, DuplicateText, Issue, Record
from .semeval import iter_semeval_records
from .split import parse_ratios, remove_duplicate_texts, split_records
from .stats import LabelStats, label_stats, print_label_stats, save_label_stats
from .validate import ReadContext

__all__ = [
    "ConversionReport",
    "DataError",
    "DuplicateText",
    "FORMATS",
    "Issue",
    "LabelAliases",
    "LabelStats",
    "ReadContext",
    "Record",
    "check_label_sets_match",
    "detect_format",
    "doc_to_record",
    "docbin_labels",
    "expand_inputs",
    "iter_goemotions_records",
    "iter_jsonl_records",
    "iter_records",
    "iter_semeval_records",
    "label_stats",
    "load_aliases",
    "load_goemotions_labels",
    "load_label_list",
    "parse_ratios",
    "print_label_stats",
    "read_docbin",
    "read_records",
    "record_to_doc",
    "records_to_docbin",
    "remove_duplicate_texts",
    "save_label_stats",
    "split_records",
]
