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

"""The notification listener receives real payloads through RabbitMQ."""

import logrca.cmd  # noqa: F401,I001  (threading backend first)

import queue
import threading
import time
import uuid

import oslo_messaging
from oslo_context import context as oslo_context

from logrca import conf as logrca_conf
from logrca.agent import notifications
from logrca.tests import services
from logrca.tests.unit.agent import samples


def _conf(url, topic, pool, exchanges=()):
    conf = logrca_conf.new_conf()
    conf([], project='logrca', default_config_files=[])
    conf.set_override('notification_topics', [topic], 'agent')
    conf.set_override('notification_pool', pool, 'agent')
    conf.set_override('notification_exchanges', list(exchanges), 'agent')
    return conf


class ContextSerializer(oslo_messaging.NoOpSerializer):
    """What nova's RequestContextSerializer does to a context."""

    def serialize_context(self, context):
        return context.to_dict()


def _notifier(url, topic, publisher_id, exchange=None):
    conf = logrca_conf.new_conf()
    conf([], project='logrca', default_config_files=[])
    transport = oslo_messaging.get_notification_transport(conf, url=url)
    if exchange:
        # The exchange is fixed when a transport is made; the first one
        # registered the option.
        transport.cleanup()
        conf.set_override('control_exchange', exchange)
        transport = oslo_messaging.get_notification_transport(conf, url=url)
    # Services send a RequestContext; a plain dict context is dropped.
    serializer = ContextSerializer()
    return transport, oslo_messaging.Notifier(
        transport, publisher_id=publisher_id, driver='messagingv2',
        topics=[topic], serializer=serializer)


def test_listener_receives_real_notifications_and_requeues():
    url = services.require_rabbit()
    topic = 'logrca_test_%s' % uuid.uuid4().hex[:8]
    pool = 'logrca-test-%s' % uuid.uuid4().hex[:8]
    conf = _conf(url, topic, pool, exchanges=['nova'])
    got = queue.Queue()
    refused = threading.Event()

    def handler(record):
        # The first error is refused once (storage down): it must come
        # back, requeued by the broker.
        if record.is_error and not refused.is_set():
            refused.set()
            return False
        got.put(record)
        return True

    transport = oslo_messaging.get_notification_transport(conf, url=url)
    listener, endpoint = notifications.make_listener(conf, handler,
                                                     transport)
    listener.start()
    try:
        root = samples.samples_dir()
        error = samples.load(root / 'instance-create-error.json')
        start = samples.load(root / 'instance-create-start.json')
        ctxt = oslo_context.RequestContext(
            request_id='req-%s' % uuid.uuid4(), project_id='p1',
            user_id='u1', global_request_id='req-%s' % uuid.uuid4())
        ntrans, notifier = _notifier(url, topic, error['publisher_id'])
        # The nova exchange is followed too.
        xtrans, nova_notifier = _notifier(url, topic, start['publisher_id'],
                                          exchange='nova')
        time.sleep(0.5)  # let the listener bind its queues
        notifier.error(ctxt, error['event_type'], error['payload'])
        nova_notifier.info(ctxt, start['event_type'], start['payload'])
        notifier.info(ctxt, 'instance.create.end', 'garbage payload')
        notifier.info(ctxt, 'metrics.update', {'nova_object.data': {}})
        received = []
        deadline = time.monotonic() + 20
        while len(received) < 2 and time.monotonic() < deadline:
            try:
                received.append(got.get(timeout=0.5))
            except queue.Empty:
                pass
        by_event = {r.event_type: r for r in received}
        assert set(by_event) == {'instance.create.error',
                                 'instance.create.start'}
        rec = by_event['instance.create.error']
        assert rec.level == 'ERROR'
        assert 'FlavorDiskTooSmall' in rec.message
        assert rec.request_id == ctxt.request_id
        assert rec.global_request_id == ctxt.global_request_id
        assert rec.project_id == 'p1' and rec.user_id == 'u1'
        assert rec.timestamp is not None
        assert abs(rec.timestamp - time.time()) < 60
        deadline = time.monotonic() + 10
        while (endpoint.stats['malformed'] + endpoint.stats['ignored'] < 2
               and time.monotonic() < deadline):
            time.sleep(0.1)
        assert endpoint.stats['requeued'] == 1
        assert endpoint.stats['malformed'] == 1
        assert endpoint.stats['ignored'] == 1
        assert endpoint.stats['handled'] == 2
        ntrans.cleanup()
        xtrans.cleanup()
    finally:
        listener.stop()
        listener.wait()
        transport.cleanup()
