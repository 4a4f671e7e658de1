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

"""Versioned notifications reach a real RabbitMQ listener."""

import queue
import uuid

import oslo_messaging
import pytest

from logrca import conf as logrca_conf
from logrca.conductor import notifier as notifier_mod
from logrca.detectors import anomaly as anomaly_mod
from logrca.tests import services

SECRET = 'Sup3rSecretPw'


def make_anomaly(**kw):
    evidence = [anomaly_mod.Evidence(
        timestamp=1700000000.5 + i, stream='nova-compute', level='ERROR',
        logger='nova.compute.manager',
        message='Instance failed to spawn, password=%s line %d'
                % (SECRET, i),
        request_id='req-0a5d1f7e-1f4f-4a34-9f52-c1fd5ef0c111',
        project_id='p1', instance_id='i-%d' % i, lineno=10 + i)
        for i in range(5)]
    fields = dict(detector='baseline', score=3.5, reason='error burst',
                  session_key=('request', 'req-0a5d1f7e'),
                  start_time=1700000000.5, end_time=1700000004.5,
                  raised_at=1700000004.5, service='nova-compute',
                  host='cmp1', project_id='p1', user_id='u1',
                  request_ids=['req-0a5d1f7e'], evidence=evidence,
                  threshold=1.0)
    fields.update(kw)
    return anomaly_mod.Anomaly(**fields)


class _Endpoint:
    def __init__(self):
        self.received = queue.Queue()

    def info(self, ctxt, publisher_id, event_type, payload, metadata):
        self.received.put((publisher_id, event_type, payload))


@pytest.fixture
def rabbit_conf():
    url = services.require_rabbit()
    topic = 'logrca_test_%s' % uuid.uuid4().hex[:10]
    conf = logrca_conf.new_conf()
    conf([], project='logrca')
    conf.set_override('host', 'ctl-1')
    # Registers the transport options on this conf only (never
    # set_transport_defaults(), which changes the default exchange of every
    # later conf in the process).
    oslo_messaging.get_notification_transport(conf).cleanup()
    conf.set_override('transport_url', url)
    conf.set_override('driver', ['messagingv2'],
                      group='oslo_messaging_notifications')
    conf.set_override('retry', 3, group='oslo_messaging_notifications')
    conf.set_override('versioned_notifications_topics', [topic],
                      group='notifications')
    conf.set_override('evidence_lines', 2, group='notifications')
    return conf, topic


@pytest.fixture
def listener(rabbit_conf):
    conf, topic = rabbit_conf
    transport = oslo_messaging.get_notification_transport(conf)
    endpoint = _Endpoint()
    server = oslo_messaging.get_notification_listener(
        transport, [oslo_messaging.Target(topic=topic)], [endpoint],
        pool='logrca-test')
    server.start()
    yield endpoint
    server.stop()
    server.wait()
    transport.cleanup()


def test_anomaly_create_reaches_listener(rabbit_conf, listener):
    conf, _topic = rabbit_conf
    notifier = notifier_mod.Notifier(conf)
    try:
        anomaly = make_anomaly()
        assert notifier.anomalies_stored([anomaly]) == 1
        publisher, event_type, payload = listener.received.get(timeout=20)
    finally:
        notifier.close()
    assert publisher == 'logrca-conductor.ctl-1'
    assert event_type == 'anomaly.create'
    assert payload['logrca_object.name'] == 'AnomalyPayload'
    assert payload['logrca_object.version'] == '1.0'
    assert payload['logrca_object.namespace'] == 'logrca'
    data = payload['logrca_object.data']
    assert data['uuid'] == anomaly.uuid
    assert data['score'] == 3.5 and data['service'] == 'nova-compute'
    assert data['raised_at'] == '2023-11-14T22:13:24.500000+00:00'
    assert data['evidence_count'] == 5
    assert len(data['evidence']) == 2
    first = data['evidence'][0]
    assert first['logrca_object.name'] == 'EvidencePayload'
    message = first['logrca_object.data']['message']
    assert message.startswith('Instance failed to spawn')
    assert SECRET not in str(payload)
    assert notifier.counters['notifications_sent'] == 1


def test_explanation_ready_reaches_listener(rabbit_conf, listener):
    conf, _topic = rabbit_conf
    anomaly = make_anomaly()
    explanation = {'driver': 'graph', 'created_at': None,
                   'body': {'summary': 'neutron port binding failed, '
                                       'token=%s' % SECRET,
                            'operation': 'instance boot',
                            'confidence': 0.75,
                            'suspects': [{'service': 'neutron'}, {}]}}
    try:
        assert notifier_mod.notify_explanation_ready(conf, anomaly.to_dict(),
                                                     explanation)
        publisher, event_type, payload = listener.received.get(timeout=20)
    finally:
        notifier_mod.get_notifier(conf).close()
    assert event_type == 'anomaly.explanation.ready'
    data = payload['logrca_object.data']
    assert payload['logrca_object.name'] == 'ExplanationPayload'
    assert data['anomaly_uuid'] == anomaly.uuid
    assert data['driver'] == 'graph' and data['suspect_count'] == 2
    assert data['operation'] == 'instance boot'
    assert data['confidence'] == 0.75
    assert data['summary'].startswith('neutron port binding failed')
    assert SECRET not in data['summary']
    assert data['anomaly']['logrca_object.data']['evidence'] == []


def test_no_driver_sends_nothing_and_stays_quiet(rabbit_conf, listener):
    conf, _topic = rabbit_conf
    conf.set_override('driver', [], group='oslo_messaging_notifications')
    notifier = notifier_mod.Notifier(conf)
    try:
        assert not notifier.enabled
        assert notifier.anomalies_stored([make_anomaly()]) == 0
        with pytest.raises(queue.Empty):
            listener.received.get(timeout=2)
    finally:
        notifier.close()


def test_malformed_anomaly_is_counted_others_sent(rabbit_conf, listener):
    conf, _topic = rabbit_conf
    notifier = notifier_mod.Notifier(conf)
    try:
        good = make_anomaly()
        sent = notifier.anomalies_stored([{'detector': 'x'}, good])
        _p, _e, payload = listener.received.get(timeout=20)
    finally:
        notifier.close()
    assert sent == 1
    assert notifier.counters['bad_anomaly'] == 1
    assert payload['logrca_object.data']['uuid'] == good.uuid
