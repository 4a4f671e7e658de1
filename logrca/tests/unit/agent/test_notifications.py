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

"""Normalising real OpenStack notification samples into records."""

import logrca.cmd  # noqa: F401,I001  (threading backend first)
import oslo_messaging
import pytest

from logrca.agent import notifications
from logrca.parsing import records
from logrca.tests.unit.agent import samples


def _record(message):
    return notifications.notification_to_record(
        samples.context_of(message), message.get('publisher_id'),
        message['event_type'], message['payload'],
        {'timestamp': message.get('timestamp'),
         'message_id': message.get('message_id')},
        message.get('priority', 'INFO'))


def test_every_sample_normalises():
    found = samples.all_samples()
    assert len(found) > 150
    errors = 0
    for name, message in found:
        rec = _record(message)
        assert rec.kind == records.NOTIFICATION, name
        assert rec.event_type == message['event_type'], name
        assert rec.message.startswith(message['event_type']), name
        assert rec.stream.startswith('notifications'), name
        if message.get('priority') == 'ERROR':
            errors += 1
            assert rec.level == 'ERROR', name
            # Error samples carry the exception and its message.
            assert ': ' in rec.message, (name, rec.message)
    # 14 nova, 2 masakari and 7 watcher ERROR samples.
    assert errors == 23


def test_versioned_instance_create_error():
    msg = samples.load(samples.samples_dir() / 'instance-create-error.json')
    rec = _record(msg)
    assert rec.level == 'ERROR' and rec.is_error
    assert rec.message == (
        "instance.create.error: FlavorDiskTooSmall: The created instance's "
        "disk would be too small.")
    uuid = msg['payload']['nova_object.data']['uuid']
    assert rec.instance_id == uuid
    assert rec.stream == 'notifications-nova-compute'
    assert rec.host == 'compute' and rec.logger == 'nova-compute'
    assert rec.extra[0].startswith('Traceback')
    assert rec.project_id == msg['payload']['nova_object.data']['tenant_id']
    assert notifications.wanted(rec)


def test_versioned_compute_exception_is_not_an_instance():
    msg = samples.load(samples.samples_dir() / 'compute-exception.json')
    rec = _record(msg)
    assert rec.message == ('compute.exception: AggregateNameExists: '
                           'Aggregate versioned_exc_aggregate already '
                           'exists.')
    assert rec.instance_id is None and rec.level == 'ERROR'


def test_legacy_instance_create_end_with_context():
    msg = samples.load(samples.samples_dir() / 'designate-sample-notifications'
                       / 'nova' / 'compute.instance.create.end.json')
    rec = _record(msg)
    assert rec.level == 'INFO'
    assert rec.request_id == 'req-5bef6a23-2e14-4b3f-9eb1-1be293b75fb7'
    assert rec.project_id == '33a88272e06a49c1a0f653abc374b56b'
    assert rec.user_id == '953f8394fa044302b7d42f47228e427d'
    assert rec.instance_id == msg['payload']['instance_id']
    assert rec.stream == 'notifications-nova-compute'
    assert rec.host == 'stack01'
    assert rec.timestamp == pytest.approx(1351965288.797009)
    # The context's auth token never reaches the record.
    assert msg['_context_auth_token'] not in repr(rec)
    assert notifications.wanted(rec)


def test_legacy_port_event_names_the_instance():
    msg = samples.load(samples.samples_dir() / 'designate-sample-notifications'
                       / 'neutron' / 'port.create.end.json')
    rec = _record(msg)
    assert rec.instance_id == msg['payload']['port']['device_id']
    assert rec.message == 'port.create.end: status=ACTIVE'
    assert rec.stream == 'notifications-neutron-server'


def test_wanted_keeps_errors_lifecycle_and_resource_events():
    def rec(event, level='INFO'):
        return records.LogRecord(stream='n', timestamp=0.0, level=level,
                                 event_type=event,
                                 kind=records.NOTIFICATION)
    assert notifications.wanted(rec('instance.create.start'))
    assert notifications.wanted(rec('volume.attach.end'))
    assert notifications.wanted(rec('port.update'))
    assert notifications.wanted(rec('metrics.update', level='ERROR'))
    assert not notifications.wanted(rec('metrics.update'))
    assert not notifications.wanted(rec('service.update'))


def test_secrets_in_fault_messages_are_masked():
    payload = {'exception': 'Unauthorized',
               'exception_message': 'login failed password=hunter2',
               'traceback': 'Traceback\n  auth_token: abcdef123'}
    rec = notifications.notification_to_record(
        {}, 'nova-api:h', 'compute.exception', {
            'nova_object.data': payload,
            'nova_object.name': 'ExceptionPayload'}, {}, 'error')
    assert 'hunter2' not in rec.message and 'abcdef123' not in rec.text()


@pytest.mark.parametrize('args', [
    ({}, 'nova-compute:h', None, {}, {}, 'INFO'),
    ({}, 'nova-compute:h', 'instance.create.end', 'not a dict', {}, 'INFO'),
    ({}, 'nova-compute:h', 'instance.create.end', [1, 2], {}, 'INFO'),
    ('ctx', 'nova-compute:h', 'instance.create.end', {}, {}, 'INFO'),
    ({}, 42, 'instance.create.end', {}, {}, 'INFO'),
    ({}, 'nova-compute:h', 'instance.create.end', {}, 'meta', 'INFO'),
    ({}, 'nova-compute:h', 'instance.create.end', {}, {}, 'LOUD'),
])
def test_malformed_notifications_raise(args):
    with pytest.raises(notifications.MalformedNotification):
        notifications.notification_to_record(*args)


def test_endpoint_acks_drops_and_requeues():
    handed = []
    results = iter([True, False])

    def handler(record):
        handed.append(record)
        ok = next(results, None)
        if ok is None:
            raise RuntimeError('conductor unreachable')
        return ok

    ep = notifications.NotificationEndpoint(handler)
    msg = samples.load(samples.samples_dir() / 'instance-create-error.json')
    args = ({}, msg['publisher_id'], msg['event_type'], msg['payload'], {})
    handled = oslo_messaging.NotificationResult.HANDLED
    requeue = oslo_messaging.NotificationResult.REQUEUE
    assert ep.error(*args) == handled
    assert ep.error(*args) == requeue          # handler said not stored
    assert ep.error(*args) == requeue          # handler raised
    # Garbage is dropped (acked) and counted, and the endpoint goes on.
    assert ep.info({}, 'x:y', 'instance.create.end', 'garbage', {}) == (
        handled)
    assert ep.info({}, 'x:y', 'metrics.update', {}, {}) == handled
    assert ep.stats['malformed'] == 1 and ep.stats['ignored'] == 1
    assert ep.stats['handled'] == 1 and ep.stats['requeued'] == 2
    assert len(handed) == 3 and handed[0].level == 'ERROR'
