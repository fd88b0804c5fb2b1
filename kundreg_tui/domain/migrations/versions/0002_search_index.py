"""search index: a covering index for substring search (SQLite), trigram GIN (PostgreSQL)

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23
"""
import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        available = bind.execute(sa.text(
            "SELECT 1 FROM pg_available_extensions WHERE name = 'pg_trgm'")).first()
        if available:
            op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
            op.execute("CREATE INDEX IF NOT EXISTS ix_customer_search_trgm ON customer "
                       "USING gin (search_key gin_trgm_ops) WHERE deleted_at IS NULL")
            return
    # A narrow covering index: a search scans it instead of the whole table.
    op.create_index("ix_customer_search", "customer", ["deleted_at", "search_key"])


def downgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        op.execute("DROP INDEX IF EXISTS ix_customer_search_trgm")
    op.execute("DROP INDEX IF EXISTS ix_customer_search")
