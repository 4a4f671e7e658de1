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

"""Parsing throughput on real fault-injection logs: logrca against Drain3.

Reads about a million service-log lines of the shared fault-injection
archives (round 2 of all three campaigns, streamed from the tar.xz files;
the tests whose id modulo ``--every`` is ``--remainder``, by default the
ids 1, 7, 13, ...), then measures on one core,
in the same run and interleaved stream by stream (so that load from other
processes falls on both alike):

  (a) RecordReader + the shape miner (the logrca ingest path), and the
      RecordReader alone;
  (b) RecordReader + Drain3 configured by tools/drain3_reference.ini
      (the same OpenStack-aware masking), and Drain3 alone on the messages;
  (c) with ``--replay``: ``logrca-manage replay`` end to end (parse,
      templates, sessions, the baseline detector, anomalies into SQLite)
      on the same lines written out as plain files.

With ``--replay-only`` it times (c) alone, which also runs against an
older logrca (``PYTHONPATH=OLD_CHECKOUT``) for before/after comparisons.

The reader and the shape miner use the compiled accelerator
(``logrca.parsing._speedups``) when it is built; the output says which
implementation ran (``LOGRCA_NO_SPEEDUPS=1`` or ``--no-speedups`` forces
the pure-Python code; Drain3's path uses the same reader).

Usage::

    .venv/bin/python tools/bench_parsing.py [--data DIR] [--lines N]
        [--every K --remainder R] [--replay | --replay-only]
        [--no-speedups] [--output FILE.json]
"""

import argparse
import collections
import gc
import json
import os
import pathlib
import re
import sys
import tarfile
import tempfile
import time

from drain3 import template_miner
from drain3 import template_miner_config

from logrca import conf as logrca_conf
from logrca.parsing import base
from logrca.parsing import oslo_log

try:
    from logrca.parsing import speedups
except ImportError:  # an older logrca (--replay-only before/after runs)
    speedups = None

ROOT = pathlib.Path(__file__).resolve().parents[1]
ARCHIVES = ('Nova-round_2.tar.xz', 'Cinder-round_2.tar.xz',
            'Neutron-round_2.tar.xz')
SERVICES = ('nova', 'cinder', 'neutron', 'glance', 'heat')
_MEMBER = re.compile(r'^\w+/Test_(\d+)/logs/round_\d/(\w+)/([\w.-]+)$')


def default_data():
    return (ROOT / '..' / 'shared' / 'data' /
            'dessertlab-openstack-fault-injection').resolve()


def load_streams(data, max_lines, every, remainder):
    """``[(stream name, [raw lines])]`` read from the round-2 archives.

    Every service log of the chosen tests is read whole (members are
    ordered by service, so a per-archive cap would leave out the services
    that come last); reading stops at ``max_lines``.
    """
    streams = []
    taken = 0
    for name in ARCHIVES:
        path = pathlib.Path(data) / 'logs' / name
        with tarfile.open(path, 'r|xz') as tar:
            for info in tar:
                match = _MEMBER.match(info.name)
                if (match is None or not info.isfile()
                        or match.group(2) not in SERVICES
                        or int(match.group(1)) % every != remainder):
                    continue
                lines = tar.extractfile(info).read().splitlines(
                    keepends=True)[:max_lines - taken]
                stream = '%s-%s' % (match.group(2),
                                    match.group(3).split('.')[0])
                streams.append((stream, lines))
                taken += len(lines)
                if taken >= max_lines:
                    return streams
    return streams


def drain3_reference():
    config = template_miner_config.TemplateMinerConfig()
    config.load(str(ROOT / 'tools' / 'drain3_reference.ini'))
    return template_miner.TemplateMiner(config=config)


def _logrca(reader, miner_add, lines):
    for record in reader.read(lines):
        (record.template_id, record.template,
         record.params) = miner_add(record.message)
    for record in reader.flush():
        (record.template_id, record.template,
         record.params) = miner_add(record.message)


def _drain_with_reader(reader, drain_add, lines):
    # The same reader as logrca's path; only the template miner differs.
    for record in reader.read(lines):
        record.template_id = drain_add(record.message)['cluster_id']
    for record in reader.flush():
        record.template_id = drain_add(record.message)['cluster_id']


def bench(streams, conf):
    """Time (a) and (b) interleaved stream by stream; return the figures."""
    shape = base.load_miner(conf, 'shape')
    drain_a = drain3_reference()
    drain_b = drain3_reference()
    seconds = collections.Counter()
    stats = collections.Counter()
    timer = time.process_time
    gc.collect()
    cold = oslo_log.clear_caches
    for stream, lines in streams:
        # Every pass over a stream starts with the readers' shared caches
        # empty, so no pass profits from another's.
        cold()
        t0 = timer()
        reader = oslo_log.RecordReader(stream)
        _logrca(reader, shape.add, lines)
        cold()
        t1 = timer()
        _drain_with_reader(oslo_log.RecordReader(stream),
                           drain_a.add_log_message, lines)
        t2 = timer()
        cold()
        messages = []
        extract = oslo_log.RecordReader(stream)
        messages.extend(r.message for r in extract.read(lines))
        messages.extend(r.message for r in extract.flush())
        t3 = timer()
        add = drain_b.add_log_message
        for message in messages:
            add(message)
        cold()
        t4 = timer()
        alone = oslo_log.RecordReader(stream)
        for _record in alone.read(lines):
            pass
        alone.flush()
        t5 = timer()
        seconds['reader'] += t5 - t4
        seconds['logrca'] += t1 - t0
        seconds['reader_drain3'] += t2 - t1
        seconds['drain3_alone'] += t4 - t3
        stats.update(reader.stats)
    lines = stats['lines']
    rate = {key: lines / value for key, value in seconds.items()}
    return {
        'lines': lines,
        'records': stats['records'],
        'unparsed': stats['unparsed'],
        'streams': len(streams),
        'seconds_cpu': dict(seconds),
        'lines_per_second': rate,
        'ratio_vs_reader_drain3': rate['logrca'] / rate['reader_drain3'],
        'ratio_vs_drain3_alone': rate['logrca'] / rate['drain3_alone'],
        'templates': {'shape': len(shape.templates),
                      'drain3': len(drain_a.drain.clusters)},
    }


def bench_replay(streams, conf_file=None):
    """Time ``logrca-manage replay`` on the streams written as files."""
    import logrca.cmd  # noqa: F401  (threading backend before oslo.messaging)
    from logrca.db import migration
    from logrca.manage import replay
    with tempfile.TemporaryDirectory(prefix='logrca-bench-') as tmp:
        folder = pathlib.Path(tmp) / 'logs'
        folder.mkdir()
        counts = collections.Counter()
        for stream, lines in streams:
            counts[stream] += 1
            path = folder / ('%s.%d.log' % (stream, counts[stream]))
            path.write_bytes(b''.join(lines))
        conf = logrca_conf.new_conf()
        conf(['--config-file', conf_file] if conf_file else [],
             project='logrca', default_config_files=[])
        conf.set_override('connection', 'sqlite:///%s/logrca.db' % tmp,
                          'database')
        migration.upgrade(conf)
        start = time.process_time()
        wall = time.monotonic()
        stats = replay.replay(conf, [str(folder)], progress=False)
        cpu = time.process_time() - start
        wall = time.monotonic() - wall
    return {'lines': stats['lines'], 'records': stats['records'],
            'anomalies': stats.get('anomalies'),
            'stored': stats.get('stored'),
            'seconds_cpu': cpu, 'seconds_wall': wall,
            'lines_per_second_cpu': stats['lines'] / cpu,
            'lines_per_second_wall': stats['lines'] / wall}


def _implementation():
    """Which reader and shape miner run: ``c`` or ``python``.

    Also works against an older logrca without the accelerator.
    """
    return speedups.implementation() if speedups else 'python'


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--data', default=str(default_data()),
                        help='The dessertlab-openstack-fault-injection '
                             'folder.')
    parser.add_argument('--lines', type=int, default=1000000,
                        help='About how many lines to read (default 1M).')
    parser.add_argument('--every', type=int, default=6,
                        help='Take the tests whose id modulo this ...')
    parser.add_argument('--remainder', type=int, default=1,
                        help='... is this (default: id mod 6 == 1, about '
                             '0.9M lines).')
    parser.add_argument('--cpu', type=int, default=None,
                        help='Pin to this CPU (default: the first allowed).')
    parser.add_argument('--replay', action='store_true',
                        help='Also time logrca-manage replay end to end.')
    parser.add_argument('--replay-only', action='store_true',
                        help='Time logrca-manage replay end to end only.')
    parser.add_argument('--config-file', default=None,
                        help='logrca configuration for --replay.')
    parser.add_argument('--no-speedups', action='store_true',
                        help='Use the pure-Python reader and miner even '
                             'when the compiled accelerator is built.')
    parser.add_argument('--output', default=None,
                        help='Also write the figures to this JSON file.')
    args = parser.parse_args(argv)
    if args.no_speedups and speedups:
        speedups.use(False)
    impl = _implementation()
    print('Reader and shape miner: %s' % impl, file=sys.stderr)

    cpu = args.cpu
    if hasattr(os, 'sched_setaffinity'):
        cpu = cpu if cpu is not None else min(os.sched_getaffinity(0))
        os.sched_setaffinity(0, {cpu})
    load = time.monotonic()
    streams = load_streams(args.data, args.lines, args.every,
                           args.remainder)
    print('Read %d lines in %d streams in %.0f s' % (
        sum(len(lines) for _s, lines in streams), len(streams),
        time.monotonic() - load), file=sys.stderr)

    if args.replay_only:
        rep = bench_replay(streams, args.config_file)
        rep['implementation'] = impl
        print('(c) logrca-manage replay:   %9.0f lines/s (cpu), %.0f (wall);'
              ' %.2f CPU s; %s anomalies; load %s; %s' % (
                  rep['lines_per_second_cpu'], rep['lines_per_second_wall'],
                  rep['seconds_cpu'], rep['anomalies'],
                  ' '.join('%.1f' % x for x in os.getloadavg()), impl))
        if args.output:
            pathlib.Path(args.output).write_text(
                json.dumps(rep, indent=1, sort_keys=True) + '\n')
        return 0
    conf = logrca_conf.new_conf()
    conf([], project='logrca', default_config_files=[])
    result = bench(streams, conf)
    rate = result['lines_per_second']
    print('lines: %d  records: %d  unparsed: %d  reader and shape: %s' % (
        result['lines'], result['records'], result['unparsed'], impl))
    print('(a) RecordReader + shape:   %9.0f lines/s' % rate['logrca'])
    print('    RecordReader alone:     %9.0f lines/s' % rate['reader'])
    print('(b) RecordReader + Drain3:  %9.0f lines/s' % rate['reader_drain3'])
    print('    Drain3 alone (messages): %8.0f lines/s' % rate['drain3_alone'])
    print('ratio (a)/(b): %.1fx   (a)/Drain3 alone: %.1fx' % (
        result['ratio_vs_reader_drain3'], result['ratio_vs_drain3_alone']))
    if args.replay:
        result['replay'] = bench_replay(streams, args.config_file)
        rep = result['replay']
        print('(c) logrca-manage replay:   %9.0f lines/s (cpu), %.0f (wall);'
              ' %s anomalies' % (rep['lines_per_second_cpu'],
                                 rep['lines_per_second_wall'],
                                 rep['anomalies']))
        print('ratio (c)/(b): %.1fx' % (
            rep['lines_per_second_cpu'] / rate['reader_drain3']))
    result.update({'cpu': cpu, 'cpu_count': os.cpu_count(),
                   'data': args.data, 'archives': ARCHIVES,
                   'every': args.every, 'remainder': args.remainder,
                   'timer': 'process_time',
                   'implementation': impl,
                   'protocol': 'logrca-eval-1'})
    if args.output:
        pathlib.Path(args.output).write_text(
            json.dumps(result, indent=1, sort_keys=True) + '\n')
    return 0


if __name__ == '__main__':
    sys.exit(main())
