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

"""Latency of anomaly_get_all() over N stored anomalies (database only).

Usage: .venv/bin/python tools/bench_db_list.py URL [ROWS]

URL names an empty database (e.g. mysql+pymysql://root@127.0.0.1:3306/
logrca_bench); it is migrated, filled once with ROWS (default 1000000)
synthetic anomalies, then each query of QUERIES is timed 20 times, first
page and marker page, through logrca.db.api (no HTTP, no policy).
"""

import datetime
import json
import random
import statistics
import sys
import time
import uuid

import sqlalchemy as sa

from logrca import conf as logrca_conf
from logrca.db import api as db_api
from logrca.db import migration
from logrca.db import models


def fill(dbapi, rows, first=0, seed=42):
    rnd = random.Random(seed + first)
    services = ['svc-%d' % i for i in range(20)]
    hosts = ['host-%d' % i for i in range(50)]
    projects = ['proj-%03d' % i for i in range(200)]
    statuses = list(models.STATUSES)
    base = datetime.datetime(2026, 1, 1)
    engine = dbapi.get_engine()
    now = datetime.datetime(2026, 2, 1)
    batch = 5000
    anomalies = models.Anomaly.__table__
    refs = models.AnomalyRef.__table__
    next_id = first + 1
    for start in range(first, rows, batch):
        values, ref_values = [], []
        for i in range(start, min(rows, start + batch)):
            raised = base + datetime.timedelta(
                seconds=rnd.uniform(0, 30 * 86400))
            values.append({
                'id': next_id, 'uuid': str(uuid.uuid4()),
                'detector': rnd.choice(('baseline', 'deeplog', 'loganomaly')),
                'score': rnd.random() * 10, 'threshold': 1.0,
                'reason': 'bench %d' % i, 'session_kind': 'request',
                'session_key': '["request", "req-%d"]' % i,
                'start_time': raised, 'end_time': raised, 'raised_at': raised,
                'service': rnd.choice(services), 'host': rnd.choice(hosts),
                'project_id': (rnd.choice(projects) if rnd.random() < 0.8
                               else None),
                'user_id': None, 'request_ids': '["req-%d"]' % i,
                'instance_ids': '[]', 'status': rnd.choice(statuses),
                'created_at': now})
            ref_values.append({'anomaly_id': next_id, 'kind': 'request',
                               'value': 'req-%d' % i})
            if i % 2:
                ref_values.append({'anomaly_id': next_id, 'kind': 'instance',
                                   'value': 'inst-%d' % (i % 5000)})
            next_id += 1
        with engine.begin() as conn:
            conn.execute(anomalies.insert(), values)
            conn.execute(refs.insert(), ref_values)
    if engine.dialect.name == 'mysql':
        with engine.begin() as conn:
            conn.execute(sa.text('ANALYZE TABLE anomalies, anomaly_refs'))
    elif engine.dialect.name == 'postgresql':
        with engine.begin() as conn:
            conn.execute(sa.text('ANALYZE'))


QUERIES = [
    ('no filter', {}),
    ('project', {'project_id': 'proj-007'}),
    ('project or null', {'project_id_or_null': 'proj-007'}),
    ('service', {'service': 'svc-3'}),
    ('host', {'host': 'host-17'}),
    ('status', {'status': 'new'}),
    ('min_score', {'min_score': 9.5}),
    ('since', {'since': datetime.datetime(2026, 1, 20)}),
    ('project+service', {'project_id': 'proj-007', 'service': 'svc-3'}),
    ('service+detector', {'service': 'svc-3', 'detector': 'deeplog'}),
    ('host+status', {'host': 'host-17', 'status': 'resolved'}),
    ('request_id', {'request_id': 'req-123456'}),
    ('instance_id', {'instance_id': 'inst-77'}),
]


def main():
    url = sys.argv[1]
    rows = int(sys.argv[2]) if len(sys.argv) > 2 else 1000000
    conf = logrca_conf.new_conf()
    conf([], default_config_files=[])
    conf.set_override('connection', url, group='database')
    migration.upgrade(conf)
    dbapi = db_api.get_instance(conf)
    with dbapi.get_engine().connect() as conn:
        count = conn.execute(sa.text('SELECT COUNT(*) FROM anomalies')
                             ).scalar()
    if count < rows:
        t0 = time.monotonic()
        fill(dbapi, rows, first=count)
        print('filled %d rows in %.1f s' % (rows, time.monotonic() - t0))
    result = {}
    for name, filters in QUERIES:
        first, marker_page = [], []
        for _rep in range(20):
            t0 = time.perf_counter()
            page = dbapi.anomaly_get_all(filters, limit=50)
            first.append((time.perf_counter() - t0) * 1000)
            if page:
                t0 = time.perf_counter()
                dbapi.anomaly_get_all(filters, limit=50,
                                      marker=page[-1]['uuid'])
                marker_page.append((time.perf_counter() - t0) * 1000)
        result[name] = {
            'first_p50_ms': round(statistics.median(first), 2),
            'first_max_ms': round(max(first), 2),
            'marker_p50_ms': round(statistics.median(marker_page), 2)
            if marker_page else None,
            'marker_max_ms': round(max(marker_page), 2)
            if marker_page else None}
        print('%-18s %s' % (name, json.dumps(result[name])), flush=True)
    dbapi.dispose()


if __name__ == '__main__':
    main()
