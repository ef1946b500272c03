import json
import os
import sys
import threading

import pytest
import yaml

from experiment.errors import ConfigError, DataError
from experiment.textfile import MAX_DEPTH, MAX_YAML_NODES, dotted, read_json, read_yaml_mapping


def _yaml(tmp_path, content, name="f.yaml"):
    path = tmp_path / name
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    return path


def test_read_yaml_mapping_reads_what_safe_load_reads(tmp_path):
    text = "a: 1\nb: [x, {c: 2026-01-05}]\nd: &d {e: 1}\nf: *d\n"
    assert read_yaml_mapping(_yaml(tmp_path, text), what="test") == yaml.safe_load(text)


def test_read_yaml_mapping_accepts_a_byte_order_mark(tmp_path):
    assert read_yaml_mapping(_yaml(tmp_path, b"\xef\xbb\xbfa: 1\n"), what="t") == {"a": 1}


def test_read_yaml_mapping_names_the_byte_offset_of_bad_utf8(tmp_path):
    path = _yaml(tmp_path, "name: caf\xe9\n".encode("latin-1"))
    with pytest.raises(
        ConfigError, match=r"f\.yaml: the test file is not UTF-8 \(byte 0xe9 at offset 9\)"
    ):
        read_yaml_mapping(path, what="test")


@pytest.mark.parametrize(
    ("setup", "phrase"),
    [
        (lambda p: None, "test file not found"),
        (lambda p: p.mkdir(), "is a folder"),
        (lambda p: p.write_bytes(b"a: 1\n" + b"#" * 2_100_000), "larger than 2 MiB"),
        (lambda p: p.write_text(""), "is empty"),
        (lambda p: p.write_text("- 1\n"), "must be a YAML mapping of fields, not a list"),
        (lambda p: p.write_text("a: 1\na: 2\n"), "line 2, column 1: key 'a' is given twice"),
        (lambda p: p.write_text("a: {b: [1, .nan]}\n"), r"field 'a\.b\[1\]': not a finite number"),
        (lambda p: p.write_text("a: -.inf\n"), "field 'a': not a finite number"),
        (lambda p: p.write_text("a: &x [*x]\n"), r"alias \*x refers to itself"),
        (lambda p: p.write_text("a: !!python/name:os.system\n"), "not valid YAML"),
        (lambda p: p.write_bytes("a: 1\n".encode("utf-16")), "UTF-16"),
        (lambda p: p.symlink_to("/dev/zero"), "not a regular file"),
        (lambda p: (p.symlink_to(p.with_name("g")), p.with_name("g").symlink_to(p)), "symbolic"),
        (lambda p: p.write_bytes(b"a: 1\n\x00\n"), r"unacceptable character U\+0000"),
        (lambda p: p.write_text("a: !!binary aGk=\n"), "4: the tag !!binary is not accepted"),
        (lambda p: p.write_text("a: [!!set {x, y}]\n"), "the tag !!set is not accepted"),
        (lambda p: p.write_text("a: !!pairs [{x: 1}]\n"), "the tag !!pairs is not accepted"),
    ],
)
def test_read_yaml_mapping_one_line_errors(tmp_path, setup, phrase):
    path = tmp_path / "f.yaml"
    setup(path)
    with pytest.raises(ConfigError, match=phrase) as info:
        read_yaml_mapping(path, what="test")
    assert "\n" not in str(info.value)
    assert str(info.value).startswith(str(path))


@pytest.mark.parametrize("depth", [MAX_DEPTH + 1, 20_000])
def test_read_yaml_mapping_refuses_deep_nesting_without_recursion(tmp_path, depth):
    path = _yaml(tmp_path, "a: " + "[" * depth + "]" * depth)
    limit = sys.getrecursionlimit()
    with pytest.raises(ConfigError, match=f"nested more than {MAX_DEPTH} levels"):
        read_yaml_mapping(path, what="t")
    assert sys.getrecursionlimit() == limit


def test_read_yaml_mapping_accepts_the_depth_cap(tmp_path):
    depth = MAX_DEPTH - 1  # plus the top-level mapping
    data = read_yaml_mapping(_yaml(tmp_path, "a: " + "[" * depth + "]" * depth), what="t")
    assert "a" in data


def test_read_yaml_mapping_refuses_billion_laughs(tmp_path):
    lines = ["a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    for prev, name in zip("abcdefgh", "bcdefghi", strict=True):
        lines.append(f"{name}: &{name} [{', '.join([f'*{prev}'] * 10)}]")
    path = _yaml(tmp_path, "\n".join(lines) + "\n")
    with pytest.raises(ConfigError, match=f"more than {MAX_YAML_NODES:,} values"):
        read_yaml_mapping(path, what="t")


def test_read_json_refuses_100000_levels(tmp_path):
    path = tmp_path / "r.json"
    path.write_text('{"a": ' * 100_000 + "1" + "}" * 100_000)
    with pytest.raises(DataError, match="nested 100000 levels deep"):
        read_json(path, what="results", error=DataError)


def test_read_json_brackets_inside_strings_do_not_count(tmp_path):
    path = tmp_path / "r.json"
    doc = {"a": "[[[[" * 100 + '\\"{', "b": [[1]]}
    path.write_text(json.dumps(doc))
    assert read_json(path, what="results", error=DataError) == doc


@pytest.mark.parametrize(
    ("text", "phrase"),
    [
        ('{"a": NaN}', "NaN is not JSON"),
        ('{"a": -Infinity}', "-Infinity is not JSON"),
        ('{"a": 1, "a": 2}', "key 'a' is given twice"),
        ('{"a": ', "not valid JSON at line 1"),
    ],
)
def test_read_json_is_strict(tmp_path, text, phrase):
    path = tmp_path / "r.json"
    path.write_text(text)
    with pytest.raises(DataError, match=phrase):
        read_json(path, what="results", error=DataError)


def test_dotted_paths():
    assert dotted(("arms", "treatment")) == "arms.treatment"
    assert (
        dotted(("segments", 0, "predict", "bands", "top", 1)) == "segments[0].predict.bands.top[1]"
    )
    assert dotted(()) == ""


def test_read_text_names_a_file_name_too_long_in_one_line(tmp_path):
    path = tmp_path / ("x" * 5000)
    with pytest.raises(ConfigError, match="cannot read the test file"):
        read_yaml_mapping(path, what="test")


def _release(path):
    try:
        fd = os.open(path, os.O_WRONLY | os.O_NONBLOCK)
    except OSError:  # no reader waiting
        return
    os.close(fd)


def test_read_yaml_mapping_refuses_a_fifo_without_waiting_for_a_writer(tmp_path):
    # A blocking read would wait for a writer: one comes after 5 s and closes at
    # once, so the read sees an empty file and the test fails instead of hanging.
    path = tmp_path / "f.yaml"
    os.mkfifo(path)
    timer = threading.Timer(5, _release, args=(path,))
    timer.start()
    try:
        with pytest.raises(ConfigError, match=r"not a regular file \(a pipe, device or socket\)"):
            read_yaml_mapping(path, what="test")
    finally:
        timer.cancel()
