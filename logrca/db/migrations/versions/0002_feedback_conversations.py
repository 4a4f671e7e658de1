# Licensed under the Apache License, Version 2.0 (the "License"); you may
# not use this file except in compliance with the License. You may obtain
# a copy of the License at
#
#      http://www.apache.org/licenses/LICENSE-2.0
#
# Unless required by applicable law or agreed to in writing, software
# distributed under the License is distributed on an "AS IS" BASIS, WITHOUT
# WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied. See the
# License for the specific language governing permissions and limitations
# under the License.

"""Operator feedback on explanations, and question conversations.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-01 10:00:00.000000
"""

from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import mysql

# revision identifiers, used by Alembic.
revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None

_DATETIME = sa.DateTime().with_variant(mysql.DATETIME(fsp=6), 'mysql')


def upgrade():
    op.create_table(
        'feedback',
        sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
        sa.Column('uuid', sa.String(length=36), nullable=False),
        sa.Column('anomaly_id', sa.Integer(), nullable=False),
        sa.Column('user_id', sa.String(length=64), nullable=True),
        sa.Column('project_id', sa.String(length=64), nullable=True),
        sa.Column('verdict', sa.String(length=16), nullable=False),
        sa.Column('module', sa.String(length=255), nullable=True),
        sa.Column('function', sa.String(length=255), nullable=True),
        sa.Column('operation', sa.String(length=64), nullable=True),
        sa.Column('cause', sa.Text(), nullable=True),
        sa.Column('comment', sa.Text(), nullable=True),
        sa.Column('created_at', _DATETIME, nullable=False),
        sa.ForeignKeyConstraint(['anomaly_id'], ['anomalies.id'],
                                ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('uuid', name='uniq_feedback0uuid'),
        mysql_charset='utf8mb4',
        mysql_engine='InnoDB')
    with op.batch_alter_table('feedback', schema=None) as batch_op:
        batch_op.create_index('ix_feedback_anomaly_created',
                              ['anomaly_id', 'created_at', 'id'],
                              unique=False)
        batch_op.create_index('ix_feedback_project_created',
                              ['project_id', 'created_at', 'id'],
                              unique=False)
    op.create_table(
        'conversations',
        sa.Column('id', sa.String(length=36), nullable=False),
        sa.Column('project_id', sa.String(length=64), nullable=True),
        sa.Column('user_id', sa.String(length=64), nullable=True),
        sa.Column('created_at', _DATETIME, nullable=False),
        sa.Column('updated_at', _DATETIME, nullable=True),
        sa.Column('state', sa.Text().with_variant(mysql.MEDIUMTEXT(),
                                                  'mysql'), nullable=False),
        sa.PrimaryKeyConstraint('id'),
        mysql_charset='utf8mb4',
        mysql_engine='InnoDB')
    with op.batch_alter_table('conversations', schema=None) as batch_op:
        batch_op.create_index('ix_conversations_project_created',
                              ['project_id', 'created_at'], unique=False)

