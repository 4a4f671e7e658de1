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

"""RCA entry points for the API, the conductor and ``logrca-manage``.

- :func:`get_explanation` (``GET /v1/anomalies/{id}/explanation``,
  ``logrca-manage explain ID``): the stored explanation of an anomaly, or
  one computed now (and stored) by the configured driver from the stored
  evidence of the anomaly and of the anomalies around it
  (:func:`incident_records`), or from a
  :class:`~logrca.rca.context.ContextSource` when the caller has one.
- :func:`redact_for_project`: what a project reader may see of an
  explanation (no line whose request context is another project's).
- :func:`ask` (``POST /v1/questions``): see :mod:`logrca.rca.questions`.

The API process only reads the database; computing an explanation loads
the knowledge base (and, for the grounded driver, the MiniLM encoder), so
an API deployment should ask the conductor to do it over RPC.
"""

import datetime

from oslo_log import log

from logrca.detectors import anomaly as anomaly_mod
from logrca.parsing import records as records_mod
from logrca.rca import base
from logrca.rca import context as context_mod
from logrca.rca import kb as kb_mod

LOG = log.getLogger(__name__)


class NotFound(LookupError):
    """No anomaly with this id."""


def _epoch(value):
    if value is None or isinstance(value, int | float):
        return value
    if isinstance(value, datetime.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=datetime.UTC)
        return value.timestamp()
    return None


def anomaly_from_db(row):
    """An :class:`~logrca.detectors.anomaly.Anomaly` from ``anomaly_get``."""
    evidence = [anomaly_mod.Evidence(
        timestamp=_epoch(e.get('timestamp')), stream=e.get('stream') or '',
        level=e.get('level'), logger=e.get('logger'),
        message=e.get('message') or '', request_id=e.get('request_id'),
        project_id=e.get('project_id'), instance_id=e.get('instance_id'),
        template_id=e.get('template_id'), lineno=e.get('lineno') or 0)
        for e in row.get('evidence') or []]
    key = row.get('session_key') or []
    return anomaly_mod.Anomaly(
        detector=row.get('detector') or '', score=row.get('score') or 0.0,
        reason=row.get('reason') or '', session_key=tuple(key),
        start_time=_epoch(row.get('start_time')),
        end_time=_epoch(row.get('end_time')),
        raised_at=_epoch(row.get('raised_at')), service=row.get('service'),
        host=row.get('host'), project_id=row.get('project_id'),
        user_id=row.get('user_id'),
        request_ids=list(row.get('request_ids') or []),
        instance_ids=list(row.get('instance_ids') or []),
        evidence=evidence, uuid=row.get('uuid'))


def evidence_records(anomaly):
    """LogRecords rebuilt from an anomaly's evidence (message + traceback).
    """
    found = []
    for e in anomaly.evidence:
        lines = (e.message or '').split('\n')
        found.append(records_mod.LogRecord(
            stream=e.stream, timestamp=e.timestamp, level=e.level,
            logger=e.logger, message=lines[0], extra=lines[1:],
            request_id=e.request_id, project_id=e.project_id,
            instance_id=e.instance_id, template_id=e.template_id,
            lineno=e.lineno))
    return found


# Most anomalies whose evidence joins the context of one explanation.
INCIDENT_ANOMALIES = 50


def incident_records(conf, dbapi, anomaly, limit=INCIDENT_ANOMALIES):
    """The evidence of ``anomaly`` and of the anomalies stored around it.

    The conductor keeps each anomaly's evidence, not the raw log lines.
    The anomalies raised from the onset lookback before this one's
    context window to the outcome horizon after it (of its project, or of
    none) are taken as one incident: their evidence adds the other
    services' records and the calls refused to the users minutes later
    (``[rca] context_lookback``, ``outcome_horizon``). Returns the records
    in time order, each line once.
    """
    records = evidence_records(anomaly)
    start = anomaly.start_time if anomaly.start_time is not None \
        else anomaly.raised_at
    end = anomaly.raised_at if anomaly.raised_at is not None \
        else anomaly.end_time
    if start is not None and end is not None and limit:
        rca = conf.rca
        filters = {'since': start - rca.context_before - rca.context_lookback,
                   'until': end + rca.context_after + rca.outcome_horizon}
        if anomaly.project_id:
            filters['project_id_or_null'] = anomaly.project_id
        rows = dbapi.anomaly_get_all(filters=filters, limit=limit,
                                     sort_keys=['raised_at'],
                                     sort_dirs=['asc'])
        others = dbapi.anomaly_get_many(
            row['uuid'] for row in rows if row['uuid'] != anomaly.uuid)
        for other in others:
            records += evidence_records(anomaly_from_db(other))
    seen = set()
    unique = []
    for record in records:
        key = (record.stream, record.lineno, record.timestamp,
               record.message)
        if key not in seen:
            seen.add(key)
            unique.append(record)
    return sorted(unique, key=lambda r: r.timestamp or 0.0)


def load_kb(conf):
    """The knowledge base at ``[rca] kb_path``, or None with a warning."""
    try:
        return kb_mod.KnowledgeBase.load(conf.rca.kb_path)
    except ValueError as exc:
        LOG.warning('No knowledge base (run "logrca-manage kb build"): %s',
                    exc)
        return None


def load_normal_model(conf):
    """The agent's first detector with a trained model of normal, or None.

    Its ``next_template`` gives each context the step that normally
    follows the last one seen (the missing step of a silent failure).
    """
    from logrca.agent import pipeline as pipeline_mod
    for name in conf.agent.detectors:
        try:
            detector = pipeline_mod.load_detector(conf, name)
        except Exception as exc:  # a missing model must not stop RCA
            LOG.warning('Detector %s not loaded for RCA contexts: %s',
                        name, exc)
            continue
        if callable(getattr(detector, 'next_template', None)) and \
                getattr(detector, 'trained', False):
            return detector
    return None


def explain(conf, anomaly, source=None, driver=None, kb=None,
            normal_model=None):
    """Explain an anomaly now; returns an :class:`~base.Explanation`.

    :param normal_model: optional model of normal behaviour (see
        :func:`load_normal_model`) for the context's missing step.
    """
    if source is None:
        source = context_mod.BufferSource(
            sorted(evidence_records(anomaly),
                   key=lambda r: r.timestamp or 0.0))
    ctx = context_mod.gather_configured(conf, anomaly, source,
                                        normal_model=normal_model)
    if driver is None or isinstance(driver, str):
        driver = base.load_driver(conf, driver, kb=kb)
    return driver.explain(anomaly, ctx)


def get_explanation(conf, anomaly_id, driver=None, refresh=False,
                    dbapi=None, source=None, kb=None, project_id=None,
                    normal_model=None):
    """The explanation document of a stored anomaly (computed if missing).

    :param project_id: the reader's project (None: admin); the document
        is redacted with :func:`redact_for_project`.
    :raises NotFound: when the anomaly does not exist.
    :raises logrca.rca.base.RCAError: when it cannot be explained.
    """
    if dbapi is None:
        from logrca.db import api as db_api
        dbapi = db_api.get_instance(conf)
    stored = None if refresh else dbapi.explanation_get(anomaly_id)
    if stored is not None and stored.get('body'):
        body = stored['body']
    else:
        row = dbapi.anomaly_get(anomaly_id)
        if row is None:
            raise NotFound('no anomaly %s' % anomaly_id)
        anomaly = anomaly_from_db(row)
        if source is None:
            source = context_mod.BufferSource(
                incident_records(conf, dbapi, anomaly))
        if kb is None and (driver is None or isinstance(driver, str)):
            # A driver instance brings its own knowledge base.
            kb = load_kb(conf)
        exp = explain(conf, anomaly, source=source, driver=driver, kb=kb,
                      normal_model=normal_model)
        body = exp.to_dict()
        dbapi.explanation_save(anomaly_id, exp.driver, body)
    return redact_for_project(body, project_id)


def redact_for_project(body, project_id):
    """Drop cited lines of other projects (and claims citing only them)."""
    if project_id is None or not body:
        return body
    body = dict(body)
    kept = [e for e in body.get('evidence') or []
            if not e.get('project_id') or e['project_id'] == project_id]
    hidden = {e['id'] for e in body.get('evidence') or []} - \
        {e['id'] for e in kept}
    if not hidden:
        return body
    body['evidence'] = kept

    def keep(item):
        cites = [c for c in item.get('citations') or [] if c not in hidden]
        if not cites:
            return None
        return dict(item, citations=cites)

    body['suspects'] = [s for s in map(keep, body.get('suspects') or [])
                        if s]
    body['chain'] = [c for c in map(keep, body.get('chain') or []) if c]
    body['next_steps'] = [n for n in map(keep, body.get('next_steps') or [])
                          if n]
    for ident in hidden:
        body['summary'] = (body.get('summary') or '').replace(
            '[%s]' % ident, '[hidden]')
    body['redacted_lines'] = len(hidden)
    return body
