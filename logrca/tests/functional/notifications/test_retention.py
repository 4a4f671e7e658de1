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

"""Automatic retention of the conductor on SQLite, MariaDB and PostgreSQL."""

import datetime
import time

import pytest
import sqlalchemy as sa

from logrca.conductor import retention
from logrca.db import models
from logrca.tests import services
from logrca.tests.functional.db import base

DAY = 86400.0
NOW = datetime.datetime(2023, 11, 30, 12, 0, 0)


def _counts(dbapi):
    with dbapi.get_engine().connect() as conn:
        return {m.__tablename__: conn.scalar(
            sa.select(sa.func.count()).select_from(m))
            for m in (models.Anomaly, models.Evidence, models.AnomalyRef,
                      models.Explanation)}


@pytest.mark.parametrize('backend', services.BACKENDS)
def test_periodic_retention_purges_old_anomalies_and_children(backend):
    now_epoch = NOW.replace(tzinfo=datetime.UTC).timestamp()
    with base.migrated_database(backend) as dbapi:
        old = [base.make_anomaly(n, t0=now_epoch - 40 * DAY + n)
               for n in range(3)]
        young = [base.make_anomaly(10 + n, t0=now_epoch - 5 * DAY + n)
                 for n in range(2)]
        dbapi.store_anomalies(old + young)
        dbapi.explanation_save(old[0].uuid, 'test', {'summary': 'x'})
        dbapi.explanation_save(young[0].uuid, 'test', {'summary': 'y'})
        conf = dbapi.conf
        task = retention.RetentionTask(conf, dbapi)
        assert not task.enabled and task.run_once(now=NOW) == 0
        conf.set_override('retention_days', 30, group='conductor')
        assert task.run_once(now=NOW) == 3
        counts = _counts(dbapi)
        assert counts[models.Anomaly.__tablename__] == 2
        assert counts[models.Evidence.__tablename__] == 2 * 3
        assert counts[models.Explanation.__tablename__] == 1
        assert dbapi.anomaly_get(old[1].uuid) is None
        assert dbapi.anomaly_get(young[1].uuid) is not None
        assert dbapi.explanation_get(young[0].uuid) is not None
        assert task.run_once(now=NOW) == 0
        assert task.counters['purged'] == 3 and task.counters['runs'] == 2


@pytest.mark.parametrize('backend', services.BACKENDS)
def test_retention_purges_idle_conversations(backend):
    with base.migrated_database(backend) as dbapi:
        conf = dbapi.conf
        conf.set_override('retention_days', 30, group='conductor')
        ident = '7a1c2e4e-0000-4000-8000-%012d' % services.BACKENDS.index(
            backend)
        dbapi.conversation_save(ident, {'turns': []}, project_id='p1')
        task = retention.RetentionTask(conf, dbapi)
        now = datetime.datetime.now(datetime.UTC).replace(tzinfo=None)
        # Updated today: kept 29 days on, purged 31 days on.
        task.run_once(now=now + datetime.timedelta(days=29))
        assert dbapi.conversation_get(ident) is not None
        task.run_once(now=now + datetime.timedelta(days=31))
        assert dbapi.conversation_get(ident) is None
        assert task.counters['conversations_purged'] == 1


def test_looping_call_runs_and_stops():
    with base.migrated_database('sqlite') as dbapi:
        stale = time.time() - 3 * DAY
        dbapi.store_anomalies([base.make_anomaly(n, t0=stale + n)
                               for n in range(2)])
        conf = dbapi.conf
        conf.set_override('retention_days', 1, group='conductor')
        conf.set_override('retention_interval', 1, group='conductor')
        task = retention.RetentionTask(conf, dbapi)
        task.start()
        try:
            deadline = time.monotonic() + 10
            while (task.counters['purged'] < 2
                   and time.monotonic() < deadline):
                time.sleep(0.1)
        finally:
            task.stop()
        assert task.counters['purged'] == 2
        runs = task.counters['runs']
        time.sleep(1.5)
        assert task.counters['runs'] == runs, 'stopped means stopped'


def test_database_error_is_counted_not_raised(tmp_path):
    conf = base.make_conf('sqlite:///%s' % (tmp_path / 'x.sqlite'))
    conf.set_override('retention_days', 1, group='conductor')
    from logrca.db import api as db_api
    dbapi = db_api.get_instance(conf)  # no tables: every purge fails
    task = retention.RetentionTask(conf, dbapi)
    try:
        assert task.run_once() == 0
    finally:
        dbapi.dispose()
    assert task.counters['failed'] == 1
