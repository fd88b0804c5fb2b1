"""Storage models (SQLModel tables) and the plain records the service hands out.

Table models do not validate: every value goes through ``validation`` first.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from kundreg_tui.domain.fields import FIELD_NAMES

# Sort keys compare byte-wise; PostgreSQL must not apply a locale's collation to them.
KeyString = sa.String().with_variant(sa.String(collation="C"), "postgresql")


class Customer(SQLModel, table=True):
    __tablename__ = "customer"
    __table_args__ = (
        sa.Index(
            "ix_customer_email_live",
            "email_key",
            unique=True,
            sqlite_where=sa.text("deleted_at IS NULL AND email_key IS NOT NULL"),
            postgresql_where=sa.text("deleted_at IS NULL AND email_key IS NOT NULL"),
        ),
        sa.Index("ix_customer_live_number", "deleted_at", "number_key", "id"),
        sa.Index("ix_customer_live_name", "deleted_at", "name_key", "id"),
        sa.Index("ix_customer_live_city", "deleted_at", "city_key", "id"),
        sa.Index("ix_customer_live_email", "deleted_at", "email_key", "id"),
        sa.Index("ix_customer_live_phone", "deleted_at", "phone", "id"),
        # Migration 0002: a covering index for substring search (on PostgreSQL with pg_trgm
        # the migration makes a trigram GIN index instead).
        sa.Index("ix_customer_search", "deleted_at", "search_key"),
    )

    id: int | None = Field(default=None, primary_key=True)
    number: str = Field(sa_column=sa.Column(sa.String(32), nullable=False, unique=True))
    kind: str = Field(default="company", max_length=16)
    name: str = Field(max_length=200)
    first_name: str = Field(default="", max_length=100)
    last_name: str = Field(default="", max_length=100)
    org_number: str = Field(default="", max_length=20)
    vat_number: str = Field(default="", max_length=20)
    email: str = Field(default="", max_length=254)
    phone: str = Field(default="", max_length=40)
    address: str = Field(default="", max_length=300)
    postal_code: str = Field(default="", max_length=12)
    city: str = Field(default="", max_length=100)
    country: str = Field(default="SE", max_length=2)
    reference: str = Field(default="", max_length=100)
    notes: str = Field(default="")
    # Derived columns for ordering and searching (kept by the service, never typed).
    number_key: str = Field(sa_column=sa.Column(KeyString, nullable=False))
    name_key: str = Field(sa_column=sa.Column(KeyString, nullable=False))
    city_key: str = Field(sa_column=sa.Column(KeyString, nullable=False, server_default=""))
    email_key: str | None = Field(default=None, max_length=254)
    search_key: str = Field(default="")
    version: int = Field(default=1)
    created_at: datetime
    updated_at: datetime
    deleted_at: datetime | None = Field(default=None)
    delete_batch: int | None = Field(default=None)


class Batch(SQLModel, table=True):
    """One import, deletion or other grouped change, so that it can be undone as a whole."""

    __tablename__ = "batch"
    id: int | None = Field(default=None, primary_key=True)
    kind: str = Field(max_length=16)  # import | paste | delete
    at: datetime
    actor: str = Field(max_length=64)
    source: str = Field(default="")
    summary: str = Field(default="")  # JSON: counts, receipt
    undone_at: datetime | None = Field(default=None)


class Change(SQLModel, table=True):
    """Who changed what and when; written in the same transaction as the change."""

    __tablename__ = "change"
    __table_args__ = (sa.Index("ix_change_customer", "customer_id", "id"),)
    id: int | None = Field(default=None, primary_key=True)
    at: datetime
    actor: str = Field(max_length=64)
    source: str = Field(max_length=32)  # form | import | paste | delete | undo | demo | cli
    batch_id: int | None = Field(default=None, index=True)
    customer_id: int
    action: str = Field(max_length=16)  # create | update | delete | restore
    changes: str = Field(default="{}")  # JSON {field: [old, new]}


class Meta(SQLModel, table=True):
    __tablename__ = "meta"
    key: str = Field(primary_key=True, max_length=64)
    value: str = Field(default="")


@dataclass
class CustomerRecord:
    """A customer as the service hands it out (a snapshot; not bound to any session)."""

    id: int
    number: str
    kind: str = "company"
    name: str = ""
    first_name: str = ""
    last_name: str = ""
    org_number: str = ""
    vat_number: str = ""
    email: str = ""
    phone: str = ""
    address: str = ""
    postal_code: str = ""
    city: str = ""
    country: str = "SE"
    reference: str = ""
    notes: str = ""
    version: int = 1
    created_at: datetime | None = None
    updated_at: datetime | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def values(self) -> dict[str, str]:
        return {name: getattr(self, name) for name in FIELD_NAMES}


customer_table: sa.Table = Customer.__table__  # type: ignore[attr-defined]
batch_table: sa.Table = Batch.__table__  # type: ignore[attr-defined]
change_table: sa.Table = Change.__table__  # type: ignore[attr-defined]
meta_table: sa.Table = Meta.__table__  # type: ignore[attr-defined]
