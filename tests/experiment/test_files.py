import os
import stat
from pathlib import Path

import pytest

from experiment.files import write_text_atomic, write_together


def test_write_text_atomic_uses_the_umask_mode(tmp_path):
    old = os.umask(0o022)
    try:
        write_text_atomic(tmp_path / "a" / "r.json", "{}")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "a" / "r.json").stat().st_mode) == 0o644
    assert (tmp_path / "a" / "r.json").read_text() == "{}"


def test_write_together_leaves_nothing_on_error(tmp_path):
    target = tmp_path / "out.html"
    target.write_text("old")

    def fail_midway(tmp: Path) -> None:
        tmp.write_text("half")
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        write_together([(target, fail_midway)])
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["out.html"]


def test_write_together_failing_writer_keeps_every_previous_file(tmp_path):
    for name in ("a.json", "b.html"):
        (tmp_path / name).write_text(f"old {name}")

    def broken(tmp):
        tmp.write_text("half")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        write_together(
            [(tmp_path / "a.json", lambda t: t.write_text("new")), (tmp_path / "b.html", broken)]
        )
    assert (tmp_path / "a.json").read_text() == "old a.json"
    assert (tmp_path / "b.html").read_text() == "old b.html"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.json", "b.html"]


def test_write_together_failing_rename_puts_the_old_files_back(tmp_path):
    """The second target turned into a folder after the checks: the first rename is undone."""
    (tmp_path / "a.json").write_text("old")
    (tmp_path / "b.html").mkdir()
    (tmp_path / "b.html" / "x").write_text("keep")
    with pytest.raises(IsADirectoryError):
        write_together(
            [
                (tmp_path / "a.json", lambda t: t.write_text("new")),
                (tmp_path / "b.html", lambda t: t.write_text("new")),
            ]
        )
    assert (tmp_path / "a.json").read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.json", "b.html"]


def test_write_together_replaces_every_file(tmp_path):
    (tmp_path / "a.json").write_text("old")
    write_together(
        [
            (tmp_path / "a.json", lambda t: t.write_text("A")),
            (tmp_path / "d" / "b", lambda t: t.write_text("B")),
        ]
    )
    assert (tmp_path / "a.json").read_text() == "A"
    assert (tmp_path / "d" / "b").read_text() == "B"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.json", "d"]


@pytest.mark.parametrize(
    ("make", "path", "phrase"),
    [
        (lambda d: (d / "r.json").mkdir(), "r.json", "is a folder"),
        (lambda d: (d / "f").write_text(""), "f/r.json", "is a file, not a folder"),
        (lambda d: (d / "in.yaml").write_text(""), "in.yaml", "is an input of this run"),
        (lambda d: (d / "l.yaml").symlink_to(d / "in.yaml"), "l.yaml", "is an input of this run"),
    ],
)
def test_check_output_file_refuses(tmp_path, make, path, phrase):
    from experiment.errors import ConfigError
    from experiment.files import check_output_file

    (tmp_path / "in.yaml").write_text("")
    make(tmp_path)
    with pytest.raises(ConfigError, match=phrase):
        check_output_file(tmp_path / path, option="--out", inputs=[tmp_path / "in.yaml"])


def test_check_output_file_replaces_only_a_file_of_its_kind(tmp_path):
    from experiment.errors import ConfigError
    from experiment.files import HTML_SUFFIXES, check_output_file

    for name in ("customers.parquet", "experiment.yaml", "notes"):
        (tmp_path / name).write_text("x")
        with pytest.raises(ConfigError, match=rf"{name}: an existing file that is not \.html"):
            check_output_file(tmp_path / name, option="--out", suffixes=HTML_SUFFIXES)
    (tmp_path / "old.HTML").write_text("x")
    for name in ("old.HTML", "new.txt"):  # the same kind, or a new file: written
        assert check_output_file(tmp_path / name, option="--out", suffixes=HTML_SUFFIXES)
    with pytest.raises(ConfigError, match=r"not \.parquet; this run would replace it"):
        check_output_file(tmp_path / "notes", option="--out", suffixes=(".parquet",))


def test_check_output_file_refuses_devices_and_unwritable_places():
    from experiment.errors import ConfigError
    from experiment.files import check_output_file

    with pytest.raises(ConfigError, match="not a regular file"):
        check_output_file(Path("/dev/null"), option="--out")
    with pytest.raises(ConfigError, match="cannot write"):
        check_output_file(Path("/proc/seglift/r.json"), option="--out")


def test_check_output_folder_refuses_a_folder_inside_an_input_folder(tmp_path):
    from experiment.errors import ConfigError
    from experiment.files import check_output_folder

    (tmp_path / "events").mkdir()
    with pytest.raises(ConfigError, match="inside an input"):
        check_output_folder(
            tmp_path / "events" / "out", option="--out", inputs=[tmp_path / "events"]
        )
    assert check_output_folder(tmp_path / "new" / "out", option="--out") == tmp_path / "new" / "out"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["events"]
