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

"""Database API: anomalies, evidence, explanations, feedback (oslo.db)."""

import datetime
import json
import math
import os
import uuid as uuid_mod

import sqlalchemy as sa
from oslo_db import api as oslo_db_api
from oslo_db import exception as db_exc
from oslo_db.sqlalchemy import enginefacade
from oslo_log import log
from oslo_serialization import jsonutils
from oslo_utils import timeutils

from logrca import masking
from logrca.db import exceptions
from logrca.db import models
from logrca.detectors import anomaly as anomaly_mod

LOG = log.getLogger(__name__)

UTC = datetime.UTC

# Filters understood by anomaly_get_all() and anomaly_count().
FILTERS = ('service', 'host', 'detector', 'status', 'since', 'until',
           'min_score', 'instance_id', 'request_id', 'project_id',
           'project_id_or_null')
# Columns anomaly_get_all() can sort on.
SORT_KEYS = ('raised_at', 'score', 'created_at', 'updated_at', 'start_time',
             'end_time', 'detector', 'service', 'host', 'status',
             'project_id', 'id')
SORT_DIRS = ('asc', 'desc')
DEFAULT_SORT_KEYS = ('raised_at', 'id')
DEFAULT_SORT_DIRS = ('desc', 'desc')
# Values accepted by anomaly_update().
UPDATABLE = ('status', 'status_changed_by', 'status_comment')
MAX_COMMENT_CHARS = 8192
MAX_REASON_CHARS = 8192
# Filters understood by feedback_get_all().
FEEDBACK_FILTERS = ('anomaly_id', 'uuid', 'project_id', 'verdict')
# Values accepted by feedback_create().
FEEDBACK_VALUES = ('user_id', 'project_id', 'verdict', 'module', 'function',
                   'operation', 'cause', 'comment')
# The columns of a listed anomaly: all but the internal primary key.
LIST_COLUMNS = tuple(c for c in models.Anomaly.__table__.c if c.name != 'id')
# The marker's row in a keyset page's statement (built once: an alias
# proxies every column).
_MARKER = models.Anomaly.__table__.alias('marker')
# Anomalies stored per transaction, and anomalies deleted per purge
# transaction: keeps transactions short on a busy MariaDB.
_STORE_CHUNK = 200
_PURGE_CHUNK = 1000


def _sqlite_locked(exc):
    """True for SQLite's "database is locked" (another writer won)."""
    # oslo.db passes OperationalErrors through untranslated.
    return (isinstance(exc, (sa.exc.OperationalError, db_exc.DBError))
            and 'database is locked' in str(exc))


# Retry a whole transaction on MySQL/PostgreSQL deadlocks and on SQLite's
# lock conflicts: a transaction that read first cannot wait for another
# writer (SQLite answers "database is locked" at once), so it starts again.
_retry = oslo_db_api.wrap_db_retry(
    max_retries=10, retry_interval=0.05, inc_retry_interval=True,
    max_retry_interval=1, retry_on_deadlock=True,
    exception_checker=_sqlite_locked, jitter=True)


def _sqlite_wal(engine):
    """Readers never block the writer, nor the writer readers, on SQLite."""
    if engine.dialect.name != 'sqlite' or engine.url.database in (
            None, '', ':memory:'):
        return

    @sa.event.listens_for(engine, 'connect')
    def _connect(dbapi_connection, _record):
        dbapi_connection.execute('PRAGMA journal_mode=WAL')


def get_instance(conf, connection=None):
    """Return a :class:`Connection` to the database of ``conf``."""
    return Connection(conf, connection=connection)


def _prepare_url(url):
    """Make the directory of a SQLite file; ask MySQL for utf8mb4."""
    parsed = sa.engine.make_url(url)
    backend = parsed.get_backend_name()
    if backend == 'sqlite':
        path = parsed.database
        if path and path != ':memory:' and not path.startswith('file:'):
            os.makedirs(os.path.dirname(os.path.abspath(path)),
                        exist_ok=True)
    elif backend == 'mysql' and 'charset' not in parsed.query:
        # oslo.db would ask for utf8 (3-byte) and lose emoji and other
        # 4-byte characters found in log lines.
        parsed = parsed.update_query_dict({'charset': 'utf8mb4'})
    return parsed.render_as_string(hide_password=False)


def to_datetime(value):
    """Naive UTC datetime from an epoch float, a datetime or ISO 8601 text.

    :raises ValueError: for anything else.
    """
    if value is None:
        return None
    if isinstance(value, datetime.datetime):
        if value.tzinfo is not None:
            value = value.astimezone(UTC).replace(tzinfo=None)
        return value
    if isinstance(value, bool):
        raise ValueError('not a time: %r' % (value,))
    if isinstance(value, (int, float)):
        if not math.isfinite(value):
            raise ValueError('not a time: %r' % (value,))
        try:
            return datetime.datetime.fromtimestamp(value, UTC).replace(
                tzinfo=None)
        except (OverflowError, OSError, ValueError) as exc:
            raise ValueError('time out of range: %r' % (value,)) from exc
    if isinstance(value, str):
        return to_datetime(datetime.datetime.fromisoformat(value))
    raise ValueError('not a time: %r' % (value,))


def _out_time(value):
    return value.replace(tzinfo=UTC) if value is not None else None


def _clip(value, size):
    if value is None:
        return None
    value = str(value)
    return value[:size]


def _mask(value):
    return masking.mask(value) if isinstance(value, str) else value


def _mask_json(value):
    """Mask every string inside a JSON-like structure."""
    if isinstance(value, str):
        return masking.mask(value)
    if isinstance(value, dict):
        return {k: _mask_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_mask_json(v) for v in value]
    return value


def _loads(text, default):
    if text is None:
        return default
    try:
        return json.loads(text)
    except ValueError:
        return default


def prepare_anomaly(anomaly, max_evidence_lines, max_message_chars=None):
    """Validate an anomaly and turn it into column values.

    :param anomaly: an :class:`~logrca.detectors.anomaly.Anomaly` or its
        dict (as sent over RPC).
    :returns: ``(values, evidence_values, refs)``; every text is masked and
        clipped to its column.
    :raises ValueError: when the anomaly is malformed.
    """
    if isinstance(anomaly, dict):
        anomaly = anomaly_mod.Anomaly.from_dict(anomaly)
    if not isinstance(anomaly, anomaly_mod.Anomaly):
        raise ValueError('not an anomaly: %s' % type(anomaly).__name__)
    if not isinstance(anomaly.detector, str) or not anomaly.detector:
        raise ValueError('anomaly without a detector name')
    if not isinstance(anomaly.uuid, str) or len(anomaly.uuid) != 36:
        raise ValueError('bad anomaly uuid: %r' % (anomaly.uuid,))
    try:
        score = float(anomaly.score)
        threshold = (float(anomaly.threshold)
                     if anomaly.threshold is not None else None)
    except (TypeError, ValueError) as exc:
        raise ValueError('bad score or threshold: %s' % exc) from exc
    if not math.isfinite(score) or (threshold is not None
                                    and not math.isfinite(threshold)):
        raise ValueError('score and threshold must be finite numbers')
    start = to_datetime(anomaly.start_time)
    end = to_datetime(anomaly.end_time)
    raised = to_datetime(anomaly.raised_at)
    if raised is None:
        raised = end or start or timeutils.utcnow()
    session_key = list(anomaly.session_key or ())
    request_ids = [str(r) for r in anomaly.request_ids or ()]
    instance_ids = [str(i) for i in anomaly.instance_ids or ()]
    evidence = []
    for position, item in enumerate(
            (anomaly.evidence or [])[:max_evidence_lines]):
        message = item.message if isinstance(item.message, str) else str(
            item.message)
        if max_message_chars and len(message) > max_message_chars:
            message = message[:max_message_chars] + ' [truncated]'
        evidence.append({
            'position': position,
            'timestamp': to_datetime(item.timestamp),
            'stream': _clip(_mask(item.stream), models.NAME_LEN) or '',
            'level': _clip(item.level, 16),
            'logger': _clip(_mask(item.logger), models.NAME_LEN),
            'message': masking.mask(message),
            'request_id': _clip(item.request_id, models.ID_LEN),
            'project_id': _clip(item.project_id, models.ID_LEN),
            'instance_id': _clip(item.instance_id, models.ID_LEN),
            'template_id': (int(item.template_id)
                            if item.template_id is not None else None),
            'lineno': int(item.lineno or 0),
        })
        if item.request_id and item.request_id not in request_ids:
            request_ids.append(str(item.request_id))
        if item.instance_id and item.instance_id not in instance_ids:
            instance_ids.append(str(item.instance_id))
    refs = set()
    for kind, ids in ((models.REF_REQUEST, request_ids),
                      (models.REF_INSTANCE, instance_ids)):
        for value in ids:
            if 0 < len(value) <= models.ID_LEN:
                refs.add((kind, value))
    values = {
        'uuid': anomaly.uuid,
        'detector': _clip(anomaly.detector, models.DETECTOR_LEN),
        'score': score,
        'threshold': threshold,
        'reason': masking.mask(_clip(anomaly.reason, MAX_REASON_CHARS)
                               or ''),
        'session_kind': _clip(session_key[0], 32) if session_key else None,
        'session_key': masking.mask(json.dumps(session_key, default=str)),
        'start_time': start,
        'end_time': end,
        'raised_at': raised,
        'service': _clip(anomaly.service, models.NAME_LEN),
        'host': _clip(anomaly.host, models.NAME_LEN),
        'project_id': _clip(anomaly.project_id, models.ID_LEN),
        'user_id': _clip(anomaly.user_id, models.ID_LEN),
        'request_ids': json.dumps(request_ids),
        'instance_ids': json.dumps(instance_ids),
        'status': models.STATUS_NEW,
    }
    return values, evidence, sorted(refs)


def anomaly_to_dict(row):
    """The dict of an anomaly row, times as aware UTC datetimes.

    :param row: an ORM object or a Core row of :data:`LIST_COLUMNS`.
    """
    # Written out (no loop over the columns): it runs for every row of
    # every page the API lists.
    start_time, end_time, raised_at = (row.start_time, row.end_time,
                                       row.raised_at)
    changed_at, created_at, updated_at = (
        row.status_changed_at, row.created_at, row.updated_at)
    return {
        'uuid': row.uuid,
        'detector': row.detector,
        'score': row.score,
        'threshold': row.threshold,
        'reason': row.reason,
        'session_kind': row.session_kind,
        'session_key': _loads(row.session_key, []),
        'start_time': start_time and start_time.replace(tzinfo=UTC),
        'end_time': end_time and end_time.replace(tzinfo=UTC),
        'raised_at': raised_at and raised_at.replace(tzinfo=UTC),
        'service': row.service,
        'host': row.host,
        'project_id': row.project_id,
        'user_id': row.user_id,
        'request_ids': _loads(row.request_ids, []),
        'instance_ids': _loads(row.instance_ids, []),
        'status': row.status,
        'status_changed_by': row.status_changed_by,
        'status_changed_at': changed_at and changed_at.replace(tzinfo=UTC),
        'status_comment': row.status_comment,
        'created_at': created_at and created_at.replace(tzinfo=UTC),
        'updated_at': updated_at and updated_at.replace(tzinfo=UTC),
    }


def evidence_to_dict(row):
    """The dict of an evidence row."""
    return {
        'position': row.position,
        'timestamp': _out_time(row.timestamp),
        'stream': row.stream,
        'level': row.level,
        'logger': row.logger,
        'message': row.message,
        'request_id': row.request_id,
        'project_id': row.project_id,
        'instance_id': row.instance_id,
        'template_id': row.template_id,
        'lineno': row.lineno,
    }


class Connection:
    """The logrca database, through its own oslo.db transaction context.

    Each instance owns an ``enginefacade`` transaction context configured
    from ``conf.database`` (or from ``connection``, a URL that overrides
    it), so one process can use several databases (tests do).
    """

    def __init__(self, conf, connection=None):
        self.conf = conf
        options = dict(conf.database.items())
        self.url = _prepare_url(connection or options['connection'])
        options['connection'] = self.url
        # SQLite enforces ON DELETE CASCADE only when asked.
        options['sqlite_fk'] = True
        self._context = enginefacade.transaction_context()
        self._context.configure(**options)
        self._context.append_on_engine_create(_sqlite_wal)
        self.max_evidence_lines = conf.conductor.max_evidence_lines
        self.max_message_chars = conf.conductor.max_evidence_chars

    # The enginefacade attaches its thread-local transaction state to this
    # object: nested calls in one thread join the outer transaction.
    def _reader(self):
        return self._context.reader.using(self)

    def _core_reader(self):
        # A Core connection: no ORM session to set up and tear down for
        # reads that only return rows.
        return self._context.reader.connection.using(self)

    def _writer(self):
        return self._context.writer.using(self)

    def get_engine(self):
        """The writer engine (for migrations and tests)."""
        return self._context.writer.get_engine()

    def dispose(self):
        """Close the pooled connections."""
        if self._context.is_started:
            self._context.dispose_pool()

    # -- storing --------------------------------------------------------

    def check_anomaly(self, anomaly):
        """Raise ValueError when ``anomaly`` could not be stored."""
        prepare_anomaly(anomaly, self.max_evidence_lines,
                        self.max_message_chars)

    def store_anomalies(self, anomalies):
        """Store anomalies not stored yet; return the uuids newly stored.

        Idempotent: an anomaly whose uuid is stored already is skipped, also
        when another conductor stores it at the same moment.

        :param anomalies: :class:`~logrca.detectors.anomaly.Anomaly` objects
            or their dicts.
        :raises ValueError: when one is malformed; nothing is stored then.
        """
        prepared = []
        seen = set()
        for anomaly in anomalies:
            item = prepare_anomaly(anomaly, self.max_evidence_lines,
                                   self.max_message_chars)
            if item[0]['uuid'] not in seen:
                seen.add(item[0]['uuid'])
                prepared.append(item)
        stored = []
        for start in range(0, len(prepared), _STORE_CHUNK):
            chunk = prepared[start:start + _STORE_CHUNK]
            try:
                stored.extend(self._store_batch(chunk))
            except db_exc.DBDuplicateEntry:
                # Another writer stored one of them in between: store them
                # one by one, skipping the ones already there.
                LOG.debug('Concurrent insert of one of %d anomalies; '
                          'storing them one by one', len(chunk))
                for item in chunk:
                    try:
                        stored.extend(self._store_batch([item]))
                    except db_exc.DBDuplicateEntry:
                        LOG.debug('Anomaly %s stored concurrently',
                                  item[0]['uuid'])
        return stored

    @_retry
    def _store_batch(self, prepared):
        now = timeutils.utcnow()
        with self._writer() as session:
            uuids = [values['uuid'] for values, _e, _r in prepared]
            existing = set(session.scalars(
                sa.select(models.Anomaly.uuid).where(
                    models.Anomaly.uuid.in_(uuids))))
            new = []
            for values, evidence, refs in prepared:
                if values['uuid'] in existing:
                    continue
                row = models.Anomaly(created_at=now, **values)
                row.evidence = [models.Evidence(**e) for e in evidence]
                row.refs = [models.AnomalyRef(kind=k, value=v)
                            for k, v in refs]
                session.add(row)
                new.append(values['uuid'])
            session.flush()
        return new

    # -- reading --------------------------------------------------------

    def anomaly_get(self, uuid):
        """The anomaly with its ``evidence`` list, or None."""
        found = self.anomaly_get_many([uuid])
        return found[0] if found else None

    def anomaly_get_many(self, uuids):
        """The anomalies of ``uuids`` with their ``evidence`` lists.

        Two queries whatever the number of anomalies; the result keeps the
        order of ``uuids`` and leaves out those not stored.
        """
        uuids = list(dict.fromkeys(uuids))
        if not uuids:
            return []
        with self._reader() as session:
            rows = session.scalars(sa.select(models.Anomaly).where(
                models.Anomaly.uuid.in_(uuids))).all()
            results = {}
            by_id = {}
            for row in rows:
                result = anomaly_to_dict(row)
                result['evidence'] = []
                results[row.uuid] = result
                by_id[row.id] = result
            if by_id:
                evidence = session.scalars(
                    sa.select(models.Evidence)
                    .where(models.Evidence.anomaly_id.in_(list(by_id)))
                    .order_by(models.Evidence.anomaly_id,
                              models.Evidence.position))
                for e in evidence:
                    by_id[e.anomaly_id]['evidence'].append(
                        evidence_to_dict(e))
        return [results[u] for u in uuids if u in results]

    def _apply_filters(self, conn, stmt, filters):
        model = models.Anomaly
        for key, value in (filters or {}).items():
            if key not in FILTERS:
                raise exceptions.InvalidFilter('unknown filter: %s' % key)
            if value is None:
                continue
            if key in ('service', 'host', 'detector', 'status'):
                column = getattr(model, key)
                if isinstance(value, (list, tuple, set, frozenset)):
                    stmt = stmt.where(column.in_([str(v) for v in value]))
                else:
                    stmt = stmt.where(column == str(value))
            elif key in ('since', 'until'):
                try:
                    when = to_datetime(value)
                except ValueError as exc:
                    raise exceptions.InvalidFilter(
                        'filter %s: %s' % (key, exc)) from exc
                stmt = stmt.where(model.raised_at >= when if key == 'since'
                                  else model.raised_at < when)
            elif key == 'min_score':
                try:
                    score = float(value)
                except (TypeError, ValueError) as exc:
                    raise exceptions.InvalidFilter(
                        'filter min_score: %s' % exc) from exc
                stmt = stmt.where(model.score >= score)
            elif key == 'project_id':
                stmt = stmt.where(model.project_id == str(value))
            elif key == 'project_id_or_null':
                stmt = stmt.where(sa.or_(model.project_id == str(value),
                                         model.project_id.is_(None)))
            else:
                kind = (models.REF_REQUEST if key == 'request_id'
                        else models.REF_INSTANCE)
                # Two steps rather than a sub-query: the few matching ids
                # first, so MariaDB never scans the sort index probing a
                # dependent sub-query on every row.
                ids = list(conn.scalars(
                    sa.select(models.AnomalyRef.anomaly_id).where(
                        models.AnomalyRef.kind == kind,
                        models.AnomalyRef.value == str(value))))
                stmt = stmt.where(model.id.in_(ids) if ids else sa.false())
        return stmt

    @staticmethod
    def _sort_spec(sort_keys, sort_dirs):
        keys = list(sort_keys or DEFAULT_SORT_KEYS)
        if sort_dirs:
            dirs = list(sort_dirs)
        elif sort_keys:
            dirs = []
        else:
            dirs = list(DEFAULT_SORT_DIRS)
        for key in keys:
            if key not in SORT_KEYS:
                raise exceptions.InvalidSortKey(
                    'cannot sort on %r; sort keys: %s'
                    % (key, ', '.join(SORT_KEYS)))
        if len(set(keys)) != len(keys):
            raise exceptions.InvalidSortKey('repeated sort key')
        if len(dirs) > len(keys):
            raise exceptions.InvalidSortKey('more sort directions than keys')
        for direction in dirs:
            if direction not in SORT_DIRS:
                raise exceptions.InvalidSortKey(
                    'bad sort direction %r; use asc or desc' % (direction,))
        dirs += [dirs[-1] if dirs else 'desc'] * (len(keys) - len(dirs))
        if 'id' not in keys:
            # A unique tie-breaker keeps paging stable.
            keys.append('id')
            dirs.append(dirs[-1])
        return keys, dirs

    def _order_and_page(self, conn, stmt, sort_keys, sort_dirs, marker):
        # Keyset paging written here rather than oslo.db's paginate_query:
        # that one works on legacy Query objects and builds only the
        # OR-chain, which MariaDB cannot use as an index range; the leading
        # "k1 <= m1" below lets it start the scan at the marker.
        model = models.Anomaly
        keys, dirs = self._sort_spec(sort_keys, sort_dirs)
        postgres = conn.dialect.name == 'postgresql'
        for key, direction in zip(keys, dirs):
            column = getattr(model, key)
            order = column.asc() if direction == 'asc' else column.desc()
            if postgres and model.__table__.c[key].nullable:
                # NULLs sort as the smallest value, as MySQL and SQLite do.
                # (Not said of NOT NULL columns: ORDER BY raised_at DESC
                # NULLS LAST would not match the index's order.)
                order = (order.nulls_first() if direction == 'asc'
                         else order.nulls_last())
            stmt = stmt.order_by(order)
        if marker is None:
            return stmt
        # The marker's sort values are read by the page's own statement (one
        # round trip), as constants the index range can start from: MariaDB
        # reads a joined row found by a unique key before planning, and
        # pushes conditions on it down to the index; PostgreSQL (and
        # SQLite) evaluate an uncorrelated sub-query once. An unknown marker
        # gives an empty page, which anomaly_get_all tells from the end of
        # the list.
        table = model.__table__
        marked = _MARKER
        if conn.dialect.name == 'mysql':
            stmt = stmt.join(marked, marked.c.uuid == str(marker))

            def marker_value(key):
                return marked.c[key]
        else:
            def marker_value(key):
                return sa.select(marked.c[key]).where(
                    marked.c.uuid == str(marker)).scalar_subquery()

        alternatives = []
        equal_so_far = []
        lead = None
        for key, direction in zip(keys, dirs):
            column = getattr(model, key)
            value = marker_value(key)
            nullable = table.c[key].nullable
            # NULL sorts as the smallest value.
            if direction == 'asc':
                after = column > value
                if nullable:
                    after = sa.or_(after, sa.and_(column.is_not(None),
                                                  value.is_(None)))
            else:
                after = column < value
                if nullable:
                    after = sa.or_(after, sa.and_(column.is_(None),
                                                  value.is_not(None)))
            equal = column == value
            if nullable:
                equal = sa.or_(equal, sa.and_(column.is_(None),
                                              value.is_(None)))
            if lead is None:
                # Implied by the alternatives; written out so that the
                # database starts the index range at the marker.
                if direction == 'asc':
                    lead = column >= value
                    if nullable:
                        lead = sa.or_(lead, value.is_(None))
                else:
                    lead = column <= value
                    if nullable:
                        lead = sa.or_(lead, column.is_(None))
            alternatives.append(sa.and_(*equal_so_far, after))
            equal_so_far.append(equal)
        return stmt.where(lead, sa.or_(*alternatives))

    def anomaly_get_all(self, filters=None, limit=None, marker=None,
                        sort_keys=None, sort_dirs=None):
        """List anomalies (without evidence), keyset-paged.

        :param filters: dict of :data:`FILTERS`; a ``None`` value means no
            filter. ``project_id``: that project only; ``project_id_or_null``:
            that project's plus those with no project.
        :param limit: page size, or None for all.
        :param marker: uuid of the last anomaly of the previous page.
        :param sort_keys: keys of :data:`SORT_KEYS`; default raised_at then
            id, descending. ``id`` is appended as a tie-breaker.
        :param sort_dirs: ``asc``/``desc`` per key; missing ones repeat the
            last given.
        :raises InvalidFilter, InvalidSortKey, InvalidMarker:
        """
        if limit is not None and (not isinstance(limit, int)
                                  or isinstance(limit, bool) or limit < 0):
            raise exceptions.InvalidParameter(
                'limit must be a non-negative integer')
        with self._core_reader() as conn:
            # Core rows on a Core connection, not ORM objects in a session:
            # a page is only turned into dicts.
            stmt = self._apply_filters(conn, sa.select(*LIST_COLUMNS),
                                       filters)
            stmt = self._order_and_page(conn, stmt, sort_keys, sort_dirs,
                                        marker)
            if limit is not None:
                stmt = stmt.limit(limit)
            rows = conn.execute(stmt).all()
            if not rows and marker is not None and conn.scalar(
                    sa.select(models.Anomaly.id).where(
                        models.Anomaly.uuid == str(marker))) is None:
                raise exceptions.InvalidMarker('marker %s not found'
                                               % marker)
            return [anomaly_to_dict(row) for row in rows]

    def anomaly_count(self, filters=None):
        """Number of anomalies matching ``filters`` (as anomaly_get_all)."""
        with self._core_reader() as conn:
            stmt = self._apply_filters(
                conn, sa.select(sa.func.count()).select_from(models.Anomaly),
                filters)
            return conn.scalar(stmt)

    # -- updating -------------------------------------------------------

    @_retry
    def anomaly_update(self, uuid, values):
        """Change the status of an anomaly; return it, with its evidence.

        :param values: ``status`` (one of :data:`models.STATUSES`),
            ``status_changed_by``, ``status_comment``. A status change also
            sets ``status_changed_at``.
        :raises AnomalyNotFound, InvalidValue:
        """
        unknown = set(values) - set(UPDATABLE)
        if unknown:
            raise exceptions.InvalidValue(
                'cannot update %s' % ', '.join(sorted(unknown)))
        changes = {}
        if 'status' in values:
            if values['status'] not in models.STATUSES:
                raise exceptions.InvalidValue(
                    'bad status %r; one of %s'
                    % (values['status'], ', '.join(models.STATUSES)))
            changes['status'] = values['status']
        if values.get('status_changed_by') is not None:
            changes['status_changed_by'] = _clip(
                values['status_changed_by'], models.NAME_LEN)
        if 'status_comment' in values:
            comment = values['status_comment']
            if comment is not None:
                if not isinstance(comment, str):
                    raise exceptions.InvalidValue('comment must be text')
                if len(comment) > MAX_COMMENT_CHARS:
                    raise exceptions.InvalidValue(
                        'comment longer than %d characters'
                        % MAX_COMMENT_CHARS)
                comment = masking.mask(comment)
            changes['status_comment'] = comment
        now = timeutils.utcnow()
        changes['updated_at'] = now
        if 'status' in changes:
            changes['status_changed_at'] = now
        with self._writer() as session:
            result = session.execute(
                sa.update(models.Anomaly)
                .where(models.Anomaly.uuid == uuid)
                .values(**changes))
            if result.rowcount == 0:
                raise exceptions.AnomalyNotFound(uuid)
        return self.anomaly_get(uuid)

    # -- explanations ---------------------------------------------------

    def explanation_get(self, uuid):
        """The explanation of an anomaly, or None.

        :returns: dict with ``anomaly_uuid``, ``driver``, ``created_at`` and
            ``body`` (the JSON document as saved).
        """
        with self._reader() as session:
            row = session.execute(
                sa.select(models.Explanation)
                .join(models.Anomaly,
                      models.Anomaly.id == models.Explanation.anomaly_id)
                .where(models.Anomaly.uuid == uuid)).scalars().first()
            if row is None:
                return None
            return {'anomaly_uuid': uuid, 'driver': row.driver,
                    'created_at': _out_time(row.created_at),
                    'body': _loads(row.body, None)}

    @_retry
    def explanation_save(self, uuid, driver, body):
        """Save (or replace) the explanation of an anomaly; return it.

        :param body: a JSON-serialisable document; its strings are masked.
        :raises AnomalyNotFound:
        """
        text = jsonutils.dumps(_mask_json(jsonutils.to_primitive(
            body, convert_instances=True)))
        now = timeutils.utcnow()
        try:
            self._explanation_write(uuid, driver, text, now)
        except db_exc.DBDuplicateEntry:
            # Saved concurrently: this one replaces it.
            self._explanation_write(uuid, driver, text, now)
        return self.explanation_get(uuid)

    def _explanation_write(self, uuid, driver, text, now):
        with self._writer() as session:
            anomaly_id = session.scalar(sa.select(models.Anomaly.id).where(
                models.Anomaly.uuid == uuid))
            if anomaly_id is None:
                raise exceptions.AnomalyNotFound(uuid)
            row = session.scalars(sa.select(models.Explanation).where(
                models.Explanation.anomaly_id == anomaly_id)).first()
            if row is None:
                session.add(models.Explanation(
                    anomaly_id=anomaly_id, driver=_clip(
                        driver, models.DETECTOR_LEN),
                    created_at=now, body=text))
            else:
                row.driver = _clip(driver, models.DETECTOR_LEN)
                row.created_at = now
                row.body = text
            session.flush()

    # -- purging --------------------------------------------------------

    def anomaly_purge(self, older_than):
        """Delete anomalies raised before ``older_than``, and all they own.

        :param older_than: a datetime (naive means UTC) or epoch seconds.
        :returns: the number of anomalies deleted.
        """
        cutoff = to_datetime(older_than)
        total = 0
        while True:
            deleted = self._purge_chunk(cutoff)
            total += deleted
            if deleted < _PURGE_CHUNK:
                break
        LOG.debug('Purged %d anomalies raised before %s', total, cutoff)
        return total

    @_retry
    def _purge_chunk(self, cutoff):
        with self._writer() as session:
            ids = list(session.scalars(
                sa.select(models.Anomaly.id)
                .where(models.Anomaly.raised_at < cutoff)
                .order_by(models.Anomaly.raised_at)
                .limit(_PURGE_CHUNK)))
            if not ids:
                return 0
            # Children first: no reliance on ON DELETE CASCADE being on.
            for model in (models.Evidence, models.AnomalyRef,
                          models.Explanation, models.Feedback):
                session.execute(sa.delete(model).where(
                    model.anomaly_id.in_(ids)))
            session.execute(sa.delete(models.Anomaly).where(
                models.Anomaly.id.in_(ids)))
        return len(ids)

    # -- feedback -------------------------------------------------------

    @_retry
    def feedback_create(self, anomaly_uuid, values):
        """Store an operator's verdict on the cause of an anomaly.

        :param values: ``verdict`` (one of :data:`models.VERDICTS`),
            ``user_id``, ``project_id`` (who), ``module``, ``function``,
            ``operation``, ``cause`` (the cause in words), ``comment``.
            A ``corrected`` verdict needs ``module`` or ``cause``. Texts are
            masked.
        :returns: the stored feedback (see :meth:`feedback_get_all`).
        :raises AnomalyNotFound, InvalidValue:
        """
        unknown = set(values) - set(FEEDBACK_VALUES)
        if unknown:
            raise exceptions.InvalidValue(
                'unknown feedback field(s): %s' % ', '.join(sorted(unknown)))
        verdict = values.get('verdict')
        if verdict not in models.VERDICTS:
            raise exceptions.InvalidValue(
                'bad verdict %r; one of %s'
                % (verdict, ', '.join(models.VERDICTS)))
        row = {'verdict': verdict}
        limits = {'user_id': models.ID_LEN, 'project_id': models.ID_LEN,
                  'module': models.NAME_LEN, 'function': models.NAME_LEN,
                  'operation': models.DETECTOR_LEN,
                  'cause': MAX_COMMENT_CHARS, 'comment': MAX_COMMENT_CHARS}
        for key, size in limits.items():
            value = values.get(key)
            if value is None:
                row[key] = None
                continue
            if not isinstance(value, str):
                raise exceptions.InvalidValue('%s must be text' % key)
            if len(value) > size:
                raise exceptions.InvalidValue(
                    '%s longer than %d characters' % (key, size))
            row[key] = masking.mask(value) if key in (
                'cause', 'comment', 'module', 'function') else value
        if verdict == models.VERDICT_CORRECTED and not (
                row['module'] or row['cause']):
            raise exceptions.InvalidValue(
                'a corrected cause needs a module or a cause')
        row['uuid'] = str(uuid_mod.uuid4())
        row['created_at'] = timeutils.utcnow()
        with self._writer() as session:
            anomaly_id = session.scalar(sa.select(models.Anomaly.id).where(
                models.Anomaly.uuid == anomaly_uuid))
            if anomaly_id is None:
                raise exceptions.AnomalyNotFound(anomaly_uuid)
            session.add(models.Feedback(anomaly_id=anomaly_id, **row))
        return self.feedback_get_all({'uuid': row['uuid']})[0]

    def feedback_get_all(self, filters=None, limit=None):
        """Stored feedback, oldest first.

        :param filters: dict of :data:`FEEDBACK_FILTERS` (``anomaly_id`` is
            the anomaly's uuid); a ``None`` value means no filter.
        :returns: dicts with ``id``, ``anomaly_id`` (the anomaly's uuid),
            ``user_id``, ``project_id``, ``verdict``, ``module``,
            ``function``, ``operation``, ``cause``, ``comment``,
            ``created_at`` -- what ``logrca-manage kb build`` reads.
        :raises InvalidFilter:
        """
        stmt = sa.select(models.Feedback, models.Anomaly.uuid).join(
            models.Anomaly, models.Anomaly.id == models.Feedback.anomaly_id)
        for key, value in (filters or {}).items():
            if value is None:
                continue
            if key == 'anomaly_id':
                stmt = stmt.where(models.Anomaly.uuid == str(value))
            elif key == 'uuid':
                stmt = stmt.where(models.Feedback.uuid == str(value))
            elif key in ('project_id', 'verdict'):
                stmt = stmt.where(
                    getattr(models.Feedback, key) == str(value))
            else:
                raise exceptions.InvalidFilter(
                    'unknown filter: %s' % key)
        stmt = stmt.order_by(models.Feedback.created_at,
                             models.Feedback.id)
        if limit is not None:
            stmt = stmt.limit(int(limit))
        with self._reader() as session:
            return [{
                'id': fb.uuid, 'anomaly_id': anomaly_uuid,
                'user_id': fb.user_id, 'project_id': fb.project_id,
                'verdict': fb.verdict, 'module': fb.module,
                'function': fb.function, 'operation': fb.operation,
                'cause': fb.cause, 'comment': fb.comment,
                'created_at': _out_time(fb.created_at),
            } for fb, anomaly_uuid in session.execute(stmt)]

    # -- conversations --------------------------------------------------

    @_retry
    def conversation_save(self, ident, state, project_id=None,
                          user_id=None):
        """Create or replace the state of a conversation; return it.

        :param state: the JSON-serialisable conversation state; its strings
            are masked. Owner (``project_id``, ``user_id``) is set on
            creation only.
        """
        text = jsonutils.dumps(_mask_json(state))
        now = timeutils.utcnow()
        with self._writer() as session:
            row = session.get(models.Conversation, str(ident))
            if row is None:
                session.add(models.Conversation(
                    id=str(ident), project_id=_clip(project_id,
                                                    models.ID_LEN),
                    user_id=_clip(user_id, models.ID_LEN), created_at=now,
                    updated_at=now, state=text))
            else:
                row.state = text
                row.updated_at = now
        return self.conversation_get(ident)

    def conversation_get(self, ident):
        """A conversation as a dict (``state`` decoded), or None."""
        with self._reader() as session:
            row = session.get(models.Conversation, str(ident))
            if row is None:
                return None
            return {'id': row.id, 'project_id': row.project_id,
                    'user_id': row.user_id,
                    'created_at': _out_time(row.created_at),
                    'updated_at': _out_time(row.updated_at),
                    'state': _loads(row.state, {})}

    def conversation_purge(self, older_than):
        """Delete conversations not updated since ``older_than``."""
        cutoff = to_datetime(older_than)
        with self._writer() as session:
            result = session.execute(sa.delete(models.Conversation).where(
                sa.func.coalesce(models.Conversation.updated_at,
                                 models.Conversation.created_at) < cutoff))
            return result.rowcount
