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

"""Anomalies: what detectors raise and the conductor stores."""

import dataclasses
import hashlib
import uuid

# Namespace of the deterministic anomaly ids (uuid5): the same anomaly,
# raised again after a replay or redelivered by RPC, gets the same id, which
# makes storing idempotent.
_NAMESPACE = uuid.UUID('5b0c3a0e-4f53-4c64-9b1c-7a1d2e0f6a11')


@dataclasses.dataclass(slots=True)
class Evidence:
    """One log line or notification cited as evidence of an anomaly."""

    timestamp: float | None
    stream: str
    level: str | None
    logger: str | None
    message: str
    request_id: str | None = None
    project_id: str | None = None
    instance_id: str | None = None
    template_id: int | None = None
    lineno: int = 0

    @classmethod
    def from_record(cls, record):
        """Build evidence from a :class:`~logrca.parsing.records.LogRecord`."""
        return cls(timestamp=record.timestamp, stream=record.stream,
                   level=record.level, logger=record.logger,
                   message=record.text(), request_id=record.request_id,
                   project_id=record.project_id,
                   instance_id=record.instance_id,
                   template_id=record.template_id, lineno=record.lineno)

    def to_dict(self):
        return dataclasses.asdict(self)


@dataclasses.dataclass(slots=True)
class Anomaly:
    """An anomaly raised by a detector.

    :ivar detector: name of the detector driver that raised it.
    :ivar score: anomaly score; higher is more anomalous.
    :ivar reason: one line saying why it was raised.
    :ivar session_key: the session it was found in, e.g.
        ``('request', 'req-...')``, ``('instance', uuid)`` or
        ``('window', service, start)``.
    :ivar start_time, end_time: log time span of the evidence.
    :ivar raised_at: log time of the record on which it was raised.
    """

    detector: str
    score: float
    reason: str
    session_key: tuple
    start_time: float | None
    end_time: float | None
    raised_at: float | None
    service: str | None = None
    host: str | None = None
    project_id: str | None = None
    user_id: str | None = None
    request_ids: list = dataclasses.field(default_factory=list)
    instance_ids: list = dataclasses.field(default_factory=list)
    evidence: list = dataclasses.field(default_factory=list)
    threshold: float | None = None
    uuid: str | None = None

    def __post_init__(self):
        if self.uuid is None:
            self.uuid = self.make_id()

    def make_id(self):
        """Deterministic id from detector, session and first evidence."""
        first = self.evidence[0] if self.evidence else None
        key = '|'.join([
            self.detector, repr(tuple(self.session_key)),
            repr(first.timestamp if first else self.start_time),
            first.stream if first else '',
            str(first.lineno) if first else '',
            hashlib.sha1((first.message if first else self.reason)
                         .encode('utf-8', 'replace')).hexdigest(),
        ])
        return str(uuid.uuid5(_NAMESPACE, key))

    def to_dict(self):
        """A JSON-serialisable dict, as sent over RPC."""
        data = dataclasses.asdict(self)
        data['session_key'] = list(self.session_key)
        return data

    @classmethod
    def from_dict(cls, data):
        """Rebuild an anomaly sent over RPC; raises ValueError if malformed."""
        try:
            evidence = [Evidence(**e) for e in data.get('evidence') or []]
            fields = {k: data[k] for k in (
                'detector', 'score', 'reason', 'start_time', 'end_time',
                'raised_at')}
        except (KeyError, TypeError) as exc:
            raise ValueError('malformed anomaly: %s' % exc) from exc
        optional = {k: data.get(k) for k in (
            'service', 'host', 'project_id', 'user_id', 'threshold', 'uuid')}
        return cls(session_key=tuple(data.get('session_key') or ()),
                   request_ids=list(data.get('request_ids') or []),
                   instance_ids=list(data.get('instance_ids') or []),
                   evidence=evidence, **fields, **optional)
