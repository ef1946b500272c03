import os
import stat

import pytest

from experiment.files import atomic_path, write_text_atomic


def test_write_text_atomic_uses_the_umask_mode(tmp_path):
    old = os.umask(0o022)
    try:
        write_text_atomic(tmp_path / "a" / "r.json", "{}")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "a" / "r.json").stat().st_mode) == 0o644
    assert (tmp_path / "a" / "r.json").read_text() == "{}"


def test_atomic_path_leaves_nothing_on_error(tmp_path):
    target = tmp_path / "out.html"
    target.write_text("old")

    def fail_midway() -> None:
        with atomic_path(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        fail_midway()
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["out.html"]
