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

"""OpenStack notifications (legacy and versioned) as records beside logs."""

# oslo.service picks its backend when oslo.messaging is first imported:
# make it the threading one whoever imports this module first.
import logrca.cmd  # noqa: F401,I001

import calendar
import collections
import time

import oslo_messaging
from oslo_log import log

from logrca import masking
from logrca.parsing import records

LOG = log.getLogger(__name__)

# Priorities of oslo.messaging (endpoint method names) as log levels.
LEVELS = {
    'DEBUG': 'DEBUG', 'INFO': 'INFO', 'AUDIT': 'INFO', 'SAMPLE': 'INFO',
    'WARN': 'WARNING', 'WARNING': 'WARNING', 'ERROR': 'ERROR',
    'CRITICAL': 'CRITICAL',
}

# Legacy publisher ids are SERVICE.HOST with a short service name.
LEGACY_SERVICES = {
    'compute': 'nova-compute', 'scheduler': 'nova-scheduler',
    'conductor': 'nova-conductor', 'api': 'nova-api',
    'network': 'neutron-server', 'volume': 'cinder-volume',
    'image': 'glance-api', 'orchestration': 'heat-engine',
    'identity': 'keystone',
}

# Event types that become records besides errors: lifecycle steps and the
# volume, port and network events detectors learn sequences from.
EVENT_PREFIXES = ('instance.', 'compute.instance.', 'volume.', 'snapshot.',
                  'port.', 'floatingip.', 'network.', 'subnet.', 'router.',
                  'compute_task.', 'scheduler.', 'libvirt.')
EVENT_SUFFIXES = ('.start', '.end', '.error', '.exception')

# Longest summary kept in a record's message.
MAX_SUMMARY = 400
MAX_TRACEBACK_LINES = 50


class MalformedNotification(ValueError):
    """A notification that cannot be read (missing or wrong-typed fields)."""


def _object_data(payload):
    """(name, data) of a versioned payload (``<ns>_object.data``)."""
    for key, value in payload.items():
        if key.endswith('_object.data') and isinstance(value, dict):
            prefix = key[:-len('data')]
            name = payload.get(prefix + 'name')
            return (name if isinstance(name, str) else None), value
    return None, None


def _str(value):
    return value if isinstance(value, str) and value else None


def _fault(data):
    """(exception, message, traceback) of a versioned or legacy fault."""
    if not isinstance(data, dict):
        return None
    if 'exception_message' in data or (
            'exception' in data and isinstance(data.get('exception'), str)):
        return (_str(data.get('exception')),
                _str(data.get('exception_message')) or _str(
                    data.get('message')),
                _str(data.get('traceback')))
    fault = data.get('fault')
    if not isinstance(fault, dict):
        # nova's libvirt.connect.error keeps its ExceptionPayload in reason.
        fault = data.get('reason')
    if isinstance(fault, dict):
        _name, inner = _object_data(fault)
        if inner is not None:
            return _fault(inner)
        return (_str(fault.get('exception')) or _str(fault.get('code')),
                _str(fault.get('message')) or _str(
                    fault.get('exception_message')),
                _str(fault.get('details')) or _str(fault.get('traceback')))
    exc = data.get('exception')
    if isinstance(exc, dict):
        return (_str(exc.get('class')) or _str(exc.get('name'))
                or _str(exc.get('kwargs', {}).get('code')
                        if isinstance(exc.get('kwargs'), dict) else None),
                _str(exc.get('message')) or _str(data.get('message')), None)
    message = _str(data.get('message')) or _str(data.get('error_message'))
    if message:
        return None, message, None
    return None


def _timestamp(metadata):
    value = metadata.get('timestamp') if metadata else None
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str) and len(value) >= 19:
        try:
            base = calendar.timegm(time.strptime(
                value[:19].replace('T', ' '), '%Y-%m-%d %H:%M:%S'))
        except ValueError:
            return time.time()
        frac = value[20:26] if len(value) > 20 and value[19] == '.' else ''
        return base + (float('0.' + frac) if frac.isdigit() else 0.0)
    return time.time()


def _publisher(publisher_id):
    """(service, host) of a publisher id (``nova-compute:host1``)."""
    if not publisher_id:
        return None, None
    if ':' in publisher_id:
        service, _, host = publisher_id.partition(':')
    else:
        service, _, host = publisher_id.partition('.')
        service = LEGACY_SERVICES.get(service, service)
    return service or None, host or None


def notification_to_record(ctxt, publisher_id, event_type, payload,
                           metadata, priority):
    """Turn one notification into a ``kind=NOTIFICATION`` LogRecord.

    Handles legacy payloads (``compute.instance.create.end``,
    ``compute.exception``, ``port.create.end``, ``*.error``) and versioned
    ones (``<namespace>_object.data``, e.g. nova's ``instance.create.error``
    or ``compute.exception``). The message is the event type, followed by
    the fault (exception and its message) when there is one, else the
    state; the traceback of a fault goes to ``extra``. All text is masked.

    :raises MalformedNotification: when the notification cannot be read.
    """
    if not isinstance(event_type, str) or not event_type.strip():
        raise MalformedNotification('event_type is missing or not a string: '
                                    '%r' % (event_type,))
    if not isinstance(payload, dict):
        raise MalformedNotification('payload of %s is not an object but %s'
                                    % (event_type, type(payload).__name__))
    if ctxt is None:
        ctxt = {}
    if not isinstance(ctxt, dict):
        raise MalformedNotification('context of %s is not an object'
                                    % event_type)
    if metadata is not None and not isinstance(metadata, dict):
        raise MalformedNotification('metadata of %s is not an object'
                                    % event_type)
    if publisher_id is not None and not isinstance(publisher_id, str):
        raise MalformedNotification('publisher_id of %s is not a string'
                                    % event_type)
    if not isinstance(priority, str):
        raise MalformedNotification('priority of %s is not a string'
                                    % event_type)
    level = LEVELS.get(priority.upper())
    if level is None:
        raise MalformedNotification('unknown priority %r of %s'
                                    % (priority, event_type))
    if level not in records.ERROR_LEVELS and event_type.endswith(
            ('.error', '.exception')):
        level = 'ERROR'

    name, data = _object_data(payload)
    body = data if data is not None else payload
    service, host = _publisher(publisher_id)

    instance = (_str(body.get('instance_uuid'))
                or _str(body.get('instance_id'))
                or _str(payload.get('instance_id'))
                or _str(payload.get('instance_uuid')))
    if instance is None and name and name.startswith('Instance'):
        instance = _str(body.get('uuid'))
    port = payload.get('port')
    if instance is None and isinstance(port, dict) and str(
            port.get('device_owner') or '').startswith('compute:'):
        instance = _str(port.get('device_id'))

    summary = []
    extra = []
    fault = _fault(body)
    if fault is not None:
        exc, text, trace = fault
        summary.append(': '.join(x for x in (exc, text) if x))
        if trace:
            extra = trace.splitlines()[:MAX_TRACEBACK_LINES]
    else:
        for key in ('state', 'status', 'task_state'):
            value = body.get(key)
            if isinstance(value, str) and value:
                summary.append('%s=%s' % (key, value))
        if isinstance(port, dict) and isinstance(port.get('status'), str):
            summary.append('status=%s' % port['status'])
    text = ' '.join(x for x in summary if x)
    if len(text) > MAX_SUMMARY:
        text = text[:MAX_SUMMARY] + '...'
    message = event_type + (': ' + text if text else '')

    return records.LogRecord(
        stream='notifications-%s' % service if service else 'notifications',
        timestamp=_timestamp(metadata),
        level=level,
        logger=service,
        message=masking.mask(message),
        host=_str(body.get('host')) if host is None else host,
        request_id=_str(ctxt.get('request_id')),
        global_request_id=_str(ctxt.get('global_request_id')),
        user_id=(_str(ctxt.get('user_id')) or _str(ctxt.get('user'))
                 or _str(body.get('user_id'))),
        project_id=(_str(ctxt.get('project_id')) or _str(ctxt.get('tenant'))
                    or _str(ctxt.get('tenant_id'))
                    or _str(body.get('tenant_id'))
                    or _str(body.get('project_id'))),
        instance_id=instance,
        extra=[masking.mask(x) for x in extra],
        kind=records.NOTIFICATION,
        event_type=event_type,
    )


def wanted(record):
    """True for notifications the agent turns into events.

    Errors always; lifecycle steps (``*.start``, ``*.end``) and instance,
    volume, port and network events too.
    """
    if record.is_error:
        return True
    event = record.event_type or ''
    return event.endswith(EVENT_SUFFIXES) or event.startswith(EVENT_PREFIXES)


class NotificationEndpoint:
    """oslo.messaging endpoint: normalise, hand on, ack when stored.

    :param handler: ``handler(record) -> bool``; True once the record was
        handed on and what it caused is stored, False (or an exception) if
        that failed. The notification is then requeued.
    """

    def __init__(self, handler):
        self.handler = handler
        self.stats = collections.Counter()

    def _handle(self, ctxt, publisher_id, event_type, payload, metadata,
                priority):
        self.stats['received'] += 1
        try:
            record = notification_to_record(ctxt, publisher_id, event_type,
                                            payload, metadata, priority)
        except Exception as exc:
            # Garbage is dropped (acked) so that it cannot block the queue.
            self.stats['malformed'] += 1
            LOG.warning('Dropping malformed notification from %r: %s',
                        publisher_id, exc)
            return oslo_messaging.NotificationResult.HANDLED
        if not wanted(record):
            self.stats['ignored'] += 1
            return oslo_messaging.NotificationResult.HANDLED
        try:
            ok = self.handler(record)
        except Exception:
            LOG.exception('Handing on notification %s failed', event_type)
            ok = False
        if not ok:
            self.stats['requeued'] += 1
            return oslo_messaging.NotificationResult.REQUEUE
        self.stats['handled'] += 1
        return oslo_messaging.NotificationResult.HANDLED

    def audit(self, ctxt, publisher_id, event_type, payload, metadata):
        return self._handle(ctxt, publisher_id, event_type, payload,
                            metadata, 'AUDIT')

    def debug(self, ctxt, publisher_id, event_type, payload, metadata):
        return self._handle(ctxt, publisher_id, event_type, payload,
                            metadata, 'DEBUG')

    def info(self, ctxt, publisher_id, event_type, payload, metadata):
        return self._handle(ctxt, publisher_id, event_type, payload,
                            metadata, 'INFO')

    def warn(self, ctxt, publisher_id, event_type, payload, metadata):
        return self._handle(ctxt, publisher_id, event_type, payload,
                            metadata, 'WARN')

    def error(self, ctxt, publisher_id, event_type, payload, metadata):
        return self._handle(ctxt, publisher_id, event_type, payload,
                            metadata, 'ERROR')

    def critical(self, ctxt, publisher_id, event_type, payload, metadata):
        return self._handle(ctxt, publisher_id, event_type, payload,
                            metadata, 'CRITICAL')


def targets(conf):
    """Listener targets: every topic on the default and extra exchanges."""
    result = []
    for topic in conf.agent.notification_topics:
        result.append(oslo_messaging.Target(topic=topic))
        for exchange in conf.agent.notification_exchanges:
            result.append(oslo_messaging.Target(topic=topic,
                                                exchange=exchange))
    return result


def make_listener(conf, handler, transport=None):
    """A started-later notification listener and its endpoint.

    Uses ``[agent] notification_pool`` so that logrca gets its own copy of
    every notification and agents of one pool share the work. Requeueing is
    allowed: a notification whose record could not be stored comes again.

    :returns: ``(listener, endpoint)``; call ``listener.start()``.
    """
    if transport is None:
        transport = oslo_messaging.get_notification_transport(conf)
    endpoint = NotificationEndpoint(handler)
    listener = oslo_messaging.get_notification_listener(
        transport, targets(conf), [endpoint],
        pool=conf.agent.notification_pool or None, allow_requeue=True)
    return listener, endpoint
