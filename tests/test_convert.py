"""The data conversion layer: JSONL/SemEval/GoEmotions -> records -> DocBin, and `convert`."""
import json
from pathlib import Path
from typing import Iterable, List, Optional, Union

import pytest
import spacy
import srsly
from spacy.tokens import DocBin
from spacy.util import make_tempdir
from typer.testing import CliRunner

from spacy_mlbert.cli import app
from spacy_mlbert.data import (
    ConversionReport,
    DataError,
    LabelAliases,
    Record,
    check_label_sets_match,
    doc_to_record,
    docbin_labels,
    iter_jsonl_records,
    label_stats,
    load_aliases,
    load_label_list,
    parse_ratios,
    read_records,
    records_to_docbin,
    save_label_stats,
    split_records,
)
from spacy_mlbert.extensions import install_extensions


@pytest.fixture(scope="module")
def nlp():
    install_extensions()
    return spacy.blank("xx")


def write(directory: Path, name: str, content: Union[str, bytes]) -> Path:
    path = directory / name
    if isinstance(content, str):
        content = content.encode("utf-8")
    path.write_bytes(content)
    return path


def jsonl(*objects: object) -> str:
    return "".join(json.dumps(obj, ensure_ascii=False) + "\n" for obj in objects)


def read_error(path: Path, **kwargs) -> DataError:
    with pytest.raises(DataError) as info:
        read_records(path, **kwargs)
    return info.value


def assert_error(err: DataError, code: str, path: Path, line: Optional[int], *words: str) -> None:
    text = str(err)
    assert err.code == code, text
    assert text.startswith(f"[{code}]")
    assert path.name in text, text
    if line is not None:
        assert f"line {line}" in text, text
        assert err.line == line
    for word in words:
        assert word in text, text


GOOD = {"id": "a", "lang": "en", "text": "Good.", "labels": ["pos"]}


# --- JSONL: valid input ---------------------------------------------------


def test_jsonl_labels_and_cats_semantics():
    with make_tempdir() as d:
        path = write(
            d,
            "data.jsonl",
            jsonl(
                {"id": "r-1", "lang": "es", "text": "Es muy bueno.", "labels": ["positive", "recommend"]},
                {"id": "r-2", "lang": "en", "text": "Slow.", "cats": {"positive": 0, "slow": 1}},
                {"id": "r-3", "lang": "en", "text": "Nothing applies.", "labels": []},
                {"id": "r-4", "text": "Nothing known.", "cats": {}},
            ),
        )
        records, report = read_records(path)
    assert report.labels == ["positive", "recommend", "slow"]
    by_id = {r.id: r for r in records}
    # labels: every other label of the final set is 0, including later ones
    assert by_id["r-1"].cats == {"positive": 1.0, "recommend": 1.0, "slow": 0.0}
    # cats: unlisted labels are unknown
    assert by_id["r-2"].cats == {"positive": 0.0, "slow": 1.0}
    assert by_id["r-3"].cats == {"positive": 0.0, "recommend": 0.0, "slow": 0.0}
    assert by_id["r-4"].cats == {}
    assert by_id["r-4"].lang == "xx" and report.default_lang == 1
    assert (report.read, report.converted, report.skipped, report.blank) == (4, 4, 0, 0)
    assert report.counts_add_up


def test_jsonl_defaults_ids_meta_and_lang_option():
    with make_tempdir() as d:
        path = write(
            d,
            "reviews.jsonl",
            jsonl(
                {"text": "One.", "labels": ["a"], "source": "web", "score": [1, 2.5, None]},
                {"id": 7, "text": "Two.", "labels": ["a"], "lang": None},
            ),
        )
        records, report = read_records(path, lang="de")
    assert [r.id for r in records] == ["reviews:1", "7"]
    assert [r.lang for r in records] == ["de", "de"]
    assert records[0].meta == {"source": "web", "score": [1, 2.5, None]}
    assert records[0].line == 1 and records[0].source == str(path)
    assert report.default_lang == 0


def test_jsonl_nfc_bom_crlf_and_line_separators_kept():
    decomposed = "Cafe\u0301 \u2028 next\u0085 ok\r still"
    content = "\ufeff" + jsonl({"text": decomposed, "labels": []}, {"text": "x", "labels": []}).replace("\n", "\r\n")
    with make_tempdir() as d:
        path = write(d, "bom.jsonl", content)
        records, report = read_records(path)
    assert len(records) == 2 and report.read == 2
    # NFC only: the accent composes, the line separators and \r stay
    assert records[0].text == "Caf\u00e9 \u2028 next\u0085 ok\r still"
    assert records[0].line == 1 and records[1].line == 2


def test_jsonl_blank_lines_are_counted():
    with make_tempdir() as d:
        path = write(d, "blank.jsonl", "\n" + jsonl(GOOD) + "   \n\t\n")
        records, report = read_records(path)
    assert len(records) == 1 and records[0].line == 2
    assert (report.read, report.blank, report.converted) == (4, 3, 1)
    assert report.counts_add_up


def test_jsonl_require_labels_false_for_annotation():
    with make_tempdir() as d:
        path = write(d, "raw.jsonl", jsonl({"text": "Just text."}, {"text": "More.", "labels": ["a"]}))
        records = list(iter_jsonl_records(path, require_labels=False))
        err = read_error(path)
    assert records[0].cats == {} and records[1].cats == {"a": 1.0}
    assert_error(err, "E030", path, 1, "'labels'", "'cats'")


def test_jsonl_stream_adds_counts_to_a_report():
    report = ConversionReport()
    with make_tempdir() as d:
        path = write(d, "d.jsonl", jsonl(GOOD) + "\n{bad\n")
        records = list(iter_jsonl_records(path, skip_invalid=True, report=report))
    assert len(records) == 1
    assert (report.read, report.blank, report.converted, report.skipped) == (3, 1, 1, 1)


def test_jsonl_label_set_and_add_labels():
    with make_tempdir() as d:
        path = write(d, "d.jsonl", jsonl({"text": "x", "labels": ["a"]}, {"text": "y", "cats": {"b": 1}}))
        err = read_error(path, label_set=["a"])
        records, report = read_records(path, label_set=["a", "c"], add_labels=True)
    assert_error(err, "E031", path, 2, "'b'", "--add-labels")
    assert report.labels == ["a", "c", "b"] and report.added_labels == ["b"]
    assert records[0].cats == {"a": 1.0, "c": 0.0, "b": 0.0}
    assert records[1].cats == {"b": 1.0}


def test_jsonl_stream_finalizes_with_fixed_label_set():
    with make_tempdir() as d:
        path = write(d, "d.jsonl", jsonl({"text": "x", "labels": ["b"]}))
        (record,) = iter_jsonl_records(path, label_set=["a", "b"])
        (open_record,) = iter_jsonl_records(path)
    assert record.cats == {"a": 0.0, "b": 1.0}
    assert open_record.complete and open_record.known_cats(["a", "b"]) == {"a": 0.0, "b": 1.0}


# --- JSONL: every kind of bad input names file and line --------------------


BAD_LINES = [
    ('{"text": "x", "labels": [}', "E020", ["invalid JSON"]),
    ('[1, 2]', "E022", ["JSON list"]),
    ('"just a string"', "E022", ["JSON string"]),
    ("null", "E022", ["JSON null"]),
    ('{"labels": ["pos"]}', "E023", ["'text'", "missing"]),
    ('{"text": null, "labels": ["pos"]}', "E023", ["'text'", "null"]),
    ('{"text": "", "labels": ["pos"]}', "E025", ["'text'", "empty"]),
    ('{"text": " \\t\\n ", "labels": ["pos"]}', "E025", ["'text'", "whitespace"]),
    ('{"text": "\\ud800", "labels": ["pos"]}', "E025", ["surrogate"]),
    ('{"text": 42, "labels": ["pos"]}', "E024", ["'text'", "a number"]),
    ('{"text": ["a"], "labels": ["pos"]}', "E024", ["'text'", "a list"]),
    ('{"text": "x", "labels": "pos"}', "E026", ["'labels'", "a string"]),
    ('{"text": "x", "labels": [1]}', "E026", ["'labels'", "not a string"]),
    ('{"text": "x", "labels": [""]}', "E026", ["'labels'", "empty"]),
    ('{"text": "x", "labels": [" pos"]}', "E026", ["whitespace"]),
    ('{"text": "x", "cats": ["pos"]}', "E027", ["'cats'", "a list"]),
    ('{"text": "x", "cats": {"pos": 2}}', "E028", ["'cats'", "'pos'", "2"]),
    ('{"text": "x", "cats": {"pos": 0.5}}', "E028", ["0.5"]),
    ('{"text": "x", "cats": {"pos": true}}', "E028", ["true"]),
    ('{"text": "x", "cats": {"pos": NaN}}', "E028", ["NaN"]),
    ('{"text": "x", "cats": {"pos": "1"}}', "E028", ['"1"']),
    ('{"text": "x", "cats": {"pos": null}}', "E028", ["null"]),
    ('{"text": "x", "cats": {"": 1}}', "E049", ["'cats'", "empty"]),
    ('{"text": "x", "labels": ["pos"], "cats": {"pos": 1}}', "E029", ["both"]),
    ('{"text": "x"}', "E030", ["neither"]),
    ('{"text": "x", "text": "y", "labels": []}', "E037", ["'text'", "twice"]),
    ('{"text": "x", "cats": {"pos": 1, "pos": 0}}', "E037", ["field 'cats'", "'pos'"]),
    ('{"text": "x", "labels": [], "id": ""}', "E049", ["'id'", "empty"]),
    ('{"text": "x", "labels": [], "id": 1.5}', "E049", ["'id'"]),
    ('{"text": "x", "labels": [], "lang": "e n"}', "E049", ["'lang'", "language code"]),
    ('{"text": "x", "labels": [], "lang": 3}', "E049", ["'lang'"]),
    ("[" * 100000, "E020", ["nested too deeply"]),
]


@pytest.mark.parametrize("line,code,words", BAD_LINES)
def test_jsonl_bad_line_names_file_line_and_field(line, code, words):
    content = jsonl(GOOD) + line + "\n" + jsonl({"text": "after", "labels": []})
    with make_tempdir() as d:
        path = write(d, "bad.jsonl", content)
        err = read_error(path)
        records, report = read_records(path, skip_invalid=True)
    assert_error(err, code, path, 2, *words)
    # with skip_invalid the line is skipped, counted and reported
    assert [r.text for r in records] == ["Good.", "after"]
    assert (report.read, report.converted, report.skipped) == (3, 2, 1)
    assert report.counts_add_up
    (issue,) = report.issues
    assert (issue.line, issue.code) == (2, code) and "bad.jsonl" in issue.message


def test_jsonl_invalid_utf8_names_the_line():
    latin1 = b'{"text": "caf\xe9", "labels": []}\n'
    content = jsonl(GOOD).encode() + latin1 + jsonl({"text": "z", "labels": []}).encode()
    with make_tempdir() as d:
        path = write(d, "latin1.jsonl", content)
        err = read_error(path)
        records, report = read_records(path, skip_invalid=True)
    assert_error(err, "E032", path, 2, "UTF-8", "e9")
    assert len(records) == 2 and report.skipped == 1 and report.counts_add_up


def test_jsonl_truncated_last_line():
    content = jsonl(GOOD) + '{"text": "cut off", "lab'
    with make_tempdir() as d:
        path = write(d, "cut.jsonl", content)
        err = read_error(path)
    assert_error(err, "E021", path, 2, "truncated")
    # the same bad JSON followed by a newline is an ordinary invalid line
    with make_tempdir() as d:
        path = write(d, "cut.jsonl", content + "\n")
        assert read_error(path).code == "E020"


def test_jsonl_valid_last_line_without_newline():
    with make_tempdir() as d:
        path = write(d, "nonl.jsonl", jsonl(GOOD) + json.dumps({"text": "end", "labels": []}))
        records, report = read_records(path)
    assert [r.text for r in records] == ["Good.", "end"] and report.read == 2


@pytest.mark.parametrize(
    "content,detail", [(b"", "0 bytes"), (b"\n  \n", "blank"), (b"\xef\xbb\xbf", "byte order mark")]
)
def test_empty_file(content, detail):
    with make_tempdir() as d:
        path = write(d, "empty.jsonl", content)
        err = read_error(path)
        records, report = read_records(path, skip_invalid=True)
    assert_error(err, "E033", path, None, detail)
    assert records == [] and report.issues[0].code == "E033" and report.counts_add_up


def test_duplicate_ids_across_files():
    with make_tempdir() as d:
        first = write(d, "a.jsonl", jsonl({"id": "x1", "text": "a", "labels": []}))
        second = write(
            d, "b.jsonl", jsonl({"id": "z", "text": "b", "labels": []}, {"id": "x1", "text": "c", "labels": []})
        )
        err = read_error([first, second])
        records, report = read_records([first, second], skip_invalid=True)
    assert_error(err, "E034", second, 2, "'x1'", "a.jsonl, line 1")
    assert [r.text for r in records] == ["a", "b"] and report.skipped == 1 and report.counts_add_up


def test_missing_input_and_unknown_suffix():
    with make_tempdir() as d:
        assert read_error(d / "nope.jsonl").code == "E046"
        path = write(d, "data.txt", "x")
        err = read_error(path)
        assert err.code == "E045" and "--format" in str(err)
        assert read_error(path, fmt="xml").code == "E045"
        # with --format the suffix does not matter
        path = write(d, "data.txt", jsonl(GOOD))
        assert len(read_records(path, fmt="jsonl")[0]) == 1


def test_skip_mode_counts_add_up_with_mixed_problems():
    lines = [
        json.dumps(GOOD),
        "",
        "not json",
        json.dumps({"text": "", "labels": []}),
        json.dumps({"id": "a", "text": "dup id", "labels": []}),
        json.dumps({"text": "ok", "cats": {"pos": 1}}),
        "   ",
        json.dumps({"text": "bad", "cats": {"pos": 3}}),
    ]
    with make_tempdir() as d:
        path = write(d, "mixed.jsonl", "\n".join(lines) + "\n")
        records, report = read_records(path, skip_invalid=True)
    assert (report.read, report.blank, report.converted, report.skipped) == (8, 2, 2, 4)
    assert [(i.line, i.code) for i in report.issues] == [(3, "E020"), (4, "E025"), (5, "E034"), (8, "E028")]
    assert report.counts_add_up and report.to_dict()["counts_add_up"]


def test_skipped_record_does_not_add_labels():
    with make_tempdir() as d:
        path = write(d, "d.jsonl", jsonl({"text": "", "labels": ["ghost"]}, {"text": "x", "labels": ["real"]}))
        _, report = read_records(path, skip_invalid=True)
    assert report.labels == ["real"]


# --- aliases ----------------------------------------------------------------


def test_aliases_map_per_language_and_star():
    aliases = {"es": {"positivo": "positive"}, "*": {"pos": "positive", "neg": "negative"}}
    with make_tempdir() as d:
        path = write(
            d,
            "a.jsonl",
            jsonl(
                {"lang": "es", "text": "Bueno", "labels": ["positivo"]},
                {"lang": "en", "text": "Good", "cats": {"pos": 1, "neg": 0}},
                {"lang": "en", "text": "Positivo?", "labels": ["positivo"]},
            ),
        )
        alias_path = write(d, "aliases.json", json.dumps(aliases))
        records, report = read_records(path, aliases=alias_path)
    assert records[0].cats["positive"] == 1.0
    assert records[1].cats == {"positive": 1.0, "negative": 0.0}
    # the Spanish alias does not apply to English texts
    assert records[2].cats["positivo"] == 1.0
    assert report.labels == ["positive", "negative", "positivo"]


def test_aliases_merge_in_cats_must_agree():
    with make_tempdir() as d:
        path = write(d, "a.jsonl", jsonl({"lang": "es", "text": "x", "cats": {"positivo": 1, "positive": 0}}))
        err = read_error(path, aliases={"es": {"positivo": "positive"}})
        path2 = write(d, "b.jsonl", jsonl({"lang": "es", "text": "x", "cats": {"positivo": 1, "positive": 1}}))
        records, _ = read_records(path2, aliases={"es": {"positivo": "positive"}})
    assert_error(err, "E037", path, 1, "'positive'", "positivo")
    assert records[0].cats == {"positive": 1.0}


@pytest.mark.parametrize(
    "content,code,words",
    [
        ('{"es": {"positivo": "positive", "positivo": "negative"}}', "E038", ["'positivo'", "'es'"]),
        ('{"*": {"pos": "positive"}, "es": {"pos": "negative"}}', "E038", ["'pos'"]),
        ('{"es": {"positivo": "positive"}, "en": {"positive": "good"}}', "E039", ["'positive'", "canonical"]),
        ('{"es": ["positivo"]}', "E040", ["'es'"]),
        ('{"es": {"positivo": 1}}', "E040", ["label name"]),
        ('["es"]', "E040", ["top level"]),
        ("{not json", "E040", ["invalid JSON"]),
        ('{"es": {}, "es": {"a": "b"}}', "E040", ["'es'", "twice"]),
    ],
)
def test_bad_alias_files(content, code, words):
    with make_tempdir() as d:
        path = write(d, "aliases.json", content)
        with pytest.raises(DataError) as info:
            load_aliases(path)
    assert_error(info.value, code, path, None, *words)


def test_alias_of_a_given_label_is_an_error():
    aliases = LabelAliases({"*": {"joy": "happiness"}})
    with make_tempdir() as d:
        path = write(d, "d.jsonl", jsonl(GOOD))
        err = read_error(path, aliases=aliases, label_set=["joy", "happiness", "pos"])
    assert err.code == "E039" and "'joy'" in str(err)


def test_yaml_alias_file_and_duplicate_keys():
    pytest.importorskip("yaml")
    with make_tempdir() as d:
        good = write(d, "a.yml", "es:\n  positivo: positive\n'*':\n  pos: positive\n")
        assert load_aliases(good).resolve("positivo", "es") == "positive"
        bad = write(d, "b.yaml", "es:\n  positivo: positive\n  positivo: negative\n")
        with pytest.raises(DataError) as info:
            load_aliases(bad)
    assert info.value.code == "E038"


# --- label lists and label set checks --------------------------------------


def test_label_lists():
    assert load_label_list("a, b,c") == ["a", "b", "c"]
    with make_tempdir() as d:
        assert load_label_list(write(d, "labels.json", '["x", "y"]')) == ["x", "y"]
        assert load_label_list(write(d, "labels.txt", "x\n\ny\n")) == ["x", "y"]
        for bad, words in [("a,,b", "empty"), ("a,a", "twice"), (str(d / "missing.txt"), "does not exist")]:
            with pytest.raises(DataError) as info:
                load_label_list(bad)
            assert info.value.code == "E043" and words in str(info.value)


def test_check_label_sets_match():
    check_label_sets_match(["a", "b"], ["b", "a"])
    with pytest.raises(DataError) as info:
        check_label_sets_match(["a", "b"], ["a", "c"], names=("train", "dev"))
    text = str(info.value)
    assert info.value.code == "E044" and "train has 'b'" in text and "dev has 'c'" in text


# --- SemEval CSV --------------------------------------------------------------

ENG_CSV = (
    "id,text,anger,fear,joy,sadness,surprise\n"
    "eng_1,\"Colorado, middle of nowhere.\",0,1,0,0,1\n"
    "eng_2,\"She said \"\"hi\"\"\nand left.\",1,0,0,,0\n"
    "eng_3,Plain text.,0,0,1,0,0\n"
)
ESP_CSV = "id,text,anger,disgust,fear,joy,sadness,surprise\r\nesp_1,Qué asco.,0,1,0,0,0,0\r\n"


def test_semeval_csv_language_unknown_labels_and_quoting():
    with make_tempdir() as d:
        eng = write(d, "eng.csv", ENG_CSV)
        esp = write(d, "esp.csv", ESP_CSV)
        records, report = read_records([eng, esp])
    assert report.labels == ["anger", "fear", "joy", "sadness", "surprise", "disgust"]
    assert [r.lang for r in records] == ["eng", "eng", "eng", "esp"]
    assert records[0].text == "Colorado, middle of nowhere."
    assert records[0].cats == {"anger": 0.0, "fear": 1.0, "joy": 0.0, "sadness": 0.0, "surprise": 1.0}
    # eng has no disgust column: unknown; an empty cell: unknown
    assert "disgust" not in records[0].cats
    assert records[1].text == 'She said "hi"\nand left.' and "sadness" not in records[1].cats
    assert (records[1].line, records[2].line) == (3, 5)
    assert records[3].cats["disgust"] == 1.0 and records[3].id == "esp_1"
    assert (report.read, report.converted) == (4, 4) and report.counts_add_up


@pytest.mark.parametrize(
    "row,code,words",
    [
        ("eng_9,Too few,0,1\n", "E035", ["4 column(s)", "missing"]),
        ("eng_9,Too,many,0,1,0,0,1\n", "E035", ["8 column(s)", "extra"]),
        ("eng_9,Bad value,0,2,0,0,1\n", "E028", ["column 'fear'", "2"]),
        ("eng_9,Bad value,0,yes,0,0,1\n", "E028", ['"yes"']),
        ("eng_9,,0,0,0,0,1\n", "E025", ["empty"]),
        ('eng_9,"bad "quote,0,0,0,0,1\n', "E035", ["malformed"]),
    ],
)
def test_semeval_bad_rows(row, code, words):
    header, first = ENG_CSV.split("\n")[:2]
    content = f"{header}\n{first}\n{row}eng_10,Fine.,0,0,0,0,0\n"
    with make_tempdir() as d:
        path = write(d, "eng.csv", content)
        err = read_error(path)
        records, report = read_records(path, skip_invalid=True)
    assert_error(err, code, path, 3, *words)
    assert [r.id for r in records] == ["eng_1", "eng_10"]
    assert report.skipped == 1 and report.counts_add_up


@pytest.mark.parametrize(
    "content,code,words",
    [
        ("id,anger\n1,0\n", "E036", ["'text'"]),
        ("id,text,anger,anger\n1,x,0,0\n", "E036", ["twice"]),
        ("id,text\n1,x\n", "E036", ["no label columns"]),
        ("id,text,anger\n", "E033", ["header and no rows"]),
        ("", "E033", ["0 bytes"]),
    ],
)
def test_semeval_file_problems(content, code, words):
    with make_tempdir() as d:
        path = write(d, "eng.csv", content)
        err = read_error(path)
    assert_error(err, code, path, None, *words)


def test_semeval_truncated_quote_and_bad_utf8():
    with make_tempdir() as d:
        path = write(d, "eng.csv", 'id,text,anger\n1,ok,0\n2,"never closed,0\n')
        err = read_error(path)
        assert_error(err, "E035", path, 3, "truncated")
        path = write(d, "eng.csv", b"id,text,anger\n1,ok,0\n2,caf\xe9,0\n3,fine,1\n")
        err = read_error(path)
        records, report = read_records(path, skip_invalid=True)
    assert_error(err, "E032", path, 3)
    assert [r.id for r in records] == ["1", "3"] and report.counts_add_up


def test_directory_input_reads_its_data_files_sorted():
    with make_tempdir() as d:
        write(d, "esp.csv", ESP_CSV)
        write(d, "eng.csv", ENG_CSV)
        write(d, "README.md", "not data")
        records, report = read_records(d)
        empty = d / "empty"
        empty.mkdir()
        err = read_error(empty)
    assert [Path(f).name for f in report.files] == ["eng.csv", "esp.csv"]
    assert len(records) == 4
    assert err.code == "E046" and "directory" in str(err)


def test_semeval_label_column_outside_label_set_and_lang_fallback():
    with make_tempdir() as d:
        path = write(d, "eng.csv", ENG_CSV)
        err = read_error(path, label_set=["anger", "fear", "joy", "sadness"], skip_invalid=True)
        assert_error(err, "E031", path, 1, "'surprise'")
        # a file name that is not a language code: the lang option, else xx
        path = write(d, "my data.csv", ENG_CSV)
        records, report = read_records(path)
        assert records[0].lang == "xx" and report.default_lang == 3
        assert read_records(path, lang="en")[0][0].lang == "en"


# --- GoEmotions -------------------------------------------------------------

GO_LABELS = "admiration\namusement\nanger\nneutral\n"
GO_TSV = "Nice work!\t0\tid1\nHa, so \"funny\".\t1,0\tid2\nWhatever.\t3\tid3\n"


def test_goemotions():
    with make_tempdir() as d:
        labels = write(d, "labels.txt", GO_LABELS)
        path = write(d, "train.tsv", GO_TSV)
        records, report = read_records(path, goemotions_labels=labels)
        err = read_error(path)
    assert report.labels == ["admiration", "amusement", "anger", "neutral"]
    assert records[1].text == 'Ha, so "funny".' and records[1].id == "id2" and records[1].lang == "en"
    assert records[1].cats == {"admiration": 1.0, "amusement": 1.0, "anger": 0.0, "neutral": 0.0}
    assert err.code == "E042" and "--goemotions-labels" in str(err)


def test_goemotions_aliases_merge_labels():
    aliases = {"*": {"admiration": "joy", "amusement": "joy", "neutral": "none"}}
    with make_tempdir() as d:
        labels = write(d, "labels.txt", GO_LABELS)
        path = write(d, "train.tsv", GO_TSV)
        records, report = read_records(path, goemotions_labels=labels, aliases=aliases)
    assert report.labels == ["joy", "anger", "none"]
    assert [r.cats["joy"] for r in records] == [1.0, 1.0, 0.0]


@pytest.mark.parametrize(
    "row,code,words",
    [
        ("Too many\t0\tid9\textra\n", "E035", ["4 tab-separated"]),
        ("No id col\t0\n", "E035", ["2 tab-separated"]),
        ("Out of range\t4\tid9\n", "E041", ["4", "out of range"]),
        ("Not a number\tx\tid9\n", "E041", ['"x"']),
        ("No ids\t\tid9\n", "E041", ["no label id"]),
        ("\t0\tid9\n", "E025", ["empty"]),
    ],
)
def test_goemotions_bad_rows(row, code, words):
    with make_tempdir() as d:
        labels = write(d, "labels.txt", GO_LABELS)
        path = write(d, "dev.tsv", GO_TSV + row)
        err = read_error(path, goemotions_labels=labels)
        records, report = read_records(path, goemotions_labels=labels, skip_invalid=True)
    assert_error(err, code, path, 4, *words)
    assert len(records) == 3 and report.skipped == 1 and report.counts_add_up


def test_goemotions_bad_labels_file():
    with make_tempdir() as d:
        path = write(d, "train.tsv", GO_TSV)
        for content, words in [("a\n\nb\n", "shift"), ("a\nb\na\n", "twice"), ("", "no label")]:
            labels = write(d, "labels.txt", content)
            err = read_error(path, goemotions_labels=labels)
            assert err.code == "E043" and words in str(err)


# --- splitting --------------------------------------------------------------


def make_records(n: int) -> List[Record]:
    records = []
    for i in range(n):
        lang = ["en", "es", "de"][i % 3]
        cats = {"a": float(i % 2 == 0), "b": float(i % 7 == 0), "c": float(i % 13 == 0)}
        if lang == "de":
            del cats["c"]  # unknown for German
        records.append(Record(id=f"r{i}", lang=lang, text=f"text {i}", cats=cats))
    return records


def test_split_is_stratified_disjoint_and_deterministic():
    records = make_records(600)
    # duplicates: the same text twice, once with other labels
    records.append(Record(id="dup1", lang="en", text="text 3", cats={"a": 1.0, "b": 0.0, "c": 0.0}))
    records.append(Record(id="dup2", lang="es", text="text 4", cats=dict(records[4].cats)))
    splits, removed = split_records(records, "0.8,0.1,0.1", seed=0, labels=["a", "b", "c"])
    assert [d.removed_id for d in removed] == ["dup1", "dup2"]
    assert [d.same_labels for d in removed] == [False, True]
    sizes = {name: len(part) for name, part in splits.items()}
    assert sum(sizes.values()) == 600
    assert abs(sizes["train"] - 480) <= 2 and abs(sizes["dev"] - 60) <= 2
    texts = [set(r.text for r in part) for part in splits.values()]
    assert not (texts[0] & texts[1]) and not (texts[0] & texts[2]) and not (texts[1] & texts[2])
    for name, share in [("train", 0.8), ("dev", 0.1), ("test", 0.1)]:
        part = splits[name]
        for label in ("a", "b", "c"):
            total = sum(r.cats.get(label) == 1.0 for r in records[:600])
            positives = sum(r.cats.get(label) == 1.0 for r in part)
            assert abs(positives - share * total) <= 2, (name, label, positives)
        for lang in ("en", "es", "de"):
            assert abs(sum(r.lang == lang for r in part) - share * 200) <= 2
        # input order is kept inside a split
        assert [int(r.id[1:]) for r in part] == sorted(int(r.id[1:]) for r in part)
    again, _ = split_records(records, (0.8, 0.1, 0.1), seed=0, labels=["a", "b", "c"])
    other, _ = split_records(records, (0.8, 0.1, 0.1), seed=1, labels=["a", "b", "c"])
    ids = lambda s: {k: [r.id for r in v] for k, v in s.items()}  # noqa: E731
    assert ids(again) == ids(splits)
    assert ids(other) != ids(splits)


def test_split_two_way():
    splits, _ = split_records(make_records(50), "0.9,0.1", seed=3)
    assert set(splits) == {"train", "dev"} and len(splits["train"]) + len(splits["dev"]) == 50


@pytest.mark.parametrize("value", ["0.8,0.1", "0.5,0.5,0.5", "1", "0.8,0.2,0", "a,b", "0.5,nan,0.5", "0.6,0.1,0.1,0.2"])
def test_bad_split_ratios(value):
    with pytest.raises(DataError) as info:
        parse_ratios(value)
    assert info.value.code == "E047" and value in str(info.value)


# --- DocBin -------------------------------------------------------------------


def test_docbin_round_trip_restores_cats_lang_id_and_meta(nlp):
    with make_tempdir() as d:
        path = write(
            d,
            "d.jsonl",
            jsonl(
                {
                    "id": "r-1",
                    "lang": "es",
                    "text": "Es muy bueno  y lo recomiendo.\n",
                    "labels": ["pos"],
                    "x": [1, {"y": None}],
                },
                {"id": "r-2", "text": "Sin etiquetas conocidas", "cats": {"slow": 0}},
            ),
        )
        records, report = read_records(path)
        records_to_docbin(records, nlp, labels=report.labels).to_disk(d / "out.spacy")
        docs = list(DocBin().from_disk(d / "out.spacy").get_docs(nlp.vocab))
        assert docbin_labels(d / "out.spacy") == ["pos", "slow"]
    assert [doc.text for doc in docs] == [r.text for r in records]
    assert docs[0].cats == {"pos": 1.0, "slow": 0.0}
    assert docs[1].cats == {"slow": 0.0}  # pos is unknown: left out
    assert [doc._.mlbert_lang for doc in docs] == ["es", "xx"]
    assert [doc._.mlbert_id for doc in docs] == ["r-1", "r-2"]
    back = doc_to_record(docs[0])
    assert back.meta == {"x": [1, {"y": None}]} and back.source == "d.jsonl" and back.line == 1
    first = records[0]
    assert (back.id, back.lang, back.text, back.cats) == (first.id, first.lang, first.text, first.cats)


def test_records_to_docbin_default_tokenizer():
    docbin = records_to_docbin([Record(id="1", lang="ja", text="これはテストです。", cats={"a": 1.0})])
    (doc,) = docbin.get_docs(spacy.blank("xx").vocab)
    assert doc.text == "これはテストです。" and doc.cats == {"a": 1.0}


# --- statistics ---------------------------------------------------------------


def test_label_stats_tables():
    records = [
        Record(id="1", lang="en", text="a", cats={"x": 1.0, "y": 1.0}),
        Record(id="2", lang="en", text="b", cats={"x": 0.0}),
        Record(id="3", lang="es", text="c", cats={"x": 1.0, "y": 0.0}),
    ]
    stats = label_stats(records, ["x", "y"])
    data = stats.to_dict()
    assert data["languages"]["en"] == {
        "texts": 2,
        "cardinality": 1.0,
        "labels": {"x": {"positives": 1, "known": 2}, "y": {"positives": 1, "known": 1}},
    }
    assert data["total"]["texts"] == 3 and data["total"]["labels"]["y"] == {"positives": 1, "known": 2}
    with make_tempdir() as d:
        json_path, md_path = save_label_stats(stats, d / "stats", "train")
        assert srsly.read_json(json_path) == data
        markdown = md_path.read_text(encoding="utf-8")
    assert "| en | 2 | 1.00 | 1/2 | 1/1 |" in markdown and "| (all) | 3 |" in markdown


# --- CLI ----------------------------------------------------------------------

runner = CliRunner()


def run_cli(args: Iterable[str]):
    result = runner.invoke(app, ["convert", *map(str, args)])
    return result, " ".join(result.output.split())  # wasabi wraps long lines


def test_cli_converts_without_split(nlp):
    with make_tempdir() as d:
        first = write(d, "a.jsonl", jsonl(GOOD, {"id": "b", "text": "Two", "labels": ["neg"]}))
        eng = write(d, "eng.csv", ENG_CSV)
        result, out = run_cli([first, eng, d / "corpus", "--name", "all", "--quiet"])
        assert result.exit_code == 0, out
        docs = list(DocBin().from_disk(d / "corpus" / "all.spacy").get_docs(nlp.vocab))
        assert len(docs) == 5 and docs[2]._.mlbert_lang == "eng"
        assert srsly.read_json(d / "corpus" / "labels.json")[:2] == ["pos", "neg"]
        assert (d / "corpus" / "all.stats.json").exists() and (d / "corpus" / "all.stats.md").exists()
        assert srsly.read_json(d / "corpus" / "convert-report.json")["counts_add_up"]


def test_cli_split_writes_three_files(nlp):
    lines = [{"text": f"text {i}", "lang": ["en", "es"][i % 2], "labels": ["a"] if i % 3 else []} for i in range(40)]
    lines.append({"text": "text 5", "labels": ["a"]})  # a duplicate text
    with make_tempdir() as d:
        path = write(d, "data.jsonl", jsonl(*lines))
        result, out = run_cli([path, d / "out", "--split", "0.8,0.1,0.1", "--seed", "1", "--stats-dir", d / "stats"])
        assert result.exit_code == 0, out
        counts = {n: len(DocBin().from_disk(d / "out" / f"{n}.spacy")) for n in ("train", "dev", "test")}
        assert sum(counts.values()) == 40 and counts["dev"] == 4
        assert "Removed 1 duplicate text(s)" in out and "positives/known per language" in out
        assert (d / "stats" / "test.stats.md").exists()
        report = srsly.read_json(d / "stats" / "convert-report.json")
        assert report["duplicates_removed"] == 1 and report["converted"] == 40 and report["counts_add_up"]


def test_cli_data_error_exits_1_without_traceback():
    with make_tempdir() as d:
        path = write(d, "bad.jsonl", jsonl(GOOD) + "{oops\n")
        result, out = run_cli([path, d / "out"])
    assert result.exit_code == 1
    assert "[E020]" in out and "bad.jsonl, line 2" in out and "--skip-invalid" in out
    assert "Traceback" not in out and not isinstance(result.exception, DataError)


def test_cli_skip_invalid_reports_lines():
    with make_tempdir() as d:
        path = write(d, "bad.jsonl", jsonl(GOOD) + "{oops\n" + jsonl({"text": "x", "cats": {"pos": 5}}))
        result, out = run_cli([path, d / "out", "--skip-invalid"])
        assert result.exit_code == 0, out
        assert "Skipped 2 invalid record(s)" in out and "line 2" in out and "line 3" in out
        assert "3 line(s) from 1 file(s): 1 converted, 2 skipped, 0 blank" in out


@pytest.mark.parametrize(
    "extra,code",
    [(["--split", "0.9,0.2"], "E047"), (["--format", "xml"], "E045"), (["--labels", "a,a"], "E043")],
)
def test_cli_option_errors(extra, code):
    with make_tempdir() as d:
        path = write(d, "ok.jsonl", jsonl(GOOD))
        result, out = run_cli([path, d / "out", *extra])
    assert result.exit_code == 1 and f"[{code}]" in out and "Traceback" not in out


def test_cli_nothing_converted_and_missing_input():
    with make_tempdir() as d:
        path = write(d, "all_bad.jsonl", "{oops\n[]\n")
        result, out = run_cli([path, d / "out", "--skip-invalid"])
        assert result.exit_code == 1 and "[E048]" in out and not (d / "out" / "train.spacy").exists()
        result, out = run_cli([d / "missing.jsonl", d / "out"])
        assert result.exit_code == 1 and "[E046]" in out
