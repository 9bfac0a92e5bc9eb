"""The store's tables, the same on SQLite and PostgreSQL.

- `store_state`: one row, the latest resourceVersion (its row lock serialises writers, so
  they commit in resourceVersion order) and the compaction horizon of the log.
- `objects`: the current objects, one row per (kind, namespace, name), as JSON text.
- `owner_refs`: which object names which owner uid, for cascading deletes.
- `events`: the change log watches read, one row per resourceVersion; a MODIFIED row keeps
  the object's previous state too, so a filtered watch can tell an object left its selection.
- `audit_log`: audited API calls (control/audit.py), apart from the objects and their log;
  time is epoch microseconds, the same integer on both backends.
"""

from __future__ import annotations

import sqlalchemy as sa

STATE_ID = 1
_SCHEMA_LOCK = 7_347_001  # any constant: PostgreSQL advisory lock id guarding schema creation

metadata = sa.MetaData()


def _key_columns() -> list[sa.Column[str]]:
    return [
        sa.Column("kind", sa.String, nullable=False),
        sa.Column("namespace", sa.String, nullable=False),
        sa.Column("name", sa.String, nullable=False),
    ]


state = sa.Table(
    "store_state",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("resource_version", sa.BigInteger, nullable=False),
    sa.Column("horizon", sa.BigInteger, nullable=False),
)

objects = sa.Table(
    "objects",
    metadata,
    *_key_columns(),
    sa.Column("data", sa.Text, nullable=False),
    sa.PrimaryKeyConstraint("kind", "namespace", "name"),
)

owner_refs = sa.Table(
    "owner_refs",
    metadata,
    sa.Column("owner_uid", sa.String, nullable=False),
    *_key_columns(),
    sa.PrimaryKeyConstraint("owner_uid", "kind", "namespace", "name"),
)

events = sa.Table(
    "events",
    metadata,
    sa.Column("resource_version", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("type", sa.String, nullable=False),
    *_key_columns(),
    sa.Column("data", sa.Text, nullable=False),
    sa.Column("previous", sa.Text, nullable=True),
)

audit_log = sa.Table(
    "audit_log",
    metadata,
    sa.Column(
        "id",
        sa.BigInteger().with_variant(sa.Integer, "sqlite"),  # SQLite: the rowid, autoincrement
        primary_key=True,
        autoincrement=True,
    ),
    sa.Column("time_us", sa.BigInteger, nullable=False, index=True),
    sa.Column("request_id", sa.String, nullable=False),
    sa.Column("level", sa.String, nullable=False),
    sa.Column("principal", sa.String, nullable=False),
    sa.Column("source", sa.String, nullable=False),
    sa.Column("verb", sa.String, nullable=False),
    sa.Column("kind", sa.String, nullable=False),
    sa.Column("namespace", sa.String, nullable=False),
    sa.Column("name", sa.String, nullable=False),
    sa.Column("subresource", sa.String, nullable=False),
    sa.Column("path", sa.String, nullable=False),
    sa.Column("code", sa.Integer, nullable=False),
    sa.Column("resource_version", sa.BigInteger, nullable=True),
    sa.Column("body", sa.Text, nullable=True),
)


def create(engine: sa.Engine) -> None:
    """Create the tables and the state row if missing; safe when replicas start at once."""
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(sa.select(sa.func.pg_advisory_xact_lock(_SCHEMA_LOCK)))
        metadata.create_all(conn)
        found = conn.execute(sa.select(state.c.id).where(state.c.id == STATE_ID)).first()
        if found is None:
            conn.execute(state.insert().values(id=STATE_ID, resource_version=0, horizon=0))
