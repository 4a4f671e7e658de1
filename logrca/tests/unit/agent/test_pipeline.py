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

"""Unit tests of sessions, the pipeline and the baseline detector."""

from logrca import conf as logrca_conf
from logrca.agent import pipeline
from logrca.agent import sessions
from logrca.detectors import anomaly
from logrca.detectors import baseline
from logrca.parsing import records


def _conf(**agent):
    conf = logrca_conf.new_conf()
    conf([], project='logrca', default_config_files=[])
    for key, value in agent.items():
        conf.set_override(key, value, 'agent')
    return conf


def _rec(ts, level='INFO', rid=None, inst=None, stream='nova-compute',
         msg='hello', project=None):
    return records.LogRecord(stream=stream, timestamp=ts, level=level,
                             logger='nova.compute.manager', message=msg,
                             request_id=rid, instance_id=inst,
                             project_id=project, template_id=1)


def test_sessionizer_groups_by_request_instance_and_window():
    s = sessions.Sessionizer(window=60)
    got = s.add(_rec(100.0, rid='req-1', inst='i-1'))
    kinds = sorted(x.kind for x in got)
    assert kinds == ['instance', 'request', 'window']
    again = s.add(_rec(110.0, rid='req-1', stream='cinder-volume'))
    req = [x for x in again if x.kind == 'request'][0]
    assert req.count == 2 and req.streams == {'nova-compute',
                                              'cinder-volume'}


def test_sessionizer_prefers_global_request_id():
    s = sessions.Sessionizer(window=60)
    a = _rec(1.0, rid='req-a')
    a.global_request_id = 'req-g'
    b = _rec(2.0, rid='req-b')
    b.global_request_id = 'req-g'
    s.add(a)
    got = s.add(b)
    req = [x for x in got if x.kind == 'request'][0]
    assert req.key == ('request', 'req-g') and req.count == 2


def test_sessions_close_in_log_time_only():
    s = sessions.Sessionizer(window=60)
    s.add(_rec(100.0, rid='req-1'))
    # The window [60, 120) has passed; the request is idle for 50 s only.
    assert [c.key for c in s.expire(150.0)] == [('window', 'nova-compute',
                                                 60)]
    s.add(_rec(150.0, rid='req-2'))
    closed = s.expire(161.0)
    keys = {c.key for c in closed}
    assert ('request', 'req-1') in keys
    assert ('request', 'req-2') not in keys
    assert len(s.close_all()) >= 1 and len(s) == 0


def test_sessions_close_together_in_opening_order():
    s = sessions.Sessionizer(window=60)
    s.add(_rec(100.0, rid='req-b'))
    s.add(_rec(101.0, rid='req-a'))
    assert [c.key for c in s.expire(200.0)] == [
        ('request', 'req-b'), ('window', 'nova-compute', 60),
        ('request', 'req-a')]
    assert len(s) == 0


def test_session_closes_after_a_record_out_of_log_time_order():
    s = sessions.Sessionizer(window=60)
    s.add(_rec(100.0, rid='req-c'))
    s.add(_rec(150.0, rid='req-c'))
    assert ('request', 'req-c') not in {c.key for c in s.expire(165.0)}
    # An older record (another stream lagging) makes it idle since 120.
    s.add(_rec(120.0, rid='req-c', stream='cinder-volume'))
    assert ('request', 'req-c') in {c.key for c in s.expire(181.0)}


def test_window_session_of_a_stream_reopens_after_closing():
    s = sessions.Sessionizer(window=60)
    first = s.add(_rec(10.0))[-1]
    assert s.add(_rec(59.5))[-1] is first
    other = s.add(_rec(20.0, stream='cinder-volume'))[-1]
    assert other is not first and other.key == ('window', 'cinder-volume', 0)
    assert s.add(_rec(61.0))[-1].key == ('window', 'nova-compute', 60)
    closed = s.expire(120.0)
    assert first in closed and other in closed
    # A late record of the closed window opens a new session for it.
    late = s.add(_rec(30.0))[-1]
    assert late is not first
    assert late.key == first.key and late.count == 1
    assert s.add(_rec(None))[-1].key == ('window', 'nova-compute', 60)


def test_session_without_timestamp_closes_once_dated():
    s = sessions.Sessionizer(window=60)
    s.add(_rec(None, rid='req-u'))
    assert ('request', 'req-u') not in {c.key for c in s.expire(1000.0)}
    s.add(_rec(10.0, rid='req-u'))
    closed = {c.key: c for c in s.expire(100.0)}
    assert closed[('request', 'req-u')].count == 2
    assert closed[('request', 'req-u')].first_ts == 10.0


def test_baseline_raises_once_per_request_with_evidence():
    conf = _conf()
    pipe = pipeline.Pipeline(conf, None, [baseline.BaselineDetector(conf)])
    found = []
    found += pipe.process(_rec(1.0, rid='req-1', project='p1'))
    found += pipe.process(_rec(2.0, 'ERROR', rid='req-1', project='p1',
                               msg='boom'))
    found += pipe.process(_rec(3.0, 'ERROR', rid='req-1', msg='boom 2'))
    found += pipe.process(_rec(4.0, 'ERROR', rid='req-2', msg='other'))
    found += pipe.finish()
    assert len(found) == 2
    first = found[0]
    assert first.detector == 'baseline'
    assert first.session_key == ('request', 'req-1')
    assert first.project_id == 'p1' and first.raised_at == 2.0
    assert [e.message for e in first.evidence] == ['boom']
    assert pipe.stats['anomalies'] == 2


def test_baseline_ignores_normal_runs():
    conf = _conf()
    pipe = pipeline.Pipeline(conf, None, [baseline.BaselineDetector(conf)])
    found = []
    for i in range(100):
        found += pipe.process(_rec(float(i), rid='req-%d' % (i % 7)))
    found += pipe.finish()
    assert found == []


def test_baseline_keeps_state_only_for_sessions_with_errors():
    conf = _conf()
    pipe = pipeline.Pipeline(conf, None, [baseline.BaselineDetector(conf)])
    quiet = pipe.sessionizer.add(_rec(1.0, rid='req-1'))
    pipe.detectors[0].observe(_rec(1.5, rid='req-1'), quiet)
    assert [s.state for s in quiet] == [{}, {}]
    loud = pipe.sessionizer.add(_rec(2.0, 'ERROR', rid='req-2'))
    pipe.detectors[0].observe(loud[-1].records[-1], loud)
    assert loud[0].state == {'baseline': {'raised': True}}
    assert loud[1].state == {}


def test_pipeline_expires_sessions_as_log_time_moves_on():
    conf = _conf(session_window=60)
    pipe = pipeline.Pipeline(conf, None, [])
    pipe.process(_rec(0.0, rid='req-1'))
    pipe.process(_rec(10.0, rid='req-2'))
    # Records earlier than log time (or undated) never expire anything.
    pipe.process(_rec(5.0, rid='req-3'))
    pipe.process(_rec(None, rid='req-4'))
    assert pipe.stats['sessions'] == 0
    pipe.process(_rec(61.0, rid='req-5'))
    # req-1 and the first window [0, 60) are idle for a whole window.
    assert pipe.stats['sessions'] == 2
    pipe.process(_rec(70.5, rid='req-5'))
    assert pipe.stats['sessions'] == 4


def test_anomaly_ids_are_deterministic_and_round_trip():
    ev = anomaly.Evidence(timestamp=1.5, stream='nova-api', level='ERROR',
                          logger='nova.api', message='x', lineno=3)

    def make():
        return anomaly.Anomaly(detector='baseline', score=1.0, reason='r',
                               session_key=('request', 'req-1'),
                               start_time=1.5, end_time=1.5, raised_at=1.5,
                               evidence=[ev])

    a, b = make(), make()
    assert a.uuid == b.uuid
    back = anomaly.Anomaly.from_dict(a.to_dict())
    assert back.uuid == a.uuid and back.session_key == a.session_key
    assert back.evidence[0].message == 'x'
    other = anomaly.Anomaly(detector='deeplog', score=1.0, reason='r',
                            session_key=('request', 'req-1'),
                            start_time=1.5, end_time=1.5, raised_at=1.5,
                            evidence=[ev])
    assert other.uuid != a.uuid


def test_malformed_anomaly_dict_is_refused():
    import pytest
    with pytest.raises(ValueError):
        anomaly.Anomaly.from_dict({'detector': 'x'})
    with pytest.raises(ValueError):
        anomaly.Anomaly.from_dict({'detector': 'x', 'score': 1,
                                   'reason': 'r', 'start_time': None,
                                   'end_time': None, 'raised_at': None,
                                   'evidence': [{'bogus': 1}]})
