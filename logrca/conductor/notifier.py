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

"""Outbound versioned notifications (oslo.messaging) and webhooks.

Event types (priority INFO), publisher ``logrca-conductor.<host>``:

``anomaly.create``
    An anomaly was stored for the first time; payload ``AnomalyPayload``.
``anomaly.explanation.ready``
    The explanation (root-cause analysis) of an anomaly was saved; payload
    ``ExplanationPayload``.

Payloads are versioned objects in the style of nova's versioned
notifications: ``{"logrca_object.name": ..., "logrca_object.namespace":
"logrca", "logrca_object.version": "X.Y", "logrca_object.data": {...}}``.
Adding a field bumps the minor version; changing or removing one bumps the
major version. Every text is masked with :func:`logrca.masking.mask`.
"""

import collections
import datetime
import threading
import uuid
import weakref

import oslo_messaging
from oslo_log import log
from oslo_utils import timeutils

from logrca import masking
from logrca.conductor import webhooks
from logrca.detectors import anomaly as anomaly_mod

LOG = log.getLogger(__name__)

NAMESPACE = 'logrca'
EVENT_ANOMALY_CREATE = 'anomaly.create'
EVENT_EXPLANATION_READY = 'anomaly.explanation.ready'
EVENT_TYPES = (EVENT_ANOMALY_CREATE, EVENT_EXPLANATION_READY)
PRIORITY = 'INFO'
# Longest text of one evidence line or summary in a payload; the full text
# is in the database and the API.
MAX_TEXT_CHARS = 2000

# Payload versions; the history is kept here, as nova keeps it on the
# payload classes.
#: AnomalyPayload 1.0: first version.
ANOMALY_PAYLOAD_VERSION = '1.0'
#: EvidencePayload 1.0: first version.
EVIDENCE_PAYLOAD_VERSION = '1.0'
#: ExplanationPayload 1.0: first version.
EXPLANATION_PAYLOAD_VERSION = '1.0'


def versioned(name, version, data):
    """Wrap ``data`` as a versioned object, nova-style."""
    return {'logrca_object.name': name,
            'logrca_object.namespace': NAMESPACE,
            'logrca_object.version': version,
            'logrca_object.data': data}


def _time(value):
    """ISO 8601 UTC text from epoch seconds, a datetime or None."""
    if value is None:
        return None
    if isinstance(value, datetime.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=datetime.UTC)
        return value.astimezone(datetime.UTC).isoformat()
    if isinstance(value, str):
        return value
    return datetime.datetime.fromtimestamp(
        float(value), datetime.UTC).isoformat()


def _text(value):
    if value is None:
        return None
    value = str(value)
    if len(value) > MAX_TEXT_CHARS:
        value = value[:MAX_TEXT_CHARS] + ' [truncated]'
    return masking.mask(value)


def _as_anomaly(item):
    """An :class:`Anomaly` from an Anomaly, its RPC dict or a DB dict."""
    if isinstance(item, anomaly_mod.Anomaly):
        return item
    if isinstance(item, dict):
        return anomaly_mod.Anomaly.from_dict(item)
    raise ValueError('not an anomaly: %s' % type(item).__name__)


def evidence_payload(evidence):
    """``EvidencePayload`` of one :class:`Evidence`."""
    return versioned('EvidencePayload', EVIDENCE_PAYLOAD_VERSION, {
        'timestamp': _time(evidence.timestamp),
        'stream': _text(evidence.stream),
        'level': evidence.level,
        'logger': _text(evidence.logger),
        'message': _text(evidence.message),
        'request_id': evidence.request_id,
        'project_id': evidence.project_id,
        'instance_id': evidence.instance_id,
        'template_id': evidence.template_id,
    })


def anomaly_payload(anomaly, evidence_lines=0):
    """``AnomalyPayload`` of an anomaly, with its first evidence lines."""
    anomaly = _as_anomaly(anomaly)
    session_key = list(anomaly.session_key or ())
    return versioned('AnomalyPayload', ANOMALY_PAYLOAD_VERSION, {
        'uuid': anomaly.uuid,
        'detector': anomaly.detector,
        'score': float(anomaly.score),
        'threshold': (float(anomaly.threshold)
                      if anomaly.threshold is not None else None),
        'reason': _text(anomaly.reason),
        'session_kind': str(session_key[0]) if session_key else None,
        'session_key': [_text(k) for k in session_key],
        'start_time': _time(anomaly.start_time),
        'end_time': _time(anomaly.end_time),
        'raised_at': _time(anomaly.raised_at),
        'service': anomaly.service,
        'host': anomaly.host,
        'project_id': anomaly.project_id,
        'user_id': anomaly.user_id,
        'request_ids': list(anomaly.request_ids or ()),
        'instance_ids': list(anomaly.instance_ids or ()),
        'evidence_count': len(anomaly.evidence or ()),
        'evidence': [evidence_payload(e)
                     for e in (anomaly.evidence or ())[:evidence_lines]],
    })


def explanation_payload(anomaly, explanation):
    """``ExplanationPayload``: the anomaly (no evidence) and a summary.

    :param explanation: dict with ``driver``, ``created_at`` and ``body``
        (as returned by the database API's ``explanation_get``), or the
        body alone: the dict of a :class:`logrca.rca.base.Explanation`
        (``summary``, ``operation``, ``suspects``, ``confidence``...).
    """
    if isinstance(explanation, dict) and 'body' in explanation:
        driver = explanation.get('driver')
        created_at = explanation.get('created_at')
        body = explanation.get('body')
    else:
        driver, created_at, body = None, None, explanation
    if hasattr(body, 'to_dict'):
        body = body.to_dict()
    if not isinstance(body, dict):
        body = {'summary': body} if isinstance(body, str) else {}
    suspects = body.get('suspects')
    confidence = body.get('confidence')
    payload_anomaly = anomaly_payload(anomaly, evidence_lines=0)
    return versioned('ExplanationPayload', EXPLANATION_PAYLOAD_VERSION, {
        'anomaly_uuid': payload_anomaly['logrca_object.data']['uuid'],
        'driver': driver or body.get('driver'),
        'created_at': _time(created_at) or timeutils.utcnow(
            with_timezone=True).isoformat(),
        'summary': _text(body.get('summary')),
        'operation': body.get('operation'),
        'confidence': (float(confidence) if isinstance(
            confidence, (int, float)) else None),
        'suspect_count': (len(suspects) if isinstance(suspects, list)
                          else 0),
        'anomaly': payload_anomaly,
    })


class Notifier:
    """Send logrca's outbound notifications and webhooks.

    One per process: it holds a notification transport and the webhook
    threads. Failures are logged and counted (``counters``), never raised:
    storing an anomaly never fails because a notification could not go
    out.
    """

    def __init__(self, conf, transport=None):
        self.conf = conf
        self.publisher_id = 'logrca-conductor.%s' % conf.host
        self.counters = collections.Counter()
        self._own_transport = transport is None
        if transport is None:
            transport = oslo_messaging.get_notification_transport(conf)
        self.transport = transport
        self._notifier = oslo_messaging.Notifier(
            transport, publisher_id=self.publisher_id,
            topics=list(conf.notifications.versioned_notifications_topics))
        # Notifier.is_enabled() is true for an empty driver list, which
        # sends nothing: look at the configured drivers.
        drivers = set(conf.oslo_messaging_notifications.driver) - {'noop'}
        self.messaging_enabled = bool(drivers)
        self.webhooks = webhooks.WebhookSender(conf)

    @property
    def enabled(self):
        """True when notifications or webhooks go anywhere."""
        return self.messaging_enabled or self.webhooks.enabled

    def _emit(self, event_type, payload):
        if self.messaging_enabled:
            try:
                self._notifier.info({}, event_type, payload)
                self.counters['notifications_sent'] += 1
            except Exception as exc:  # driver errors vary by transport
                LOG.error('Could not send notification %s: %s',
                          event_type, exc)
                self.counters['notifications_failed'] += 1
        if self.webhooks.enabled:
            # The document a webhook gets mirrors the message an
            # oslo.messaging consumer gets.
            self.webhooks.send(event_type, {
                'message_id': str(uuid.uuid4()),
                'publisher_id': self.publisher_id,
                'event_type': event_type,
                'priority': PRIORITY,
                'timestamp': timeutils.utcnow(
                    with_timezone=True).isoformat(),
                'payload': payload,
            })

    def anomalies_stored(self, anomalies):
        """Emit ``anomaly.create`` for each newly stored anomaly.

        :param anomalies: :class:`Anomaly` objects or their dicts.
        :returns: the number of notifications emitted.
        """
        if not self.enabled:
            return 0
        lines = self.conf.notifications.evidence_lines
        emitted = 0
        for item in anomalies:
            try:
                payload = anomaly_payload(item, evidence_lines=lines)
            except (ValueError, TypeError) as exc:
                LOG.error('No notification for a malformed anomaly: %s',
                          exc)
                self.counters['bad_anomaly'] += 1
                continue
            self._emit(EVENT_ANOMALY_CREATE, payload)
            emitted += 1
        return emitted

    def explanation_ready(self, anomaly, explanation):
        """Emit ``anomaly.explanation.ready``; return True when emitted."""
        if not self.enabled:
            return False
        try:
            payload = explanation_payload(anomaly, explanation)
        except (ValueError, TypeError) as exc:
            LOG.error('No notification for a malformed explanation: %s',
                      exc)
            self.counters['bad_anomaly'] += 1
            return False
        self._emit(EVENT_EXPLANATION_READY, payload)
        return True

    def close(self):
        """Finish the queued webhooks and release the transport."""
        self.webhooks.close(wait=True)
        if self._own_transport:
            self.transport.cleanup()


# One Notifier per configuration object, so that callers that only hold
# ``conf`` do not open a broker connection per call. ConfigOpts is not
# hashable: the cache is keyed by id() and holds a weak reference to check
# that the id still names the same object.
_NOTIFIERS = {}
_NOTIFIERS_LOCK = threading.Lock()


def get_notifier(conf):
    """The :class:`Notifier` of ``conf``, made on first use."""
    with _NOTIFIERS_LOCK:
        for key in [k for k, (ref, _n) in _NOTIFIERS.items()
                    if ref() is None]:
            del _NOTIFIERS[key]
        entry = _NOTIFIERS.get(id(conf))
        if entry is not None and entry[0]() is conf:
            return entry[1]
        notifier = Notifier(conf)
        _NOTIFIERS[id(conf)] = (weakref.ref(conf), notifier)
        return notifier


def notify_anomalies_stored(conf, anomalies):
    """Emit ``anomaly.create`` for ``anomalies`` (the newly stored ones)."""
    return get_notifier(conf).anomalies_stored(anomalies)


def notify_explanation_ready(conf, anomaly, explanation):
    """Emit ``anomaly.explanation.ready`` for ``anomaly``."""
    return get_notifier(conf).explanation_ready(anomaly, explanation)
