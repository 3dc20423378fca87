"""The concert_singer schema (Spider's first dev database) built by hand, shared by the hardness and EM tests."""

from __future__ import annotations

from kidsql.data.types import Column, ForeignKey, Schema, Table


def _table(name: str, *cols: str) -> Table:
    return Table(name, [Column(name, c) for c in cols])


SCHEMA = Schema(
    "concert_singer",
    [
        _table("singer", "singer_id", "name", "country", "age", "is_male"),
        _table("concert", "concert_id", "concert_name", "year", "stadium_id"),
        _table("singer_in_concert", "concert_id", "singer_id"),
        _table("stadium", "stadium_id", "name", "capacity"),
    ],
    [
        ForeignKey("concert", "stadium_id", "stadium", "stadium_id"),
        ForeignKey("singer_in_concert", "singer_id", "singer", "singer_id"),
        ForeignKey("singer_in_concert", "concert_id", "concert", "concert_id"),
    ],
)
