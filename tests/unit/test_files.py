"""write_atomic: two writers at once never take each other's temporary file; a reader sees whole files."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest

from opsdeck.files import write_atomic


def test_concurrent_writers_each_replace_the_file_whole(tmp_path: Path) -> None:
    target = tmp_path / "orphans.json"
    errors: list[BaseException] = []

    def writer(n: int) -> None:
        try:
            for i in range(200):
                write_atomic(target, json.dumps({"writer": n, "i": i, "pad": "x" * 4096}))
        except BaseException as exc:
            errors.append(exc)

    def reader() -> None:
        for _ in range(400):
            if target.exists():
                json.loads(target.read_text())  # never half a file

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(4)] + [threading.Thread(target=reader)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert json.loads(target.read_text())["i"] == 199
    assert [p.name for p in tmp_path.iterdir()] == ["orphans.json"]  # no temporary file left behind


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path: Path) -> None:
    target = tmp_path / "state.json"
    write_atomic(target, "old")
    with pytest.raises(UnicodeEncodeError):
        write_atomic(target, "\udcff")  # cannot be encoded
    assert target.read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["state.json"]
