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

"""Benchmark: resident memory of the agent without learned models."""

# The real agent loop (logrca.agent.service.Agent: file follower, one
# RecordReader per file, template miner, sessions, baseline detector) follows
# one file per service while this script appends the service logs of the
# shared fault-injection archives to them, truncating each file once the
# agent has read it (the follower sees a truncation, as with copytruncate).
# Anomalies go to an in-process conductor storing into SQLite. The agent's
# resident set size (VmRSS) is printed after every million lines, with the
# CPU time of the agent loop (polling, parsing, detecting, storing) as a
# throughput figure.
#
#   .venv/bin/python tools/bench_agent_memory.py [--lines 10000000]

import logrca.cmd  # noqa: F401,I001  (threading backend first)

import argparse
import collections
import os
import pathlib
import shutil
import sys
import tarfile
import tempfile
import time

from logrca import conf as logrca_conf
from logrca.agent import follow
from logrca.agent import service
from logrca.conductor import manager
from logrca.db import api as db_api
from logrca.db import migration

ROOT = pathlib.Path(__file__).resolve().parents[1]
DATA = pathlib.Path(os.environ.get(
    'LOGRCA_SHARED_DATA', ROOT.parent / 'shared' / 'data'))
ARCHIVES = ['%s-round_%d.tar.xz' % (c, r) for r in (2, 1)
            for c in ('Nova', 'Cinder', 'Neutron')]
SERVICES = ('/nova/', '/cinder/', '/neutron/', '/glance/', '/heat/')


def rss_mib():
    with open('/proc/self/status') as status:
        for line in status:
            if line.startswith('VmRSS:'):
                return int(line.split()[1]) / 1024.0
    return float('nan')


def service_logs(folder):
    """Yield (stream, lines) of every service log of every archive."""
    while True:
        for name in ARCHIVES:
            with tarfile.open(folder / 'logs' / name, 'r|xz') as tar:
                for member in tar:
                    if (member.isfile() and member.name.endswith('.out')
                            and any(s in member.name for s in SERVICES)):
                        data = tar.extractfile(member).read()
                        yield (follow.stream_name(member.name),
                               data.splitlines(True))


def agent_conf(work):
    """The agent's configuration for a benchmark in ``work``.

    The agent follows ``work/logs/*.log`` from their beginning (the folder
    is made here), stores into SQLite under ``work`` and takes no
    notifications; the database is migrated.
    """
    (work / 'logs').mkdir()
    conf = logrca_conf.new_conf()
    conf([], project='logrca', default_config_files=[])
    conf.set_override('state_path', str(work / 'state'))
    conf.set_override('connection', 'sqlite:///%s' % (work / 'db.sqlite'),
                      'database')
    conf.set_override('log_files', [str(work / 'logs' / '*.log')], 'agent')
    conf.set_override('follow_from', 'beginning', 'agent')
    conf.set_override('notifications', False, 'agent')
    return conf


def follow_logs(agent, logs, data, total, every):
    """Append service logs under ``logs`` while ``agent`` follows them.

    Every 50,000 lines the agent reads to the end and the files are
    truncated, as copytruncate would. Yields ``(lines written, CPU seconds
    spent in the agent's loop)`` every ``every`` lines and at ``total``.
    """
    written = 0
    agent_cpu = 0.0
    next_mark = every
    pending = collections.Counter()
    for stream, lines in service_logs(data):
        path = logs / ('%s.log' % stream)
        with open(path, 'ab') as out:
            out.writelines(lines)
        pending[path] += len(lines)
        written += len(lines)
        if sum(pending.values()) >= 50_000 or written >= total:
            cpu = time.process_time()
            while agent.run_once():
                pass
            for done in pending:
                os.truncate(done, 0)
            agent.run_once()
            agent_cpu += time.process_time() - cpu
            pending.clear()
        if written >= next_mark or written >= total:
            yield written, agent_cpu
            next_mark += every
        if written >= total:
            return


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument('--lines', type=int, default=10_000_000)
    parser.add_argument('--every', type=int, default=1_000_000)
    parser.add_argument('--data', type=pathlib.Path,
                        default=DATA / 'dessertlab-openstack-fault-injection')
    args = parser.parse_args()
    work = pathlib.Path(tempfile.mkdtemp(prefix='logrca-bench-mem-'))
    try:
        conf = agent_conf(work)
        migration.upgrade(conf)
        conductor = manager.ConductorManager(conf, db_api.get_instance(conf))
        agent = service.Agent(conf, conductor)
        start = time.monotonic()
        print('start: rss %.1f MiB' % rss_mib(), flush=True)
        samples = []
        for written, agent_cpu in follow_logs(agent, work / 'logs',
                                              args.data, args.lines,
                                              args.every):
            elapsed = time.monotonic() - start
            samples.append((written, rss_mib()))
            print('%9d lines: rss %.1f MiB, %.0f lines/s (wall, with '
                  'decompression), agent loop %.0f lines/s (CPU), agent %s'
                  % (written, samples[-1][1], written / elapsed,
                     written / max(agent_cpu, 1e-9), dict(agent.stats)),
                  flush=True)
        agent.close()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    first, last = samples[0], samples[-1]
    print('RSS at %d lines: %.1f MiB; at %d lines: %.1f MiB; max %.1f MiB '
          '(cpus: %d)' % (first[0], first[1], last[0], last[1],
                          max(s[1] for s in samples), os.cpu_count()))
    return 0


if __name__ == '__main__':
    sys.exit(main())
