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


"""Load benchmark of ``GET /v1/anomalies`` over a million stored anomalies.

What it does:

1. fills a MariaDB database (default ``logrca_api_bench`` on the test
   server)
   with ``--rows`` anomalies (1,000,000) spread over 10 projects, 20
   services, 50 hosts, 4 statuses and a year of time, unless it holds them
   already (``--refill`` forces it);
2. starts a real Keystone on loopback (``logrca.tests.keystone_fixture``),
   an admin and a project reader, and the logrca API
   (``logrca.wsgi.api:application``) with keystonemiddleware pointed at it
   (tokens cached in process after their first validation), served by
   gunicorn when installed (``--workers``/``--threads``), else werkzeug;
3. sends the fixed query mix below at a constant rate (``--rate``, 200/s)
   from an open-loop generator: request *i* is due at ``t0 + i/rate``
   whatever the earlier ones do, and its latency counts from when it was
   due, so a slow server cannot slow the load down and hide its queue;
4. prints p50/p90/p99/max per query and overall, and the error count.

The query mix (page size 50, default sort ``raised_at:desc``), weighted
equally; "marker" pages start after the 2nd and the 20th page:

* admin, ``all_projects=true``: no filter; ``service``; ``service`` and
  ``status``; each as a first page and as marker pages;
* project reader (own project implied): no filter; ``host``; ``detector``
  and ``status``; first and marker pages.

Example::

    .venv/bin/python tools/bench_api.py --duration 30 --rate 200
"""

import argparse
import collections
import datetime
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid

import requests
import sqlalchemy as sa

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from logrca.db import migration  # noqa: E402
from logrca.db import models  # noqa: E402
from logrca.tests import keystone_fixture  # noqa: E402
from logrca.tests.functional.api import fixtures  # noqa: E402

PROJECTS = ['bench%02d' % i + 'f' * 25 for i in range(10)]
SERVICES = ['nova-compute', 'nova-api', 'nova-conductor', 'nova-scheduler',
            'cinder-volume', 'cinder-api', 'neutron-server',
            'neutron-ovn-metadata-agent', 'glance-api', 'keystone',
            'placement-api', 'heat-engine', 'octavia-worker', 'swift-proxy',
            'barbican-api', 'designate-central', 'manila-share',
            'ironic-conductor', 'magnum-conductor', 'aodh-evaluator']
HOSTS = ['host%03d' % i for i in range(50)]
DETECTORS = ['baseline', 'deeplog', 'loganomaly', 'invariants']
STATUSES = list(models.STATUSES)
PASSWORD = 'bench-' + uuid.uuid4().hex[:8]
PAGE = 50


def fill(url, rows, seed=42):
    """Insert ``rows`` anomalies with Core executemany (fast)."""
    rng = random.Random(seed)
    engine = sa.create_engine(url)
    table = models.Anomaly.__table__
    start = datetime.datetime(2025, 1, 1)
    now = datetime.datetime.utcnow()
    chunk = 5000
    t0 = time.monotonic()
    with engine.begin() as conn:
        conn.execute(sa.text('SET unique_checks=0'))
    for offset in range(0, rows, chunk):
        batch = []
        for i in range(offset, min(rows, offset + chunk)):
            raised = start + datetime.timedelta(
                seconds=rng.randrange(365 * 86400),
                microseconds=rng.randrange(10 ** 6))
            project = (None if rng.random() < 0.05
                       else rng.choice(PROJECTS))
            batch.append({
                'uuid': str(uuid.UUID(int=rng.getrandbits(128), version=4)),
                'detector': rng.choice(DETECTORS),
                'score': round(rng.random() * 10, 4), 'threshold': 1.0,
                'reason': 'bench anomaly %d' % i, 'session_kind': 'request',
                'session_key': '["request", "req-%d"]' % i,
                'start_time': raised - datetime.timedelta(seconds=30),
                'end_time': raised, 'raised_at': raised,
                'service': rng.choice(SERVICES), 'host': rng.choice(HOSTS),
                'project_id': project, 'user_id': None,
                'request_ids': '[]', 'instance_ids': '[]',
                'status': rng.choice(STATUSES), 'created_at': now,
            })
        with engine.begin() as conn:
            conn.execute(table.insert(), batch)
        if offset % 100000 == 0:
            print('  %d rows, %.0f s' % (offset, time.monotonic() - t0),
                  flush=True)
    with engine.begin() as conn:
        conn.execute(sa.text('ANALYZE TABLE anomalies'))
    engine.dispose()
    print('filled %d rows in %.0f s' % (rows, time.monotonic() - t0))


def prepare_database(admin_url, name, rows, refill):
    url = sa.engine.make_url(admin_url).set(database=name).render_as_string(
        hide_password=False)
    engine = sa.create_engine(admin_url, isolation_level='AUTOCOMMIT')
    with engine.connect() as conn:
        if refill:
            conn.execute(sa.text('DROP DATABASE IF EXISTS %s' % name))
        conn.execute(sa.text('CREATE DATABASE IF NOT EXISTS %s CHARACTER '
                             'SET utf8mb4' % name))
    engine.dispose()
    conf = fixtures.make_conf(url)
    migration.upgrade(conf)
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        have = conn.execute(sa.text('SELECT COUNT(*) FROM anomalies')
                            ).scalar()
    engine.dispose()
    if have < rows:
        print('filling %s with %d anomalies (has %d)' % (name, rows, have))
        fill(url, rows - have, seed=have + 42)
    else:
        print('%s holds %d anomalies already' % (name, have))
    return url


def start_api(url, ks, workdir, workers, threads):
    service = 'bench-svc'
    ks.create_service_user(service, PASSWORD)
    options = ks.authtoken_options(service, PASSWORD)
    options['token_cache_time'] = 600
    config = ('[DEFAULT]\nlog_file = %s/api.log\n[database]\n'
              'connection = %s\nmax_pool_size = %d\n[keystone_authtoken]\n'
              '%s\n' % (workdir, url, max(5, workers * threads),
                        '\n'.join('%s = %s' % kv for kv in options.items())))
    conf_file = os.path.join(workdir, 'logrca.conf')
    with open(conf_file, 'w') as f:
        f.write(config)
    port = keystone_fixture.free_port()
    env = dict(os.environ, LOGRCA_CONFIG_FILE=conf_file)
    gunicorn = shutil.which('gunicorn') or os.path.join(
        os.path.dirname(sys.executable), 'gunicorn')
    if os.path.exists(gunicorn):
        cmd = [gunicorn, '--workers', str(workers), '--threads',
               str(threads), '--bind', '127.0.0.1:%d' % port,
               '--log-level', 'warning', 'logrca.wsgi.api:application']
        server = 'gunicorn %d workers x %d threads' % (workers, threads)
    else:
        cmd = [sys.executable, '-c',
               'import sys; sys.argv = sys.argv[:1]\n'
               'from werkzeug import serving\n'
               'from logrca.wsgi import api\n'
               'serving.make_server("127.0.0.1", %d, api.application,'
               ' threaded=True).serve_forever()' % port]
        server = 'werkzeug threaded (1 process)'
    out = open(os.path.join(workdir, 'api.out'), 'w')
    process = subprocess.Popen(cmd, env=env, stdout=out,
                               stderr=subprocess.STDOUT, cwd=ROOT)
    base = 'http://127.0.0.1:%d' % port
    keystone_fixture.wait_for_http(base + '/healthcheck', process,
                                   log_file=os.path.join(workdir, 'api.out'))
    return process, base, server


def query_mix(base, admin_token, reader_token):
    """The fixed list of (name, url, token), marker pages resolved."""
    firsts = [
        ('admin none', {'all_projects': 'true'}, admin_token),
        ('admin service', {'all_projects': 'true',
                           'service': 'nova-compute'}, admin_token),
        ('admin service+status', {'all_projects': 'true',
                                  'service': 'cinder-volume',
                                  'status': 'new'}, admin_token),
        ('reader none', {}, reader_token),
        ('reader host', {'host': 'host007'}, reader_token),
        ('reader detector+status', {'detector': 'deeplog',
                                    'status': 'acknowledged'},
         reader_token),
    ]
    mix = []
    for name, params, token in firsts:
        params = dict(params, limit=str(PAGE))
        url = base + '/v1/anomalies?' + requests.compat.urlencode(params)
        mix.append((name + ' p1', url, token))
        page, nxt = 1, url
        while page < 20 and nxt:
            body = requests.get(nxt, headers={'X-Auth-Token': token},
                                timeout=30).json()
            links = [li['href'] for li in body['links']
                     if li['rel'] == 'next']
            nxt = links[0] if links else None
            page += 1
            if page in (2, 20) and nxt:
                mix.append((name + ' p%d' % page, nxt, token))
    return mix


def run_load(mix, rate, duration, warmup, concurrency):
    """Open loop: request i is due at t0 + i/rate; returns latencies."""
    total = int(rate * (duration + warmup))
    due_times = [i / rate for i in range(total)]
    results = [None] * total
    counter = iter(range(total))
    lock = threading.Lock()
    t0 = time.monotonic() + 0.5

    def worker():
        session = requests.Session()
        while True:
            with lock:
                i = next(counter, None)
            if i is None:
                return
            due = t0 + due_times[i]
            delay = due - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            name, url, token = mix[i % len(mix)]
            try:
                response = session.get(url, headers={'X-Auth-Token': token},
                                       timeout=30)
                ok = response.status_code == 200
            except requests.RequestException:
                ok = False
            end = time.monotonic()
            results[i] = (name, end - due, ok, due_times[i] >= warmup)

    threads = [threading.Thread(target=worker) for _ in range(concurrency)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return [r for r in results if r and r[3]]


def pct(values, q):
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))] * 1000


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--mysql-url', default=os.environ.get(
        'LOGRCA_TEST_MYSQL_URL', 'mysql+pymysql://root@127.0.0.1:3306/test'))
    parser.add_argument('--database', default='logrca_api_bench')
    parser.add_argument('--rows', type=int, default=1000000)
    parser.add_argument('--refill', action='store_true')
    parser.add_argument('--rate', type=float, default=200.0)
    parser.add_argument('--duration', type=float, default=30.0)
    parser.add_argument('--warmup', type=float, default=5.0)
    parser.add_argument('--concurrency', type=int, default=64,
                        help='client threads (enough to keep the loop open)')
    parser.add_argument('--workers', type=int, default=2)
    parser.add_argument('--threads', type=int, default=8)
    parser.add_argument('--json', help='write the figures to this file')
    args = parser.parse_args(argv)

    url = prepare_database(args.mysql_url, args.database, args.rows,
                           args.refill)
    workdir = tempfile.mkdtemp(prefix='bench-api-')
    ks = keystone_fixture.KeystoneServer().start()
    api = None
    try:
        project = ks.create_project(PROJECTS[3])
        ks.create_user('bench-reader', PASSWORD, project, ['reader'])
        # The stored rows name bench03..., not Keystone's id: map it.
        engine = sa.create_engine(url)
        with engine.begin() as conn:
            conn.execute(sa.text(
                'UPDATE anomalies SET project_id = :new WHERE project_id '
                '= :old'), {'new': project, 'old': PROJECTS[3]})
        engine.dispose()
        api, base, server = start_api(url, ks, workdir, args.workers,
                                      args.threads)
        admin_token = ks.session('admin', ks.admin_password,
                                 'admin').get_token()
        reader_token = ks.session('bench-reader', PASSWORD,
                                  PROJECTS[3]).get_token()
        mix = query_mix(base, admin_token, reader_token)
        print('query mix: %d queries; server: %s' % (len(mix), server))
        results = run_load(mix, args.rate, args.duration, args.warmup,
                           args.concurrency)
    finally:
        if api is not None:
            api.terminate()
            api.wait()
        ks.stop()
        # Put the project name back so that a later run maps it again.
        engine = sa.create_engine(url)
        with engine.begin() as conn:
            conn.execute(sa.text(
                'UPDATE anomalies SET project_id = :old WHERE project_id '
                'NOT LIKE :bench AND project_id IS NOT NULL'),
                {'old': PROJECTS[3], 'bench': 'bench%'})
        engine.dispose()
        shutil.rmtree(workdir, ignore_errors=True)

    by_name = collections.defaultdict(list)
    errors = 0
    for name, latency, ok, _counted in results:
        by_name[name].append(latency)
        errors += not ok
    everything = [r[1] for r in results]
    print('%-34s %6s %8s %8s %8s %8s' % ('query', 'n', 'p50 ms', 'p90 ms',
                                         'p99 ms', 'max ms'))
    for name in sorted(by_name):
        values = by_name[name]
        print('%-34s %6d %8.1f %8.1f %8.1f %8.1f' % (
            name, len(values), pct(values, .5), pct(values, .9),
            pct(values, .99), max(values) * 1000))
    summary = {
        'rows': args.rows, 'rate': args.rate, 'duration_s': args.duration,
        'requests': len(everything), 'errors': errors, 'server': server,
        'p50_ms': pct(everything, .5), 'p90_ms': pct(everything, .9),
        'p99_ms': pct(everything, .99),
        'mean_ms': statistics.fmean(everything) * 1000,
        'max_ms': max(everything) * 1000, 'cpus': os.cpu_count(),
    }
    print('ALL: %(requests)d requests, %(errors)d errors, p50 %(p50_ms).1f '
          'ms, p99 %(p99_ms).1f ms (target p99 < 50 ms)' % summary)
    if args.json:
        with open(args.json, 'w') as f:
            json.dump(summary, f, indent=2)
    return 0 if errors == 0 else 1


if __name__ == '__main__':
    sys.exit(main())
