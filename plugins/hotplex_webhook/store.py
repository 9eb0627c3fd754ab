"""The plugin's table: ``webhook_disabled``, the subscriptions a 410 disabled (kept across
restarts until ``redeliver``). SQLAlchemy is imported only when the migration runs."""

from __future__ import annotations

from typing import TYPE_CHECKING

from hotplex.records import Migration

if TYPE_CHECKING:
    from sqlalchemy import Connection

__all__ = ["MIGRATIONS"]


def _v1(conn: Connection) -> None:
    from sqlalchemy import Column, Float, MetaData, String, Table, Text

    md = MetaData()
    Table(
        "webhook_disabled",
        md,
        Column("name", String, primary_key=True),
        Column("reason", Text, nullable=False),
        Column("disabled_at", Float, nullable=False),
    ).create(conn)


MIGRATIONS = (Migration("webhook", 1, "webhook_disabled", _v1),)
