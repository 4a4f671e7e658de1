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
   server) with ``--rows`` anomalies (1,000,000) spread over 10 projects,
   20 services, 50 hosts, 4 statuses and a year of time, unless it holds
   them already (``--refill`` forces it), and migrates it to the head;
2. starts a real Keystone on loopback (``logrca.tests.keystone_fixture``),
   an admin and a project reader, and the logrca API
   (``logrca.wsgi.api:application``) with keystonemiddleware pointed at it
   (tokens cached in process after their first validation), served by
   gunicorn (gthread workers; ``--layouts 2x8,4x1:mysqldb`` runs several
   workers x threads layouts, optionally with the C MySQL driver), else
   werkzeug;
3. sends the fixed query mix below at a constant rate (``--rate``, 200/s)
   from an open-loop generator: request *i* is due at ``t0 + i/rate`` and
   sent then whatever the earlier ones do (asyncio, kept-alive
   connections, a new one when none is free), and its latency counts from
   when it was due, so a slow server cannot slow the load down and hide
   its queue;
4. prints p50/p90/p99/max per query and overall, the error count, the load
   average at the start, and the CPU time per request of the API
   processes, MariaDB, Keystone and the generator itself (from /proc).

``--profile N`` instead sends the mix N times through the whole WSGI stack
in this process (werkzeug's test client) and prints the API's CPU time per
request, with cProfile statistics if ``--profile-out`` is given.

The query mix (page size 50, default sort ``raised_at:desc``), weighted
equally; "marker" pages start after the 2nd and the 20th page:

* admin, ``all_projects=true``: no filter; ``service``; ``service`` and
  ``status``; each as a first page and as marker pages;
* project reader (own project implied): no filter; ``host``; ``detector``
  and ``status``; first and marker pages.

Example::

    .venv/bin/python tools/bench_api.py --rate 200 --duration 30 \\
        --layouts 2x8:mysqldb --repeat 2
"""

import argparse
import asyncio
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
import time
import uuid
from urllib import parse as urlparse

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


def _mariadb_cpu():
    return sum(v[2] for v in _proc_stats().values()
               if v[1] in ('mariadbd', 'mysqld'))


def map_reader_project(url, project, quiet_cores=0.05, patience=180):
    """Give the reader's project (Keystone's new id) the bench03 rows.

    The rows of ``bench03...`` carry the id of the previous run's Keystone
    project (any id not named bench*), or the name after a fill. Then wait
    until MariaDB has written the ~95,000 changed rows and their index
    entries away (its CPU use falls under ``quiet_cores``), so that this
    work is not measured as the API's load.
    """
    t0 = time.monotonic()
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        changed = conn.execute(sa.text(
            'UPDATE anomalies SET project_id = :new WHERE project_id = :old'
            ' OR (project_id IS NOT NULL AND project_id NOT LIKE :bench)'),
            {'new': project, 'old': PROJECTS[3], 'bench': 'bench%'}
        ).rowcount
    engine.dispose()
    while time.monotonic() - t0 < patience:
        before = _mariadb_cpu()
        time.sleep(2)
        if (_mariadb_cpu() - before) / 2 < quiet_cores:
            break
    print('reader project: %d rows mapped to %s; MariaDB quiet after %.0f s'
          % (changed, project, time.monotonic() - t0))


def write_config(url, authtoken, workdir, pool_size, driver=None):
    """The API's config file: the database and [keystone_authtoken].

    :param driver: the MySQL driver of the URL (``pymysql``, ``mysqldb``),
        or None for the URL's own.
    """
    if driver:
        url = sa.engine.make_url(url).set(
            drivername='mysql+' + driver).render_as_string(
                hide_password=False)
    config = ('[DEFAULT]\nlog_file = %s/api.log\n[database]\n'
              'connection = %s\nmax_pool_size = %d\n[keystone_authtoken]\n'
              '%s\n' % (workdir, url, max(5, pool_size), '\n'.join(
                  '%s = %s' % kv for kv in authtoken.items())))
    conf_file = os.path.join(workdir, 'logrca-%s.conf' % (driver or 'url'))
    with open(conf_file, 'w') as f:
        f.write(config)
    return conf_file


def start_api(conf_file, workdir, workers, threads):
    port = keystone_fixture.free_port()
    env = dict(os.environ, LOGRCA_CONFIG_FILE=conf_file)
    gunicorn = shutil.which('gunicorn') or os.path.join(
        os.path.dirname(sys.executable), 'gunicorn')
    if os.path.exists(gunicorn):
        cmd = [gunicorn, '--worker-class', 'gthread', '--workers',
               str(workers), '--threads', str(threads),
               '--bind', '127.0.0.1:%d' % port,
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


def query_mix(base, admin_token, reader_token, get=None):
    """The fixed list of (name, url, token), marker pages resolved.

    :param get: ``get(url, token)`` returning the decoded JSON body; by
        default an HTTP GET with requests.
    """
    if get is None:
        def get(url, token):
            return requests.get(url, headers={'X-Auth-Token': token},
                                timeout=30).json()
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
        url = base + '/v1/anomalies?' + urlparse.urlencode(params)
        mix.append((name + ' p1', url, token))
        page, nxt = 1, url
        while page < 20 and nxt:
            body = get(nxt, token)
            links = [li['href'] for li in body['links']
                     if li['rel'] == 'next']
            nxt = links[0] if links else None
            if nxt:
                # Keep our base: the server names itself as it was asked.
                nxt = base + nxt[nxt.index('/v1/'):]
            page += 1
            if page in (2, 20) and nxt:
                mix.append((name + ' p%d' % page, nxt, token))
    return mix


def profile_in_process(conf_file, admin_token, reader_token, requests_n,
                       profile_out=None):
    """CPU per request of the whole WSGI stack, in this process.

    Builds ``logrca.wsgi.api:application`` (every middleware, Keystone
    tokens validated by keystonemiddleware and cached) from the same
    config file as the served API, and sends the query mix to it with
    werkzeug's test client: no sockets, no server, no load generator, so
    ``time.process_time()`` per request is the API's own CPU cost. With
    ``profile_out``, cProfile's statistics are written there and the top
    functions printed.
    """
    import cProfile
    import pstats

    from werkzeug import test as wtest

    from logrca.wsgi import api as wsgi_api

    application = wsgi_api.init_application(
        {wsgi_api.CONFIG_ENV: conf_file})
    client = wtest.Client(application)

    def get(url, token):
        response = client.get(url, headers={'X-Auth-Token': token})
        if response.status_code != 200:
            raise RuntimeError('%s: %s %s' % (url, response.status_code,
                                              response.get_data()))
        return response.get_json()

    mix = query_mix('', admin_token, reader_token, get=get)
    for _name, url, token in mix:  # warm: tokens validated and cached
        get(url, token)
    by_name = collections.defaultdict(list)
    profiler = (cProfile.Profile(time.process_time) if profile_out
                else None)
    wall0, cpu0 = time.perf_counter(), time.process_time()
    for i in range(requests_n):
        name, url, token = mix[i % len(mix)]
        start = time.process_time()
        if profiler:
            profiler.enable()
        response = client.get(url, headers={'X-Auth-Token': token})
        response.get_data()
        if profiler:
            profiler.disable()
        by_name[name].append(time.process_time() - start)
        if response.status_code != 200:
            raise RuntimeError('%s: %s' % (url, response.status_code))
    cpu = time.process_time() - cpu0
    wall = time.perf_counter() - wall0
    print('in process: %d requests, %.2f ms CPU per request (%.2f ms wall)'
          % (requests_n, cpu / requests_n * 1000, wall / requests_n * 1000))
    for name in sorted(by_name):
        values = by_name[name]
        print('  %-34s %6.2f ms CPU' % (name, statistics.fmean(values)
                                         * 1000))
    if profiler:
        profiler.dump_stats(profile_out)
        stats = pstats.Stats(profile_out)
        stats.sort_stats('cumulative').print_stats(40)
        stats.sort_stats('tottime').print_stats(25)
    return cpu / requests_n * 1000


class _Connections:
    """Keep-alive HTTP/1.1 connections to one server, at most ``size``.

    A connection idle for longer than ``max_idle`` seconds is closed rather
    than reused: the server may have closed it (gunicorn's keepalive is
    2 s).
    """

    def __init__(self, host, port, size, max_idle=1.0):
        self.host, self.port, self.size = host, port, size
        self.max_idle = max_idle
        self.idle = []
        self.opened = 0
        self.total_opened = 0
        self.waiters = collections.deque()

    async def get(self):
        loop = asyncio.get_running_loop()
        while self.idle:
            streams, since = self.idle.pop()
            if loop.time() - since <= self.max_idle:
                return streams, False
            self.discard(streams)
        while self.opened >= self.size:
            waiter = loop.create_future()
            self.waiters.append(waiter)
            await waiter
            if self.idle:
                return self.idle.pop()[0], False
        self.opened += 1
        self.total_opened += 1
        try:
            return await asyncio.open_connection(self.host, self.port), True
        except OSError:
            self.opened -= 1
            raise

    def _wake(self):
        while self.waiters:
            waiter = self.waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return

    def put(self, streams):
        self.idle.append((streams, asyncio.get_running_loop().time()))
        self._wake()

    def discard(self, streams):
        streams[1].close()
        self.opened -= 1
        self._wake()


async def _http_get(streams, request):
    """Send ``request``; return (status, keep-alive) once the body is read.
    """
    reader, writer = streams
    writer.write(request)
    head = await reader.readuntil(b'\r\n\r\n')
    lines = head.decode('latin-1').split('\r\n')
    status = int(lines[0].split(' ', 2)[1])
    headers = {}
    for line in lines[1:]:
        name, _sep, value = line.partition(':')
        headers[name.strip().lower()] = value.strip().lower()
    if headers.get('transfer-encoding') == 'chunked':
        while True:
            size = int((await reader.readuntil(b'\r\n')).split(b';')[0], 16)
            await reader.readexactly(size + 2)
            if size == 0:
                break
    else:
        await reader.readexactly(int(headers.get('content-length', 0)))
    return status, headers.get('connection') != 'close'


async def _load(mix, rate, total, warmup, base, max_connections):
    url = urlparse.urlsplit(base)
    pool = _Connections(url.hostname, url.port, max_connections)
    requests_bytes = [(
        'GET %s HTTP/1.1\r\nHost: %s\r\nX-Auth-Token: %s\r\n'
        'Accept: application/json\r\n\r\n' % (
            target[len(base):], url.netloc, token)).encode('latin-1')
        for _name, target, token in mix]
    loop = asyncio.get_running_loop()
    results = [None] * total
    t0 = loop.time() + 0.5

    async def one(i, due):
        which = i % len(mix)
        ok = False
        for _attempt in range(2):
            try:
                streams, fresh = await pool.get()
            except OSError:
                break
            try:
                status, keep = await _http_get(streams, requests_bytes[which])
            except (OSError, asyncio.IncompleteReadError, ValueError,
                    IndexError, asyncio.LimitOverrunError):
                pool.discard(streams)
                if fresh:
                    break
                continue  # a kept-alive connection the server had closed
            except BaseException:  # cancelled by the timeout
                pool.discard(streams)
                raise
            if keep:
                pool.put(streams)
            else:
                pool.discard(streams)
            ok = status == 200
            break
        results[i] = (mix[which][0], loop.time() - due, ok,
                      due - t0 >= warmup)

    async def timed(i, due):
        try:
            await asyncio.wait_for(one(i, due), 30)
        except TimeoutError:
            results[i] = (mix[i % len(mix)][0], loop.time() - due, False,
                          due - t0 >= warmup)

    tasks = []
    for i in range(total):
        due = t0 + i / rate
        delay = due - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(loop.create_task(timed(i, due)))
    await asyncio.gather(*tasks)
    return results, pool.total_opened


def run_load(mix, rate, duration, warmup, base, max_connections=256):
    """Send the mix open-loop; return the counted results.

    Request *i* is due at ``t0 + i/rate`` and is sent then (one asyncio task
    each, on a kept-alive connection, a new one if none is free), whatever
    the earlier ones do; its latency counts from when it was due, so a
    slow server cannot slow the load down and hide its queue. The client is
    a few lines of asyncio on raw sockets: a load generator in requests and
    64 threads cost about 1 ms of CPU per request, taken from the same two
    cores as the server.

    :returns: (results, connections opened); results are ``(name, latency
        seconds, ok, counted)``, those in the warm-up left out.
    """
    total = int(rate * (duration + warmup))
    results, opened = asyncio.run(_load(mix, rate, total, warmup, base,
                                        max_connections))
    return [r for r in results if r and r[3]], opened


def _proc_stats():
    """{pid: (ppid, name, cpu seconds)} of every process we may read."""
    tick = os.sysconf('SC_CLK_TCK')
    found = {}
    for entry in os.listdir('/proc'):
        if not entry.isdigit():
            continue
        try:
            with open('/proc/%s/stat' % entry) as f:
                text = f.read()
        except OSError:
            continue
        name = text[text.index('(') + 1:text.rindex(')')]
        fields = text[text.rindex(')') + 2:].split()
        found[int(entry)] = (int(fields[1]), name,
                             (int(fields[11]) + int(fields[12])) / tick)
    return found


def _tree(stats, root):
    pids, todo = set(), [root]
    while todo:
        pid = todo.pop()
        if pid in stats and pid not in pids:
            pids.add(pid)
            todo.extend(p for p, v in stats.items() if v[0] == pid)
    return pids


class CPUMeter:
    """CPU seconds used by the API server, MariaDB, Keystone and this
    load generator between :meth:`start` and :meth:`stop` (from /proc).
    """

    def __init__(self, api_pid, keystone_pid):
        self.roots = {'api': api_pid, 'keystone': keystone_pid}

    def _sample(self):
        stats = _proc_stats()
        sample = {name: sum(stats[p][2] for p in _tree(stats, pid))
                  for name, pid in self.roots.items()}
        sample['mariadb'] = sum(v[2] for v in stats.values()
                                if v[1] in ('mariadbd', 'mysqld'))
        sample['load generator'] = time.process_time()
        return sample

    def start(self):
        self._start = self._sample()
        self._wall = time.monotonic()

    def stop(self):
        end = self._sample()
        self.wall = time.monotonic() - self._wall
        self.cpu = {k: end[k] - self._start[k] for k in end}
        return self.cpu


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
    parser.add_argument('--max-connections', type=int, default=256,
                        help='client connections at most (requests wait '
                        'for one beyond that, their wait counted)')
    parser.add_argument('--layouts', type=lambda v: [
        _layout(item) for item in v.split(',')], default=[(2, 8, None)],
        metavar='WxT[:DRIVER],...',
        help='gunicorn workers x threads to run in turn (default 2x8), '
        'each optionally with the MySQL driver (pymysql, mysqldb)')
    parser.add_argument('--repeat', type=int, default=1,
                        help='runs per layout (each one reported)')
    parser.add_argument('--json', help='write the figures to this file')
    parser.add_argument('--profile', type=int, metavar='N', default=0,
                        help='instead of the load: N requests of the mix '
                        'in this process (werkzeug test client, whole '
                        'middleware chain), report CPU ms per request')
    parser.add_argument('--profile-out', metavar='FILE',
                        help='with --profile: cProfile statistics to FILE')
    args = parser.parse_args(argv)

    url = prepare_database(args.mysql_url, args.database, args.rows,
                           args.refill)
    workdir = tempfile.mkdtemp(prefix='bench-api-')
    ks = keystone_fixture.KeystoneServer().start()
    try:
        project = ks.create_project(PROJECTS[3])
        ks.create_user('bench-reader', PASSWORD, project, ['reader'])
        map_reader_project(url, project)
        service = 'bench-svc'
        ks.create_service_user(service, PASSWORD)
        authtoken = ks.authtoken_options(service, PASSWORD)
        authtoken['token_cache_time'] = 600
        # The database pool is per worker process.
        pool = max(threads for _workers, threads, _driver in args.layouts)
        conf_file = write_config(url, authtoken, workdir, pool)
        admin_token = ks.session('admin', ks.admin_password,
                                 'admin').get_token()
        reader_token = ks.session('bench-reader', PASSWORD,
                                  PROJECTS[3]).get_token()
        if args.profile:
            cpu_ms = profile_in_process(conf_file, admin_token,
                                        reader_token, args.profile,
                                        args.profile_out)
            if args.json:
                with open(args.json, 'w') as f:
                    json.dump({'rows': args.rows, 'requests': args.profile,
                               'cpu_ms_per_request': cpu_ms}, f, indent=2)
            return 0
        runs = []
        for workers, threads, driver in args.layouts:
            layout_conf = write_config(url, authtoken, workdir, pool, driver)
            for _repeat in range(args.repeat):
                runs.append(run_once(args, (workers, threads, driver),
                                     layout_conf, workdir, ks._process.pid,
                                     admin_token, reader_token))
    finally:
        ks.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    if args.json:
        with open(args.json, 'w') as f:
            json.dump(runs, f, indent=2)
    return 0 if all(run['errors'] == 0 for run in runs) else 1


def run_once(args, layout, conf_file, workdir, keystone_pid, admin_token,
             reader_token):
    """Serve the API with ``layout`` (workers, threads, MySQL driver), load
    it, report.
    """
    workers, threads, driver = layout
    api, base, server = start_api(conf_file, workdir, workers, threads)
    server += ', %s' % (
        driver or sa.engine.make_url(args.mysql_url).drivername)
    try:
        mix = query_mix(base, admin_token, reader_token)
        print('query mix: %d queries; server: %s' % (len(mix), server))
        meter = CPUMeter(api.pid, keystone_pid)
        load_at_start = os.getloadavg()
        print('load average at the start: %.2f %.2f %.2f' % load_at_start)
        meter.start()
        results, opened = run_load(mix, args.rate, args.duration,
                                   args.warmup, base, args.max_connections)
        meter.stop()
    finally:
        api.terminate()
        api.wait()

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
    sent = int(args.rate * (args.duration + args.warmup))
    summary = {
        'rows': args.rows, 'rate': args.rate, 'duration_s': args.duration,
        'connections_opened': opened, 'loadavg_start': load_at_start,
        'requests': len(everything), 'errors': errors, 'server': server,
        'p50_ms': pct(everything, .5), 'p90_ms': pct(everything, .9),
        'p99_ms': pct(everything, .99),
        'mean_ms': statistics.fmean(everything) * 1000,
        'max_ms': max(everything) * 1000, 'cpus': os.cpu_count(),
        'cpu_ms_per_request': {name: seconds / sent * 1000
                               for name, seconds in meter.cpu.items()},
        'wall_s': meter.wall,
    }
    print('CPU per request over the whole run (%d requests in %.1f s): %s; '
          'all together %.2f cores' % (
              sent, meter.wall, ', '.join(
                  '%s %.2f ms' % kv
                  for kv in summary['cpu_ms_per_request'].items()),
              sum(meter.cpu.values()) / meter.wall))
    print('ALL (%s): %d requests, %d errors, p50 %.1f ms, p99 %.1f ms '
          '(target p99 < 50 ms)' % (server, summary['requests'], errors,
                                     summary['p50_ms'], summary['p99_ms']))
    return summary


def _layout(text):
    shape, _sep, driver = text.partition(':')
    try:
        workers, threads = (int(n) for n in shape.lower().split('x'))
    except ValueError as exc:
        raise argparse.ArgumentTypeError(
            'a layout is WORKERSxTHREADS[:DRIVER], e.g. 2x8 or '
            '4x1:mysqldb: %r' % text) from exc
    if driver not in ('', 'pymysql', 'mysqldb'):
        raise argparse.ArgumentTypeError(
            'the driver is pymysql or mysqldb: %r' % text)
    return workers, threads, driver or None


if __name__ == '__main__':
    sys.exit(main())
