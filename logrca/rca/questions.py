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

"""Questions and follow-ups: from a question to stored anomalies, answered.

:class:`QueryParser` turns a question ("What caused the server outage?",
"why did volume attach fail for instance X in the last hour?") into a
structured :class:`Query` (intent, time range, service, operation,
instance/volume/request ids). :class:`QueryProcessor` answers it from the
stored anomalies and their explanations; a :class:`Conversation` keeps the
previous query and answer, so follow-ups ("what should I check first?",
"did this happen before?") work.

Answer semantics (the question set is scored against them): the answer
anomaly of a "cause" question is the EARLIEST stored anomaly satisfying
every constraint of the query (the first thing that went wrong); a
follow-up without constraints of its own keeps the previous answer; a
"history" question answers with the earliest earlier anomaly whose top
suspect module is the same.

API entry point: ``QueryProcessor(conf, dbapi).ask(question,
conversation=None, now=None, project_id=None)`` returns a JSON-ready dict
(``conversation`` holds what to send back for a follow-up).
"""

import dataclasses
import datetime
import re
import uuid as uuid_mod

from oslo_log import log

from logrca import masking
from logrca.rca import base
from logrca.rca import operations

LOG = log.getLogger(__name__)

CAUSE = 'cause'
NEXT_STEPS = 'next_steps'
HISTORY = 'history'
LIST = 'list'
COUNT = 'count'
INTENTS = (CAUSE, NEXT_STEPS, HISTORY, LIST, COUNT)

SERVICES = ('nova', 'cinder', 'neutron', 'glance', 'heat', 'keystone')

_UUID = r'[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}'
_REQ_RE = re.compile(r'\breq-(%s)\b' % _UUID, re.I)
_TYPED_ID_RE = re.compile(
    r'\b(instance|server|vm|volume|vol)\s+(?:id\s+)?(%s)\b' % _UUID, re.I)
_ID_RE = re.compile(r'\b(%s)\b' % _UUID, re.I)
_UNITS = {'second': 1, 'sec': 1, 'minute': 60, 'min': 60, 'hour': 3600,
          'hr': 3600, 'day': 86400, 'week': 604800}
_LAST_RE = re.compile(
    r'\b(?:in\s+)?the\s+(?:last|past)\s+(?:(\d+|an?|one|two|three|'
    r'five|ten|twenty|thirty)\s+)?(second|sec|minute|min|hour|hr|day|'
    r'week)s?\b', re.I)
_AGO_RE = re.compile(r'\b(\d+|an?)\s+(second|minute|hour|day)s?\s+ago\b',
                     re.I)
_AT_RE = re.compile(
    r'\b(?:at|around|near|since|after|before|from|until)?\s*'
    r'(\d{4}-\d\d-\d\d[ T]\d\d:\d\d(?::\d\d)?|\d{1,2}:\d\d(?::\d\d)?)\b')
_CLOCK = r'(?:\d{4}-\d\d-\d\d[ T])?\d{1,2}:\d\d(?::\d\d)?'
_BETWEEN_RE = re.compile(r'\bbetween\s+(%s)\s+and\s+(%s)' % (_CLOCK, _CLOCK),
                         re.I)
_WORD_NUMBERS = {'a': 1, 'an': 1, 'one': 1, 'two': 2, 'three': 3,
                 'five': 5, 'ten': 10, 'twenty': 20, 'thirty': 30}

_OPERATION_WORDS = (
    (re.compile(r'\battach|\bdetach|mount(?:ing)? (?:the |a )?volume',
                re.I), operations.VOLUME_ATTACH),
    (re.compile(r'(?:creat\w*|provision\w*|make|new)\s+(?:\w+\s+){0,2}'
                r'volumes?\b|volumes?\s+(?:\w+\s+){0,2}(?:creat\w*|'
                r'provision\w*)|volume creation', re.I),
     operations.VOLUME_CREATE),
    (re.compile(r'\bssh\b|\bping\b|connectivity|unreachable|reach(?:able)?'
                r'\b|cannot connect|can\'t connect|floating ip', re.I),
     operations.CONNECTIVITY),
    (re.compile(r'\bnetwork|\bsubnet|\brouter|security group|\bport\b',
                re.I), operations.NETWORK),
    (re.compile(r'\bboot|\bspawn|\blaunch|start(?:ing)? (?:the |an? )?'
                r'(?:server|instance|vm)|(?:server|instance|vm)s?\s+'
                r'(?:\w+\s+){0,2}(?:creat\w*|build\w*|fail\w*|error|'
                r'outage|down|stuck)|(?:creat\w*|build\w*)\s+(?:\w+\s+)'
                r'{0,2}(?:server|instance|vm)s?|server outage|(?:become|'
                r'go(?:es)? to|went to|stuck in)\s+(?:active|error|build)',
                re.I),
     operations.BOOT),
    (re.compile(r'key\s?pair|\bdomain\b|identity|keystone|token', re.I),
     operations.IDENTITY),
)
_NEXT_RE = re.compile(r'check first|what (?:should|do|can) i (?:do|check|'
                      r'look)|next step|how (?:do i|to) fix|remed|what now'
                      r'|where should i look', re.I)
_HISTORY_RE = re.compile(r'happen(?:ed)? before|seen (?:this|it) before|'
                         r'before\?|again|previous(?:ly)?|in the past|'
                         r'similar|recur', re.I)
_COUNT_RE = re.compile(r'\bhow many\b|\bnumber of\b|\bcount\b', re.I)
_LIST_RE = re.compile(r'^\s*(?:list|show)\b|\bwhich (?:anomalies|'
                      r'failures|errors)\b|\bwhat (?:anomalies|failures) '
                      r'(?:were|are|happened)\b', re.I)
_FOLLOWUP_RE = re.compile(r'\b(?:this|that|it|its|same|them|those)\b',
                          re.I)


@dataclasses.dataclass
class Query:
    """A question made structured."""

    intent: str = CAUSE
    since: float | None = None
    until: float | None = None
    service: str | None = None
    operation: str | None = None
    instance_ids: list = dataclasses.field(default_factory=list)
    volume_ids: list = dataclasses.field(default_factory=list)
    request_ids: list = dataclasses.field(default_factory=list)
    followup: bool = False

    def to_dict(self):
        return dataclasses.asdict(self)

    @property
    def constrained(self):
        """Whether the question says what it is about."""
        return bool(self.since is not None or self.until is not None
                    or self.service or self.operation or self.instance_ids
                    or self.volume_ids or self.request_ids)


def _clock(text, now):
    """An absolute time from ``YYYY-MM-DD HH:MM[:SS]`` or ``HH:MM``."""
    text = text.replace('T', ' ')
    base_day = datetime.datetime.fromtimestamp(now, datetime.UTC)
    for fmt in ('%Y-%m-%d %H:%M:%S', '%Y-%m-%d %H:%M'):
        try:
            return datetime.datetime.strptime(text, fmt).replace(
                tzinfo=datetime.UTC).timestamp()
        except ValueError:
            pass
    for fmt in ('%H:%M:%S', '%H:%M'):
        try:
            t = datetime.datetime.strptime(text, fmt)
        except ValueError:
            continue
        when = base_day.replace(hour=t.hour, minute=t.minute,
                                second=t.second, microsecond=0)
        if when.timestamp() > now:
            when -= datetime.timedelta(days=1)
        return when.timestamp()
    return None


class QueryParser:
    """Rule-based question parser (no model; fast and predictable).

    :param default_window: seconds looked back when a question names no
        time at all (None: no limit).
    """

    def __init__(self, default_window=None):
        self.default_window = default_window

    def parse(self, text, now, previous=None):
        """Parse ``text`` asked at log time ``now`` (epoch seconds).

        :param previous: the conversation's previous :class:`Query`; a
            follow-up that names nothing new inherits its constraints.
        """
        text = masking.mask(text or '')
        q = Query()
        low = text.lower()
        # Intent.
        if _NEXT_RE.search(text):
            q.intent = NEXT_STEPS
        elif _HISTORY_RE.search(text):
            q.intent = HISTORY
        elif _COUNT_RE.search(text):
            q.intent = COUNT
        elif _LIST_RE.search(text):
            q.intent = LIST
        # Ids.
        q.request_ids = ['req-' + m.lower() for m in _REQ_RE.findall(text)]
        typed = set()
        for kind, ident in _TYPED_ID_RE.findall(text):
            ident = ident.lower()
            typed.add(ident)
            if kind.lower().startswith('vol'):
                q.volume_ids.append(ident)
            else:
                q.instance_ids.append(ident)
        req_ids = {r[4:] for r in q.request_ids}
        for ident in _ID_RE.findall(text):
            ident = ident.lower()
            if ident not in typed and ident not in req_ids:
                q.instance_ids.append(ident)
        # Service: a daemon name (nova-compute) or a project name.
        match = re.search(r'\b(%s)-([a-z][a-z0-9-]*[a-z0-9])\b'
                          % '|'.join(SERVICES), low)
        if match:
            q.service = match.group(0)
        else:
            for service in SERVICES:
                if re.search(r'\b%s\b' % service, low):
                    q.service = service
                    break
        # Operation.
        for pattern, operation in _OPERATION_WORDS:
            if pattern.search(text):
                q.operation = operation
                break
        self._times(text, now, q)
        if previous is not None and (_FOLLOWUP_RE.search(text)
                                     or not q.constrained):
            q.followup = True
            for field in ('since', 'until', 'service', 'operation'):
                if getattr(q, field) is None:
                    setattr(q, field, getattr(previous, field))
            for field in ('instance_ids', 'volume_ids', 'request_ids'):
                if not getattr(q, field):
                    setattr(q, field, list(getattr(previous, field)))
        if q.since is None and q.until is None and not q.followup and \
                self.default_window:
            q.since = now - self.default_window
        return q

    def _times(self, text, now, q):
        match = _LAST_RE.search(text)
        if match:
            count = match.group(1) or '1'
            n = int(count) if count.isdigit() else _WORD_NUMBERS.get(
                count.lower(), 1)
            q.since, q.until = now - n * _UNITS[match.group(2).lower()], now
            return
        match = _AGO_RE.search(text)
        if match:
            count = match.group(1)
            n = int(count) if count.isdigit() else 1
            unit = _UNITS[match.group(2).lower()]
            center = now - n * unit
            half = max(unit, n * unit / 2.0)
            q.since, q.until = center - half, min(now, center + half)
            return
        low = text.lower()
        if re.search(r'\btoday\b', low):
            day = datetime.datetime.fromtimestamp(now, datetime.UTC)
            q.since = day.replace(hour=0, minute=0, second=0,
                                  microsecond=0).timestamp()
            q.until = now
            return
        if re.search(r'\byesterday\b', low):
            day = datetime.datetime.fromtimestamp(now, datetime.UTC)
            start = day.replace(hour=0, minute=0, second=0, microsecond=0)
            q.since = (start - datetime.timedelta(days=1)).timestamp()
            q.until = start.timestamp()
            return
        match = _BETWEEN_RE.search(text)
        if match:
            a, b = _clock(match.group(1), now), _clock(match.group(2), now)
            if a is not None and b is not None:
                q.since, q.until = min(a, b), max(a, b)
                return
        match = _AT_RE.search(text)
        if match:
            when = _clock(match.group(1), now)
            if when is None:
                return
            word = re.search(r'\b(since|after|before|until|at|around|near|'
                             r'from)\s*$', text[:match.start(1)], re.I)
            word = word.group(1).lower() if word else 'at'
            if word in ('since', 'after', 'from'):
                q.since, q.until = when, now
            elif word in ('before', 'until'):
                q.until = when
            else:
                q.since, q.until = when - 300, when + 300


@dataclasses.dataclass
class Conversation:
    """What a conversation remembers between questions."""

    id: str = dataclasses.field(
        default_factory=lambda: str(uuid_mod.uuid4()))
    turns: list = dataclasses.field(default_factory=list)
    last_query: dict | None = None
    last_answer: list = dataclasses.field(default_factory=list)
    project_id: str | None = None

    def to_dict(self):
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data):
        return cls(**data)


def _epoch(value):
    if value is None or isinstance(value, int | float):
        return value
    if isinstance(value, datetime.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=datetime.UTC)
        return value.timestamp()
    return None


class QueryProcessor:
    """Answers questions from stored anomalies and their explanations.

    :param dbapi: the database API (``anomaly_get_all``, ``anomaly_get``,
        ``explanation_get``...).
    :param explain: ``f(anomaly_id) -> explanation dict`` (default:
        :func:`logrca.rca.service.get_explanation`, which computes and
        stores missing ones).
    :param driver: an RCA driver for free-text answers (optional).
    """

    def __init__(self, conf, dbapi, explain=None, driver=None,
                 parser=None, limit=500):
        self.conf = conf
        self.dbapi = dbapi
        self.parser = parser or QueryParser()
        self.driver = driver
        self.limit = limit
        if explain is None:
            from logrca.rca import service

            def explain(anomaly_id):
                return service.get_explanation(conf, anomaly_id,
                                               dbapi=dbapi)
        self._explain = explain
        self._cache = {}

    def explanation(self, anomaly_id):
        if anomaly_id not in self._cache:
            try:
                self._cache[anomaly_id] = self._explain(anomaly_id)
            except (base.RCAError, LookupError) as exc:
                LOG.warning('No explanation for anomaly %s: %s',
                            anomaly_id, exc)
                self._cache[anomaly_id] = None
        return self._cache[anomaly_id]

    def _candidates(self, q, project_id, now):
        filters = {}
        if q.since is not None:
            filters['since'] = q.since
        # Nothing after the time the question is asked.
        until = q.until if q.until is not None else now
        if until is not None:
            filters['until'] = until + 1e-3
        if q.instance_ids:
            filters['instance_id'] = q.instance_ids[0]
        if q.request_ids:
            filters['request_id'] = q.request_ids[0]
        if project_id is not None:
            filters['project_id'] = project_id
        rows = self.dbapi.anomaly_get_all(
            filters, limit=self.limit, sort_keys=['raised_at'],
            sort_dirs=['asc'])
        found = []
        for row in rows:
            if q.service and not (row.get('service') or '').startswith(
                    q.service):
                if not self._mentions_service(row, q.service):
                    continue
            if q.volume_ids and not self._mentions(row['uuid'],
                                                   q.volume_ids):
                continue
            if q.operation:
                exp = self.explanation(row['uuid'])
                if not exp or exp.get('operation') != q.operation:
                    continue
            found.append(row)
        return found

    def _mentions_service(self, row, service):
        exp = self.explanation(row['uuid'])
        if not exp:
            return False
        return any((s.get('service') or '').startswith(service)
                   for s in exp.get('suspects') or [])

    def _mentions(self, anomaly_id, idents):
        full = self.dbapi.anomaly_get(anomaly_id) or {}
        text = ' '.join(e.get('message') or ''
                        for e in full.get('evidence') or [])
        return any(i in text for i in idents)

    def ask(self, question, conversation=None, now=None, project_id=None):
        """Answer ``question``; returns a JSON-ready dict.

        :param conversation: a :class:`Conversation` (or its dict) for a
            follow-up, or None to start one.
        :param now: the time the question is asked (epoch seconds); the
            default is the wall clock.
        :param project_id: the reader's project (None: admin).
        """
        if isinstance(conversation, dict):
            conversation = Conversation.from_dict(conversation)
        conversation = conversation or Conversation(project_id=project_id)
        if conversation.project_id is not None and \
                conversation.project_id != project_id:
            raise PermissionError('conversation of another project')
        now = now if now is not None else datetime.datetime.now(
            datetime.UTC).timestamp()
        previous = Query(**conversation.last_query) \
            if conversation.last_query else None
        q = self.parser.parse(question, now, previous)
        answer_ids, text, cites = self._answer(q, conversation, project_id,
                                               now)
        conversation.turns.append({'question': masking.mask(question),
                                   'query': q.to_dict(),
                                   'answer': answer_ids})
        conversation.last_query = q.to_dict()
        if answer_ids:
            conversation.last_answer = answer_ids
        return {'conversation': conversation.to_dict(),
                'query': q.to_dict(), 'anomalies': answer_ids,
                'answer': text, 'citations': cites}

    def _answer(self, q, conversation, project_id, now):
        from logrca.rca import service
        if q.followup and not (q.instance_ids or q.request_ids
                               or q.volume_ids) and \
                q.intent in (NEXT_STEPS, HISTORY, CAUSE) and \
                conversation.last_answer and \
                q.to_dict().get('operation') == (
                    conversation.last_query or {}).get('operation'):
            current = conversation.last_answer[:1]
        else:
            rows = self._candidates(q, project_id, now)
            if q.intent == COUNT:
                return ([r['uuid'] for r in rows],
                        '%d anomal%s match.' % (
                            len(rows), 'y' if len(rows) == 1 else 'ies'),
                        [])
            if q.intent == LIST:
                return ([r['uuid'] for r in rows[:20]],
                        '\n'.join('%s %s %s: %s' % (
                            r['uuid'], r.get('raised_at'), r.get('service'),
                            r.get('reason')) for r in rows[:20]) or
                        'No anomaly matches.', [])
            current = [rows[0]['uuid']] if rows else []
        if not current:
            return [], 'No stored anomaly matches the question.', []
        exp = service.redact_for_project(self.explanation(current[0]),
                                         project_id)
        if exp is None:
            return current, 'Anomaly %s has no explanation.' % current[0], []
        if q.intent == NEXT_STEPS:
            steps = exp.get('next_steps') or []
            text = ' '.join('%s [%s]' % (s['text'], ', '.join(
                s['citations'])) for s in steps) or \
                'No next step is known for this failure.'
            cites = [c for s in steps for c in s['citations']]
            return current, text, cites
        if q.intent == HISTORY:
            earlier = self._history(current[0], exp, project_id)
            if not earlier:
                return [], 'No earlier anomaly had the same suspect.', []
            return earlier, 'Yes: %d earlier anomal%s with the same top ' \
                'suspect, first %s.' % (len(earlier), 'y' if len(
                    earlier) == 1 else 'ies', earlier[0]), []
        return current, exp.get('summary') or '', base.cited_ids(
            exp.get('summary'))

    def _history(self, anomaly_id, exp, project_id):
        suspects = exp.get('suspects') or []
        if not suspects:
            return []
        module = suspects[0]['module']
        row = self.dbapi.anomaly_get(anomaly_id) or {}
        until = _epoch(row.get('raised_at'))
        filters = {'until': until} if until is not None else {}
        if project_id is not None:
            filters['project_id'] = project_id
        found = []
        for other in self.dbapi.anomaly_get_all(
                filters, limit=self.limit, sort_keys=['raised_at'],
                sort_dirs=['asc']):
            if other['uuid'] == anomaly_id:
                continue
            oexp = self.explanation(other['uuid'])
            if oexp and (oexp.get('suspects') or [{}])[0].get(
                    'module') == module:
                found.append(other['uuid'])
        return found
