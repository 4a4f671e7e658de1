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

"""SQLAlchemy models of the logrca database."""

import sqlalchemy as sa
from sqlalchemy import orm
from sqlalchemy.dialects import mysql

# Anomaly statuses, in the order of their life cycle.
STATUS_NEW = 'new'
STATUS_ACKNOWLEDGED = 'acknowledged'
STATUS_RESOLVED = 'resolved'
STATUS_FALSE_POSITIVE = 'false_positive'
STATUSES = (STATUS_NEW, STATUS_ACKNOWLEDGED, STATUS_RESOLVED,
            STATUS_FALSE_POSITIVE)

# Kinds of rows of ``anomaly_refs``.
REF_REQUEST = 'request'
REF_INSTANCE = 'instance'

# Column sizes, shared with the API layer for input validation.
UUID_LEN = 36
NAME_LEN = 255
ID_LEN = 64
DETECTOR_LEN = 64
STATUS_LEN = 16

# Verdicts of operator feedback on an explanation.
VERDICT_CONFIRMED = 'confirmed'
VERDICT_CORRECTED = 'corrected'
VERDICTS = (VERDICT_CONFIRMED, VERDICT_CORRECTED)

# DateTime with microseconds: MySQL/MariaDB's DATETIME drops them unless
# asked for fsp=6. Values are naive datetimes in UTC.
DateTimeUS = sa.DateTime().with_variant(mysql.DATETIME(fsp=6), 'mysql')
# Text big enough for a long log line (a traceback joined into one record,
# or a 1 MB line): MySQL's TEXT stops at 64 KiB.
LongText = sa.Text().with_variant(mysql.MEDIUMTEXT(), 'mysql')

_TABLE_ARGS = {'mysql_engine': 'InnoDB', 'mysql_charset': 'utf8mb4'}


class Base(orm.DeclarativeBase):
    """Declarative base of the logrca models."""


def _listing_index(name, lead, checked):
    """An index that serves a page of anomalies, newest first.

    ``lead`` (an equality filter, or None), then ``raised_at`` and ``id``
    descending -- the default order, so MariaDB reads the page forwards and
    can check conditions on the index entries themselves (index condition
    pushdown) -- then the ``checked`` columns: further filters evaluated
    in the index rather than by fetching each row. A project reader's
    listing is always filtered by project, so every filter's index carries
    ``project_id``, and the project's index carries every filter.
    """
    return sa.Index(name, *([lead] if lead else []), sa.desc('raised_at'),
                    sa.desc('id'), *checked)


class Anomaly(Base):
    """An anomaly raised by a detector and stored by the conductor."""

    __tablename__ = 'anomalies'
    __table_args__ = (
        # Listing indexes (see _listing_index): newest first, as the API
        # lists by default.
        _listing_index('ix_anomalies_project_raised', 'project_id',
                       ('service', 'host', 'detector', 'status')),
        _listing_index('ix_anomalies_raised', None, ()),
        _listing_index('ix_anomalies_service_raised', 'service',
                       ('project_id',)),
        _listing_index('ix_anomalies_host_raised', 'host', ('project_id',)),
        _listing_index('ix_anomalies_detector_raised', 'detector',
                       ('project_id',)),
        _listing_index('ix_anomalies_status_raised', 'status',
                       ('project_id',)),
        sa.Index('ix_anomalies_score', 'score'),
        sa.UniqueConstraint('uuid', name='uniq_anomalies0uuid'),
        _TABLE_ARGS,
    )

    id = sa.Column(sa.Integer, primary_key=True, autoincrement=True)
    uuid = sa.Column(sa.String(UUID_LEN), nullable=False)
    detector = sa.Column(sa.String(DETECTOR_LEN), nullable=False)
    score = sa.Column(sa.Float, nullable=False)
    threshold = sa.Column(sa.Float, nullable=True)
    reason = sa.Column(sa.Text, nullable=False)
    session_kind = sa.Column(sa.String(32), nullable=True)
    # JSON list: the whole session key, e.g. ["request", "req-..."].
    session_key = sa.Column(sa.Text, nullable=True)
    start_time = sa.Column(DateTimeUS, nullable=True)
    end_time = sa.Column(DateTimeUS, nullable=True)
    raised_at = sa.Column(DateTimeUS, nullable=False)
    service = sa.Column(sa.String(NAME_LEN), nullable=True)
    host = sa.Column(sa.String(NAME_LEN), nullable=True)
    project_id = sa.Column(sa.String(ID_LEN), nullable=True)
    user_id = sa.Column(sa.String(ID_LEN), nullable=True)
    # JSON lists; filtering uses ``anomaly_refs``.
    request_ids = sa.Column(LongText, nullable=True)
    instance_ids = sa.Column(LongText, nullable=True)
    status = sa.Column(sa.String(STATUS_LEN), nullable=False,
                       default=STATUS_NEW, server_default=STATUS_NEW)
    status_changed_by = sa.Column(sa.String(NAME_LEN), nullable=True)
    status_changed_at = sa.Column(DateTimeUS, nullable=True)
    status_comment = sa.Column(sa.Text, nullable=True)
    created_at = sa.Column(DateTimeUS, nullable=False)
    updated_at = sa.Column(DateTimeUS, nullable=True)

    evidence = orm.relationship(
        'Evidence', order_by='Evidence.position', lazy='raise',
        cascade='all, delete-orphan', passive_deletes=True)
    refs = orm.relationship(
        'AnomalyRef', lazy='raise', cascade='all, delete-orphan',
        passive_deletes=True)


class Evidence(Base):
    """One evidence line (log record or notification) of an anomaly."""

    __tablename__ = 'anomaly_evidence'
    __table_args__ = (
        sa.UniqueConstraint('anomaly_id', 'position',
                            name='uniq_anomaly_evidence0anomaly_id0position'),
        _TABLE_ARGS,
    )

    id = sa.Column(sa.Integer, primary_key=True, autoincrement=True)
    anomaly_id = sa.Column(
        sa.Integer, sa.ForeignKey('anomalies.id', ondelete='CASCADE'),
        nullable=False)
    position = sa.Column(sa.Integer, nullable=False)
    timestamp = sa.Column(DateTimeUS, nullable=True)
    stream = sa.Column(sa.String(NAME_LEN), nullable=False)
    level = sa.Column(sa.String(16), nullable=True)
    logger = sa.Column(sa.String(NAME_LEN), nullable=True)
    message = sa.Column(LongText, nullable=False)
    request_id = sa.Column(sa.String(ID_LEN), nullable=True)
    project_id = sa.Column(sa.String(ID_LEN), nullable=True)
    instance_id = sa.Column(sa.String(ID_LEN), nullable=True)
    template_id = sa.Column(sa.Integer, nullable=True)
    lineno = sa.Column(sa.Integer, nullable=False, default=0)


class AnomalyRef(Base):
    """A request id or instance id an anomaly refers to, for filtering."""

    __tablename__ = 'anomaly_refs'
    __table_args__ = (
        sa.Index('ix_anomaly_refs_kind_value', 'kind', 'value',
                 'anomaly_id'),
        _TABLE_ARGS,
    )

    anomaly_id = sa.Column(
        sa.Integer, sa.ForeignKey('anomalies.id', ondelete='CASCADE'),
        primary_key=True)
    kind = sa.Column(sa.String(16), primary_key=True)
    value = sa.Column(sa.String(ID_LEN), primary_key=True)


class Explanation(Base):
    """The root-cause explanation of one anomaly, as a JSON document."""

    __tablename__ = 'explanations'
    __table_args__ = (
        sa.UniqueConstraint('anomaly_id',
                            name='uniq_explanations0anomaly_id'),
        _TABLE_ARGS,
    )

    id = sa.Column(sa.Integer, primary_key=True, autoincrement=True)
    anomaly_id = sa.Column(
        sa.Integer, sa.ForeignKey('anomalies.id', ondelete='CASCADE'),
        nullable=False)
    driver = sa.Column(sa.String(DETECTOR_LEN), nullable=False)
    created_at = sa.Column(DateTimeUS, nullable=False)
    body = sa.Column(LongText, nullable=False)


class Feedback(Base):
    """An operator's verdict on the explained cause of an anomaly.

    ``confirmed``: the explanation's top suspect was the cause;
    ``corrected``: the cause was ``module``/``function`` (``cause`` in
    words). The knowledge base indexes it (``logrca-manage kb build``).
    """

    __tablename__ = 'feedback'
    __table_args__ = (
        sa.UniqueConstraint('uuid', name='uniq_feedback0uuid'),
        sa.Index('ix_feedback_anomaly_created', 'anomaly_id', 'created_at',
                 'id'),
        sa.Index('ix_feedback_project_created', 'project_id', 'created_at',
                 'id'),
        _TABLE_ARGS,
    )

    id = sa.Column(sa.Integer, primary_key=True, autoincrement=True)
    uuid = sa.Column(sa.String(UUID_LEN), nullable=False)
    anomaly_id = sa.Column(
        sa.Integer, sa.ForeignKey('anomalies.id', ondelete='CASCADE'),
        nullable=False)
    user_id = sa.Column(sa.String(ID_LEN), nullable=True)
    project_id = sa.Column(sa.String(ID_LEN), nullable=True)
    verdict = sa.Column(sa.String(STATUS_LEN), nullable=False)
    module = sa.Column(sa.String(NAME_LEN), nullable=True)
    function = sa.Column(sa.String(NAME_LEN), nullable=True)
    operation = sa.Column(sa.String(DETECTOR_LEN), nullable=True)
    cause = sa.Column(sa.Text, nullable=True)
    comment = sa.Column(sa.Text, nullable=True)
    created_at = sa.Column(DateTimeUS, nullable=False)


class Conversation(Base):
    """A conversation of questions and answers (``POST /v1/questions``).

    ``state`` is the JSON of :class:`logrca.rca.questions.Conversation`.
    """

    __tablename__ = 'conversations'
    __table_args__ = (
        sa.Index('ix_conversations_project_created', 'project_id',
                 'created_at'),
        _TABLE_ARGS,
    )

    id = sa.Column(sa.String(UUID_LEN), primary_key=True)
    project_id = sa.Column(sa.String(ID_LEN), nullable=True)
    user_id = sa.Column(sa.String(ID_LEN), nullable=True)
    created_at = sa.Column(DateTimeUS, nullable=False)
    updated_at = sa.Column(DateTimeUS, nullable=True)
    state = sa.Column(LongText, nullable=False)
