"""Literal rendering: what both stores receive as SQL text."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone

import pytest

from sinks.sql import insert_statement, literal, values_clause


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, "NULL"),
        (True, "true"),
        (7, "7"),
        (0.25, "0.25"),
        (float("nan"), "nan"),
        ("it's", "'it\\x27s'"),
        ("a\\b", "'a\\x5cb'"),
        ("Graçanicë", "'Graçanicë'"),
        ("line\nbreak", "'line\\x0abreak'"),
        (b"\xff\x00'", "'\\xff\\x00\\x27'"),
        (date(2026, 3, 1), "'2026-03-01'"),
        (["a", "b"], "['a', 'b']"),
        ([], "[]"),
    ],
)
def test_literals(value: object, expected: str) -> None:
    assert literal(value) == expected


def test_datetimes_are_rendered_in_utc() -> None:
    moment = datetime(2026, 3, 1, 10, 0, 0, 123456, tzinfo=timezone(timedelta(hours=1)))
    assert literal(moment) == "'2026-03-01 09:00:00.123'"
    assert literal(moment.astimezone(UTC)) == literal(moment)


def test_naive_datetimes_are_refused() -> None:
    with pytest.raises(ValueError, match="naive"):
        literal(datetime(2026, 3, 1))  # noqa: DTZ001  # the point of the test


def test_unknown_types_are_refused() -> None:
    with pytest.raises(TypeError):
        literal(object())


def test_insert_statement_carries_the_token() -> None:
    sql = insert_statement("db.t", ("a", "b"), values_clause([(1, "x"), (2, None)]), "tok")
    assert sql == (
        "INSERT INTO db.t (a, b) SETTINGS insert_deduplication_token = 'tok' VALUES\n"
        "(1, 'x'),\n(2, NULL)"
    )


def test_an_insert_through_shards_waits_for_them() -> None:
    sql = insert_statement("db.t", ("a",), values_clause([(1,)]), "tok", to_shards=True)
    assert sql == (
        "INSERT INTO db.t (a) SETTINGS insert_deduplication_token = 'tok', "
        "distributed_foreground_insert = 1 VALUES\n(1)"
    )
