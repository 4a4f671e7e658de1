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

"""Context enrichment: the records related to an anomaly, ranked, bounded.

For an anomaly, :func:`gather` collects from a :class:`ContextSource` the
records related to it across services: the same request id and global
request id, the same instance, the same host, the surrounding window of
log time; the first error and its traceback; the step that normally
follows the last one seen (the missing step of a silent failure, from a
model of normal behaviour when one is given); and related notifications.
The result is ranked and bounded in size.

:func:`visible_to` / :func:`filter_for_project` drop what a project reader
must not see: lines whose request context belongs to another project.
"""

import abc
import bisect
import collections
import dataclasses

from oslo_log import log

from logrca.parsing import access
from logrca.parsing import records as records_mod
from logrca.rca import locations

LOG = log.getLogger(__name__)

WARN_LEVELS = frozenset(('WARNING', 'ERROR', 'CRITICAL'))
INFO_LEVELS = WARN_LEVELS | {'INFO'}
# Refused API calls kept in a context's outcome.
MAX_OUTCOME = 20


class ContextSource(abc.ABC):
    """Where context records come from (a buffer, a log store...).

    Implementations return masked :class:`~logrca.parsing.records.LogRecord`
    objects in log-time order.
    """

    @abc.abstractmethod
    def window(self, start, end):
        """Records with ``start <= timestamp <= end``, in time order."""

    def by_request(self, request_ids, start=None, end=None):
        """Records of these request or global request ids."""
        wanted = set(request_ids)
        return [r for r in self.window(start, end)
                if r.request_id in wanted or r.global_request_id in wanted]

    def by_instance(self, instance_ids, start=None, end=None):
        """Records about these instances."""
        wanted = set(instance_ids)
        return [r for r in self.window(start, end)
                if r.instance_id in wanted]


class BufferSource(ContextSource):
    """An in-memory buffer of recent records (replay, evaluation, agent).

    Records are appended in log-time order (as the pipeline sees them);
    only the last ``maxlen`` are kept.
    """

    def __init__(self, records=(), maxlen=None):
        self._records = collections.deque(maxlen=maxlen)
        self._stamps = collections.deque(maxlen=maxlen)
        self._last = float('-inf')
        for record in records:
            self.append(record)

    def append(self, record):
        ts = record.timestamp
        if ts is None:
            ts = self._last
        # Out-of-order records are clamped so the buffer stays sorted.
        ts = max(ts, self._last)
        self._last = ts
        self._records.append(record)
        self._stamps.append(ts)

    def __len__(self):
        return len(self._records)

    def window(self, start, end):
        if not self._records:
            return []
        stamps = self._stamps
        lo = 0 if start is None else bisect.bisect_left(stamps, start)
        hi = (len(stamps) if end is None
              else bisect.bisect_right(stamps, end))
        if lo == 0 and hi == len(stamps):
            return list(self._records)
        records = self._records
        return [records[i] for i in range(lo, hi)]


@dataclasses.dataclass
class Context:
    """What :func:`gather` found for an anomaly.

    :ivar records: the ranked related records, bounded, in time order.
    :ivar scores: relevance of each record (same order as ``records``).
    :ivar seeds: the anomaly's own evidence records found in the source.
    :ivar first_error: the first ERROR/CRITICAL related record, or None.
    :ivar traceback: the first related record with a traceback, or None.
    :ivar missing_step: the template that normally follows the last
        related record, when a model of normal behaviour says so, or None.
    :ivar missing_after: the last record of the anomaly's session seen
        before it was raised (what ``missing_step`` should have followed).
    :ivar notifications: related notification records.
    :ivar window: every record of the window looked at, in time order,
        unranked and unbounded by ``max_records`` (where a suspect that
        no ranked record names looks for a line that does).
    :ivar outcome: the API calls refused (answered with an error status)
        after the window, within the outcome horizon, with the INFO-or-
        worse records of their requests (the API's reasons), in time
        order: what the users saw fail, often a minute or more after the
        failure started, and why.
    """

    records: list
    scores: list
    seeds: list
    first_error: object = None
    traceback: object = None
    missing_step: str | None = None
    missing_after: object = None
    notifications: list = dataclasses.field(default_factory=list)
    request_ids: set = dataclasses.field(default_factory=set)
    instance_ids: set = dataclasses.field(default_factory=set)
    run_lines: int = 0
    window: list = dataclasses.field(default_factory=list)
    outcome: list = dataclasses.field(default_factory=list)

    def ranked(self):
        """Records with their scores, most relevant first."""
        return sorted(zip(self.records, self.scores),
                      key=lambda rs: (-rs[1], rs[0].timestamp or 0.0))


def _key(record):
    return (record.stream, record.lineno)


def _match_seeds(anomaly, candidates):
    wanted = {(e.stream, e.lineno) for e in anomaly.evidence}
    return [r for r in candidates if _key(r) in wanted]


def _relevance(record, seed_keys, request_ids, instance_ids, host, anchor):
    score = 0.0
    if _key(record) in seed_keys:
        score += 10.0
    if (record.request_id in request_ids
            or (record.global_request_id
                and record.global_request_id in request_ids)):
        score += 5.0
    if record.instance_id and record.instance_id in instance_ids:
        score += 3.0
    if record.is_error:
        score += 4.0
    elif record.level == 'WARNING':
        score += 1.5
    if record.extra and any('File "' in x for x in record.extra[:50]):
        score += 3.0
    if host and record.host == host:
        score += 0.5
    if record.kind == records_mod.NOTIFICATION:
        score += 1.0
    if anchor is not None and record.timestamp is not None:
        score += 1.0 / (1.0 + abs(record.timestamp - anchor))
    return score


def _failed(record):
    """An ERROR record, or a WARNING carrying a traceback of project code.

    Services log some exceptions they survive at WARNING with their
    traceback ("Failed to revert task state for instance"): the failure
    shows there first, before any ERROR.
    """
    if record.is_error:
        return True
    return record.level == 'WARNING' and bool(record.extra) and any(
        locations.is_project(f[0]) for f in locations.frames(
            record.extra[:80]))


def gather(anomaly, source, before=60.0, after=30.0, max_records=200,
           normal_model=None, lookback=300.0, horizon=300.0):
    """Gather the context of an anomaly from ``source``.

    :param anomaly: a :class:`~logrca.detectors.anomaly.Anomaly`.
    :param source: a :class:`ContextSource`.
    :param before, after: log seconds looked at before the anomaly's first
        evidence and after it was raised.
    :param max_records: at most this many records are kept (the most
        relevant ones).
    :param normal_model: optional object with ``next_template(records)``
        returning the template that normally follows the given records
        (the detectors' model of normal), used for the missing step.
    :param lookback: log seconds looked back before the window for the
        first ERROR/CRITICAL record (or WARNING with a traceback of
        project code); when there is one, the window opens at it (0:
        never).
    :param horizon: log seconds looked at after the window for the API
        calls refused to users (``Context.outcome``; 0: none).
    """
    start = anomaly.start_time
    end = anomaly.raised_at if anomaly.raised_at is not None else \
        anomaly.end_time
    if start is None:
        start = end
    lo = None if start is None else start - before
    hi = None if end is None else end + after
    if lookback and lo is not None:
        # Where it started: an anomaly raised on a consequence (an API
        # call refused, a step missing) comes after the first error,
        # sometimes minutes after; the window then opens at that error.
        onset = next((r for r in source.window(start - lookback, lo)
                      if r.timestamp is not None and _failed(r)), None)
        if onset is not None:
            lo = onset.timestamp - 1.0
    candidates = source.window(lo, hi)
    seeds = _match_seeds(anomaly, candidates)
    request_ids = set(anomaly.request_ids)
    instance_ids = set(anomaly.instance_ids)
    for record in seeds:
        if record.request_id:
            request_ids.add(record.request_id)
        if record.global_request_id:
            request_ids.add(record.global_request_id)
        if record.instance_id:
            instance_ids.add(record.instance_id)
    if anomaly.session_key and anomaly.session_key[0] == 'request':
        request_ids.add(anomaly.session_key[1])
    elif anomaly.session_key and anomaly.session_key[0] == 'instance':
        instance_ids.add(anomaly.session_key[1])
    # A request's global id links it to the other services' requests.
    for record in candidates:
        if record.request_id in request_ids and record.global_request_id:
            request_ids.add(record.global_request_id)
    seed_keys = {_key(r) for r in seeds}
    anchor = end
    scored = [(_relevance(r, seed_keys, request_ids, instance_ids,
                          anomaly.host, anchor), i, r)
              for i, r in enumerate(candidates)]
    top = sorted(scored, key=lambda t: (-t[0], t[1]))[:max_records]
    top.sort(key=lambda t: t[1])
    records = [r for _, _, r in top]
    scores = [s for s, _, _ in top]
    related = [r for r in records
               if r.request_id in request_ids
               or (r.global_request_id and r.global_request_id in request_ids)
               or (r.instance_id and r.instance_id in instance_ids)
               or _key(r) in seed_keys]
    pool = related or records
    first_error = next((r for r in pool if r.is_error), None)
    if first_error is None:
        first_error = next((r for r in records if r.is_error), None)
    traceback = next((r for r in pool if locations.frames(r.extra[:80])),
                     None)
    if traceback is None:
        traceback = next((r for r in records
                          if r.extra and locations.frames(r.extra[:80])),
                         None)
    missing = None
    session = _session_records(anomaly, related, end)
    if normal_model is not None and session:
        try:
            missing = normal_model.next_template(session)
        except Exception as exc:  # a model's failure must not stop RCA
            LOG.warning('Normal model could not give the next step: %s',
                        exc)
    notifications = [r for r in related
                     if r.kind == records_mod.NOTIFICATION]
    outcome = []
    if horizon and hi is not None:
        outcome = _outcome(anomaly, source, hi, horizon)
    return Context(records=records, scores=scores, seeds=seeds,
                   first_error=first_error, traceback=traceback,
                   missing_step=missing,
                   missing_after=session[-1] if missing and session
                   else None,
                   notifications=notifications,
                   request_ids=request_ids, instance_ids=instance_ids,
                   run_lines=len(candidates), window=candidates,
                   outcome=outcome)


def gather_configured(conf, anomaly, source, normal_model=None):
    """:func:`gather` with the ``[rca]`` context options of ``conf``."""
    rca = conf.rca
    return gather(anomaly, source, before=rca.context_before,
                  after=rca.context_after,
                  max_records=rca.context_max_records,
                  normal_model=normal_model, lookback=rca.context_lookback,
                  horizon=rca.outcome_horizon)


def _outcome(anomaly, source, hi, horizon):
    """The refused API calls after ``hi`` and the records of their requests.

    What the users saw fail comes after the context window, sometimes by
    minutes; the records a refused request logged beside its access line
    (at INFO or above: the API's reason, such as a volume's status) say
    why it was refused. Another project's requests are not this
    anomaly's outcome.
    """
    project = getattr(anomaly, 'project_id', None)
    later = [r for r in source.window(hi, hi + horizon)
             if r.timestamp is not None and r.timestamp > hi
             and visible_to(r, project)]
    refused = [r for r in later
               if access.error_response(r.message) is not None]
    refused = {id(r) for r in refused[:MAX_OUTCOME]}
    ids = {r.request_id for r in later if id(r) in refused and r.request_id}
    return [r for r in later if id(r) in refused
            or (r.request_id in ids and r.level in INFO_LEVELS)]


def _session_records(anomaly, related, end):
    """The related records of the anomaly's own session, up to ``end``.

    A request or instance session is what the detectors' model of normal
    describes; without one, every related record counts.
    """
    key = anomaly.session_key or ()
    if len(key) == 2 and key[0] == 'request':
        found = [r for r in related if key[1] in (
            r.request_id, r.global_request_id)]
    elif len(key) == 2 and key[0] == 'instance':
        found = [r for r in related if r.instance_id == key[1]]
    else:
        found = []
    found = found or list(related)
    if end is not None:
        found = [r for r in found
                 if r.timestamp is None or r.timestamp <= end]
    return found


def visible_to(record, project_id, instance_projects=None):
    """Whether a project reader of ``project_id`` may see ``record``.

    A record whose request context names another project is hidden, and
    so is one about an instance known to belong to another project.
    ``project_id`` None means an admin reader: everything is visible.
    """
    if project_id is None:
        return True
    owner = getattr(record, 'project_id', None)
    if owner and owner != project_id:
        return False
    instance = getattr(record, 'instance_id', None)
    if instance and instance_projects:
        known = instance_projects.get(instance)
        if known and known != project_id:
            return False
    return True


def filter_for_project(records, project_id):
    """The records (or evidence) a project reader may see, in order."""
    if project_id is None:
        return list(records)
    owners = {}
    for record in records:
        if getattr(record, 'instance_id', None) and \
                getattr(record, 'project_id', None):
            owners.setdefault(record.instance_id, record.project_id)
    return [r for r in records if visible_to(r, project_id, owners)]


def level_rank(level):
    """A sort key: errors first, then warnings, then the rest."""
    if level in records_mod.ERROR_LEVELS:
        return 0
    if level in WARN_LEVELS:
        return 1
    return 2
