"""initial schema

Revision ID: 0001
Revises: 
Create Date: 2026-11-23
"""
from alembic import op
import sqlalchemy as sa
import sqlmodel


revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('batch',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('kind', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.Column('actor', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('source', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('summary', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('undone_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_table('change',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.Column('actor', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('source', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('batch_id', sa.Integer(), nullable=True),
    sa.Column('customer_id', sa.Integer(), nullable=False),
    sa.Column('action', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('changes', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('change', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_change_batch_id'), ['batch_id'], unique=False)
        batch_op.create_index('ix_change_customer', ['customer_id', 'id'], unique=False)

    op.create_table('customer',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('number', sa.String(length=32), nullable=False),
    sa.Column('kind', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('name', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.Column('first_name', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
    sa.Column('last_name', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
    sa.Column('org_number', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
    sa.Column('vat_number', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
    sa.Column('email', sqlmodel.sql.sqltypes.AutoString(length=254), nullable=False),
    sa.Column('phone', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
    sa.Column('address', sqlmodel.sql.sqltypes.AutoString(length=300), nullable=False),
    sa.Column('postal_code', sqlmodel.sql.sqltypes.AutoString(length=12), nullable=False),
    sa.Column('city', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
    sa.Column('country', sqlmodel.sql.sqltypes.AutoString(length=2), nullable=False),
    sa.Column('reference', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
    sa.Column('notes', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('number_key', sa.String().with_variant(sa.String(collation='C'), 'postgresql'), nullable=False),
    sa.Column('name_key', sa.String().with_variant(sa.String(collation='C'), 'postgresql'), nullable=False),
    sa.Column('city_key', sa.String().with_variant(sa.String(collation='C'), 'postgresql'), server_default='', nullable=False),
    sa.Column('email_key', sqlmodel.sql.sqltypes.AutoString(length=254), nullable=True),
    sa.Column('search_key', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('created_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.Column('updated_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.Column('deleted_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
    sa.Column('delete_batch', sa.Integer(), nullable=True),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('number')
    )
    with op.batch_alter_table('customer', schema=None) as batch_op:
        batch_op.create_index('ix_customer_email_live', ['email_key'], unique=True, sqlite_where=sa.text('deleted_at IS NULL AND email_key IS NOT NULL'), postgresql_where=sa.text('deleted_at IS NULL AND email_key IS NOT NULL'))
        batch_op.create_index('ix_customer_live_city', ['deleted_at', 'city_key', 'id'], unique=False)
        batch_op.create_index('ix_customer_live_email', ['deleted_at', 'email_key', 'id'], unique=False)
        batch_op.create_index('ix_customer_live_phone', ['deleted_at', 'phone', 'id'], unique=False)
        batch_op.create_index('ix_customer_live_name', ['deleted_at', 'name_key', 'id'], unique=False)
        batch_op.create_index('ix_customer_live_number', ['deleted_at', 'number_key', 'id'], unique=False)

    op.create_table('meta',
    sa.Column('key', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('value', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.PrimaryKeyConstraint('key')
    )


def downgrade() -> None:
    op.drop_table('meta')
    with op.batch_alter_table('customer', schema=None) as batch_op:
        batch_op.drop_index('ix_customer_live_number')
        batch_op.drop_index('ix_customer_live_name')
        batch_op.drop_index('ix_customer_live_city')
        batch_op.drop_index('ix_customer_live_email')
        batch_op.drop_index('ix_customer_live_phone')
        batch_op.drop_index('ix_customer_email_live', sqlite_where=sa.text('deleted_at IS NULL AND email_key IS NOT NULL'), postgresql_where=sa.text('deleted_at IS NULL AND email_key IS NOT NULL'))

    op.drop_table('customer')
    with op.batch_alter_table('change', schema=None) as batch_op:
        batch_op.drop_index('ix_change_customer')
        batch_op.drop_index(batch_op.f('ix_change_batch_id'))

    op.drop_table('change')
    op.drop_table('batch')
