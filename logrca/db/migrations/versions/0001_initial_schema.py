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

"""Initial schema: anomalies, evidence, refs and explanations.

Revision ID: 0001
Revises:
Create Date: 2026-11-27 18:59:24.597884
"""

from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import mysql

# revision identifiers, used by Alembic.
revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('anomalies',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('uuid', sa.String(length=36), nullable=False),
    sa.Column('detector', sa.String(length=64), nullable=False),
    sa.Column('score', sa.Float(), nullable=False),
    sa.Column('threshold', sa.Float(), nullable=True),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('session_kind', sa.String(length=32), nullable=True),
    sa.Column('session_key', sa.Text(), nullable=True),
    sa.Column('start_time', sa.DateTime().with_variant(mysql.DATETIME(fsp=6), 'mysql'), nullable=True),
    sa.Column('end_time', sa.DateTime().with_variant(mysql.DATETIME(fsp=6), 'mysql'), nullable=True),
    sa.Column('raised_at', sa.DateTime().with_variant(mysql.DATETIME(fsp=6), 'mysql'), nullable=False),
    sa.Column('service', sa.String(length=255), nullable=True),
    sa.Column('host', sa.String(length=255), nullable=True),
    sa.Column('project_id', sa.String(length=64), nullable=True),
    sa.Column('user_id', sa.String(length=64), nullable=True),
    sa.Column('request_ids', sa.Text().with_variant(mysql.MEDIUMTEXT(), 'mysql'), nullable=True),
    sa.Column('instance_ids', sa.Text().with_variant(mysql.MEDIUMTEXT(), 'mysql'), nullable=True),
    sa.Column('status', sa.String(length=16), server_default='new', nullable=False),
    sa.Column('status_changed_by', sa.String(length=255), nullable=True),
    sa.Column('status_changed_at', sa.DateTime().with_variant(mysql.DATETIME(fsp=6), 'mysql'), nullable=True),
    sa.Column('status_comment', sa.Text(), nullable=True),
    sa.Column('created_at', sa.DateTime().with_variant(mysql.DATETIME(fsp=6), 'mysql'), nullable=False),
    sa.Column('updated_at', sa.DateTime().with_variant(mysql.DATETIME(fsp=6), 'mysql'), nullable=True),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('uuid', name='uniq_anomalies0uuid'),
    mysql_charset='utf8mb4',
    mysql_engine='InnoDB'
    )
    with op.batch_alter_table('anomalies', schema=None) as batch_op:
        batch_op.create_index('ix_anomalies_detector_raised', ['detector', 'raised_at', 'id'], unique=False)
        batch_op.create_index('ix_anomalies_host_raised', ['host', 'raised_at', 'id'], unique=False)
        batch_op.create_index('ix_anomalies_project_raised', ['project_id', 'raised_at', 'id'], unique=False)
        batch_op.create_index('ix_anomalies_raised', ['raised_at', 'id'], unique=False)
        batch_op.create_index('ix_anomalies_score', ['score'], unique=False)
        batch_op.create_index('ix_anomalies_service_raised', ['service', 'raised_at', 'id'], unique=False)
        batch_op.create_index('ix_anomalies_status_raised', ['status', 'raised_at', 'id'], unique=False)

    op.create_table('anomaly_evidence',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('anomaly_id', sa.Integer(), nullable=False),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.Column('timestamp', sa.DateTime().with_variant(mysql.DATETIME(fsp=6), 'mysql'), nullable=True),
    sa.Column('stream', sa.String(length=255), nullable=False),
    sa.Column('level', sa.String(length=16), nullable=True),
    sa.Column('logger', sa.String(length=255), nullable=True),
    sa.Column('message', sa.Text().with_variant(mysql.MEDIUMTEXT(), 'mysql'), nullable=False),
    sa.Column('request_id', sa.String(length=64), nullable=True),
    sa.Column('project_id', sa.String(length=64), nullable=True),
    sa.Column('instance_id', sa.String(length=64), nullable=True),
    sa.Column('template_id', sa.Integer(), nullable=True),
    sa.Column('lineno', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['anomaly_id'], ['anomalies.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('anomaly_id', 'position', name='uniq_anomaly_evidence0anomaly_id0position'),
    mysql_charset='utf8mb4',
    mysql_engine='InnoDB'
    )
    op.create_table('anomaly_refs',
    sa.Column('anomaly_id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('value', sa.String(length=64), nullable=False),
    sa.ForeignKeyConstraint(['anomaly_id'], ['anomalies.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('anomaly_id', 'kind', 'value'),
    mysql_charset='utf8mb4',
    mysql_engine='InnoDB'
    )
    with op.batch_alter_table('anomaly_refs', schema=None) as batch_op:
        batch_op.create_index('ix_anomaly_refs_kind_value', ['kind', 'value', 'anomaly_id'], unique=False)

    op.create_table('explanations',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('anomaly_id', sa.Integer(), nullable=False),
    sa.Column('driver', sa.String(length=64), nullable=False),
    sa.Column('created_at', sa.DateTime().with_variant(mysql.DATETIME(fsp=6), 'mysql'), nullable=False),
    sa.Column('body', sa.Text().with_variant(mysql.MEDIUMTEXT(), 'mysql'), nullable=False),
    sa.ForeignKeyConstraint(['anomaly_id'], ['anomalies.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('anomaly_id', name='uniq_explanations0anomaly_id'),
    mysql_charset='utf8mb4',
    mysql_engine='InnoDB'
    )
