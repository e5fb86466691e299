from __future__ import annotations

from pathlib import Path

import pytest

from producers.publish import key_of, read_lines


@pytest.mark.parametrize(
    ("payload", "key"),
    [
        (b'{"visit_id": "v-1", "x": 1}', b"v-1"),
        (b'{"visit_id": 7}', None),
        (b"[1]", None),
        (b"not json", None),
        (b"\xff\xfe", None),
        (b"[" * 100_000, None),
        (b'{"visit_id": "v-2", "revision": ' + b"9" * 5000 + b"}", b"v-2"),
    ],
)
def test_key_is_the_visit_id_when_readable(payload: bytes, key: bytes | None) -> None:
    assert key_of(payload) == key


def test_lines_keep_their_bytes(tmp_path: Path) -> None:
    path = tmp_path / "x.jsonl"
    path.write_bytes(b'{"a":1}\r\n\n  \n\xff\xfe\n{"b":2}')
    assert list(read_lines(path)) == [b'{"a":1}', b"\xff\xfe", b'{"b":2}']
