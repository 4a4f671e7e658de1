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

"""The agent loop: offsets are committed only after the conductor stored.

The conductor is a fake here (this tests one class, the loop); the files,
readers, pipeline and baseline detector are real, fed with a real cinder
volume log of the shared fault-injection data (a traceback at line 142).
"""

import threading

import pytest

from logrca import conf as logrca_conf
from logrca.agent import follow
from logrca.agent import offsets
from logrca.agent import service
from logrca.parsing import oslo_log
from logrca.parsing import records
from logrca.tests.unit.parsing import data as shared

CINDER = ('Cinder-round_1.tar.xz',
          'Cinder/Test_2/logs/round_1/cinder/volume.log.bzip2.out')


class FakeConductor:
    """Stores anomaly dicts; unreachable for the first ``fail`` calls."""

    def __init__(self, fail=0):
        self.fail = fail
        self.calls = 0
        self.stored = []

    def store_anomalies(self, ctxt, anomalies):
        self.calls += 1
        if self.fail:
            self.fail -= 1
            raise ConnectionError('conductor unreachable')
        self.stored.extend(anomalies)
        return [a['uuid'] for a in anomalies] if anomalies and (
            'uuid' in anomalies[0]) else []


@pytest.fixture
def env(tmp_path, monkeypatch):
    monkeypatch.setattr(service, 'SEND_RETRY_DELAY', 0.01)
    raw = shared.archive_member(*CINDER)
    lines = raw.split(b'\n')[:-1]
    logdir = tmp_path / 'log' / 'cinder'
    logdir.mkdir(parents=True)
    conf = logrca_conf.new_conf()
    conf([], project='logrca', default_config_files=[])
    conf.set_override('state_path', str(tmp_path / 'state'))
    conf.set_override('log_files', [str(logdir / '*.log')], 'agent')
    conf.set_override('follow_from', 'beginning', 'agent')
    conf.set_override('notifications', False, 'agent')
    return conf, logdir / 'volume.log', lines


def _agent(conf, conductor):
    files = follow.FileFollower(
        conf, offsets.StateFile.for_conf(conf, 'files.json'))
    return service.Agent(conf, conductor, files=files)


def _append(path, lines):
    with open(path, 'ab') as f:
        f.write(b''.join(x + b'\n' for x in lines))


def _committed(conf):
    saved = offsets.StateFile.for_conf(conf, 'files.json').load()
    return [e['offset'] for e in saved.get('files', {}).values()]


def test_offsets_follow_the_conductor(env, monkeypatch):
    conf, path, lines = env
    _append(path, lines[:100])          # no error yet
    conductor = FakeConductor(fail=2)
    agent = _agent(conf, conductor)
    assert agent.run_once() == 100
    # The last record is held back by its reader: not committed yet.
    size_100 = path.stat().st_size
    assert _committed(conf) and _committed(conf)[0] < size_100
    _append(path, lines[100:])          # the traceback
    agent.run_once()
    # The conductor failed twice, then stored the baseline's anomaly.
    assert conductor.calls == 3 and conductor.stored
    assert agent.stats['send_failures'] == 2
    anomaly = conductor.stored[0]
    assert anomaly['detector'] == 'baseline'
    assert anomaly['service'] == 'cinder-volume'
    assert _committed(conf)[0] > size_100
    # Idle long enough: the held-back last record is handed on too.
    monkeypatch.setattr(service, 'FLUSH_AFTER', 0.0)
    agent.run_once()
    assert _committed(conf) == [path.stat().st_size]
    agent.close()
    # A restart reads nothing again.
    again = _agent(conf, FakeConductor())
    assert again.run_once() == 0


def test_nothing_committed_while_conductor_is_down(env):
    conf, path, lines = env
    _append(path, lines)
    conductor = FakeConductor(fail=10 ** 6)
    agent = _agent(conf, conductor)
    thread = threading.Thread(target=agent.run)
    thread.start()
    try:
        for _ in range(500):
            if agent.stats['send_failures'] >= 3:
                break
            threading.Event().wait(0.01)
    finally:
        agent.stop()
        thread.join(10)
    assert not thread.is_alive()
    assert agent.stats['send_failures'] >= 3 and not conductor.stored
    assert not any(_committed(conf))  # no offset saved beyond 0
    # Killed here: a restart reads every line again.
    agent.close()
    again = _agent(conf, FakeConductor())
    assert again.run_once() == len(lines)
    assert again.conductor.stored


def test_notification_is_acknowledged_after_storage(env):
    conf, _path, _lines = env
    conductor = FakeConductor(fail=1)
    agent = _agent(conf, conductor)
    record = records.LogRecord(
        stream='notifications-nova-compute', timestamp=1.0, level='ERROR',
        message='instance.create.error: NoValidHost: No valid host',
        request_id='req-1', kind=records.NOTIFICATION,
        event_type='instance.create.error')
    result = []
    waiter = threading.Thread(
        target=lambda: result.append(agent.on_notification(record)))
    waiter.start()
    for _ in range(200):
        if not agent._notes.empty():
            break
        threading.Event().wait(0.01)
    agent.run_once()
    waiter.join(10)
    assert result == [True]
    assert agent.stats['records'] == 1 and conductor.calls >= 1


def test_feed_gives_the_records_of_feeding_line_by_line(env):
    # Two files interleaved in runs, a gap in numbering, bad bytes, an
    # overlong line and lines of no known format: _feed reads runs with
    # RecordReader.read() and must give what feed() gives line by line.
    conf, _path, lines = env
    conf.set_override('max_line_length', 300, 'agent')
    raw = lines[:400] + [b'\xff\xfe not utf-8', b'x' * 500, b'',
                         b'no header here'] + lines[400:600]
    other = [b'2018-06-30 03:04:40.123 7 ERROR nova.x [-] boom %d' % i
             for i in range(50)]
    feed = []
    for i, data in enumerate(raw):
        # A gap in the numbering after line 100 (the file was truncated).
        lineno = i + 1 if i < 100 else i + 5
        feed.append(follow.Line('cinder-volume', data, 'a.log', 0, lineno,
                                'a'))
    feed = (feed[:150] + [follow.Line('nova-api', data, 'b.log', 0, n + 1,
                                      'b') for n, data in enumerate(other)]
            + feed[150:])
    agent = _agent(conf, FakeConductor())
    got = agent._feed(feed)
    readers = {}
    expected = []
    for line in feed:
        reader = readers.setdefault(line.key, oslo_log.RecordReader(
            line.stream, 300, conf.host))
        expected.extend([r] for r in reader.feed(line.data, line.lineno))
    assert got == expected
    assert len(got) > 300
    for key, reader in readers.items():
        assert agent._sources[key].reader.stats == reader.stats
        assert agent._sources[key].reader._current == reader._current
