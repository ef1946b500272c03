"""The report's Jinja2 environment keeps compiled templates between runs, when it can."""

from __future__ import annotations

import tempfile

from reports.environment import environment


def test_compiled_report_template_is_cached_in_the_temp_folder(tmp_path, monkeypatch):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    first = environment().get_template("report.html")
    assert len(list(tmp_path.glob("_jinja2-cache-*/__seglift_page_text_*.cache"))) == 1
    again = environment().get_template("report.html")  # read back from the cache
    assert again.render is not None
    assert first.name == again.name == "report.html"


def test_an_unusable_temp_folder_only_loses_the_cache(tmp_path, monkeypatch):
    blocked = tmp_path / "a-file"
    blocked.write_text("not a folder")
    monkeypatch.setattr(tempfile, "tempdir", str(blocked))
    env = environment()
    assert env.bytecode_cache is None
    assert env.get_template("report.html").name == "report.html"


def test_printed_values_show_control_characters_as_text(tmp_path, monkeypatch):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    for _ in range(2):  # compiled, then read back from the cache
        page = environment().from_string("<b>{{ name }}</b>").render(name="a\x1b[2J<i>\x07")
        assert page == "<b>a\\x1b[2J&lt;i&gt;\\x07</b>"
