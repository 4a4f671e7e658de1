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

"""Unit tests of logrca-manage replay's merge and its end-to-end run."""

import collections
import dataclasses
import heapq
import random

from logrca import conf as logrca_conf
from logrca.agent import pipeline
from logrca.db import migration
from logrca.detectors import base as detector_base
from logrca.manage import replay
from logrca.parsing import base as parsing_base
from logrca.parsing import oslo_log
from logrca.parsing import records
from logrca.tests.unit.parsing import data

CINDER = ('Cinder-round_1.tar.xz',
          'Cinder/Test_2/logs/round_1/cinder/volume.log.bzip2.out')


def _stream(rnd, name, size):
    # Mostly ascending times with ties, gaps, records without a time and
    # a few out of order, like real streams merged by an agent.
    out = []
    ts = rnd.choice([0.0, 5.0, 50.0])
    for lineno in range(size):
        roll = rnd.random()
        if roll < 0.1:
            stamp = None
        elif roll < 0.15:
            stamp = ts - rnd.choice([1.0, 3.0])
        else:
            ts += rnd.choice([0.0, 0.0, 0.5, 1.0, 7.0])
            stamp = ts
        out.append(records.LogRecord(stream=name, timestamp=stamp,
                                     lineno=lineno))
    return out


def test_merge_by_time_equals_heapq_merge():
    rnd = random.Random(3)
    for _case in range(200):
        streams = [_stream(rnd, 's%d' % i, rnd.randint(0, 30))
                   for i in range(rnd.randint(1, 12))]
        want = list(heapq.merge(*streams,
                                key=lambda r: r.timestamp or 0.0))
        got = list(replay.merge_by_time([iter(s) for s in streams]))
        assert [(r.stream, r.lineno) for r in got] == [
            (r.stream, r.lineno) for r in want]


def test_replay_real_logs_end_to_end(tmp_path):
    raw = data.archive_member(*CINDER)
    folder = tmp_path / 'logs' / 'cinder'
    folder.mkdir(parents=True)
    (folder / 'volume.log').write_bytes(raw)
    # The same lines an hour later, as a second service's file.
    later = raw.replace(b'2018-06-26 0', b'2018-06-26 1')
    (folder / 'backup.log').write_bytes(later)
    conf = logrca_conf.new_conf()
    conf([], project='logrca', default_config_files=[])
    conf.set_override('connection', 'sqlite:///%s' % (tmp_path / 'db'),
                      'database')
    migration.upgrade(conf)
    files = replay.discover([str(tmp_path / 'logs')])
    merged = list(replay.merged_records(files, 65536,
                                        collections.Counter()))
    stamps = [r.timestamp for r in merged]
    assert stamps == sorted(stamps)
    assert {r.stream for r in merged} == {'cinder-volume', 'cinder-backup'}
    stats = replay.replay(conf, [str(tmp_path / 'logs')])
    assert stats['files'] == 2
    assert stats['lines'] == 2 * 487
    assert stats['records'] == len(merged) and stats['unparsed'] == 0
    assert stats['anomalies'] >= 1 and stats['stored'] == stats['anomalies']
    assert stats['sessions'] > 0
    # Replaying again stores nothing new (idempotent storage).
    again = replay.replay(conf, [str(tmp_path / 'logs')])
    assert again['anomalies'] == stats['anomalies'] and again['stored'] == 0


class _Recorder(detector_base.Detector):
    """Notes what a detector sees: records, their sessions, closings."""

    name = 'recorder'

    def __init__(self, conf):
        super().__init__(conf)
        self.seen = []

    def observe(self, record, sessions):
        self.seen.append((dataclasses.astuple(record),
                          [(s.key, s.count, len(s.records))
                           for s in sessions]))
        return []

    def on_session_closed(self, session):
        self.seen.append(('closed', session.key, session.count,
                          session.first_ts, session.last_ts,
                          sorted(session.streams), session.errors))
        return []


def test_process_many_equals_process_record_by_record():
    # Real records merged from two files, with unparsed lines among them.
    raw = data.archive_member(*CINDER).splitlines(keepends=True)
    raw[40:40] = [b'\x00\x01 binary\n', b'garbage line\n']
    later = [line.replace(b'2018-06-26 0', b'2018-06-26 1') for line in raw]
    conf = logrca_conf.new_conf()
    conf([], project='logrca', default_config_files=[])
    results = []
    for batch in (None, 1, 7, 4096):
        files = []
        for name, lines in (('volume', raw), ('backup', later)):
            reader = oslo_log.RecordReader('cinder-' + name)
            files.append(iter(list(reader.read(lines)) + reader.flush()))
        merged = list(replay.merge_by_time(files))
        recorder = _Recorder(conf)
        pipe = pipeline.Pipeline(
            conf, parsing_base.load_miner(conf, 'shape'),
            [pipeline.load_detector(conf, 'baseline'), recorder])
        found = []
        if batch is None:
            for record in merged:
                found.extend(pipe.process(record))
        else:
            for start in range(0, len(merged), batch):
                found.extend(pipe.process_many(merged[start:start + batch]))
        found.extend(pipe.finish())
        results.append(([a.to_dict() for a in found], recorder.seen,
                        dict(pipe.stats)))
    one_by_one = results[0]
    assert one_by_one[0] and one_by_one[2]['unparsed'] == 4
    assert any(item[0] == 'closed' for item in one_by_one[1])
    for other in results[1:]:
        assert other == one_by_one
