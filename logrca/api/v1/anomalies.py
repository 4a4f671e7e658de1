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

"""The anomalies resource: list, show, update, explanation."""

import collections
import datetime
import math
import re
from urllib import parse as urlparse

import flask
import jsonschema
from oslo_log import log
from oslo_utils import strutils
from oslo_utils import timeutils
from oslo_utils import uuidutils
from werkzeug import exceptions as wexc

from logrca.db import exceptions as db_exc
from logrca.policies import anomaly as rules
from logrca.rca import service as rca_service

LOG = log.getLogger(__name__)

blueprint = flask.Blueprint('anomalies', __name__)

STATUSES = ('new', 'acknowledged', 'resolved', 'false_positive')
# Query parameters of GET /v1/anomalies (anything else gets 400).
TEXT_FILTERS = ('service', 'host', 'detector')
LIST_PARAMS = frozenset(TEXT_FILTERS + (
    'since', 'until', 'min_score', 'status', 'instance_id', 'request_id',
    'project_id', 'all_projects', 'limit', 'marker', 'sort'))
SORT_KEYS = ('raised_at', 'score', 'created_at', 'updated_at', 'start_time',
             'end_time', 'detector', 'service', 'host', 'status')
SORT_DIRS = ('asc', 'desc')
MAX_TEXT = 255
MAX_ID = 64
MAX_COMMENT = 1024
_REQUEST_ID = re.compile(r'^req-[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-'
                         r'[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$')
_PRINTABLE = re.compile(r'^[^\x00-\x1f\x7f]+$')

# The PATCH body (also in doc/api/openapi.yaml).
UPDATE_SCHEMA = {
    'type': 'object',
    'properties': {
        'status': {'type': 'string', 'enum': list(STATUSES)},
        'comment': {'type': ['string', 'null'], 'maxLength': MAX_COMMENT},
    },
    'required': ['status'],
    'additionalProperties': False,
}
_UPDATE_VALIDATOR = jsonschema.Draft202012Validator(UPDATE_SCHEMA)

_TIME_FIELDS = ('start_time', 'end_time', 'raised_at', 'status_changed_at',
                'created_at', 'updated_at')
_FIELDS = ('detector', 'score', 'threshold', 'reason', 'service', 'host',
           'project_id', 'user_id', 'session_key', 'request_ids',
           'instance_ids', 'status', 'status_changed_by',
           'status_changed_at', 'status_comment', 'start_time', 'end_time',
           'raised_at', 'created_at', 'updated_at')
_EVIDENCE_FIELDS = ('timestamp', 'stream', 'level', 'logger', 'message',
                    'request_id', 'project_id', 'instance_id', 'template_id',
                    'lineno')


def _state():
    return flask.current_app.extensions['logrca']


def _bad(detail):
    return wexc.BadRequest(description=detail)


def _iso(value):
    """ISO 8601 text of a datetime (naive means UTC) or epoch seconds."""
    if value is None:
        return None
    if isinstance(value, (int, float)):
        value = datetime.datetime.fromtimestamp(value, datetime.UTC)
    zone = value.tzinfo
    if zone is None:
        return value.isoformat() + 'Z'
    if zone is not datetime.UTC:
        value = value.astimezone(datetime.UTC)
    # isoformat() of a UTC time ends in +00:00.
    return value.isoformat()[:-6] + 'Z'


# -- query parameters --------------------------------------------------

def _single(args, name):
    values = args.getlist(name)
    if len(values) > 1:
        raise _bad('Query parameter %s is given more than once.' % name)
    return values[0] if values else None


def _text(name, value, size=MAX_TEXT):
    if value == '' or len(value) > size or not _PRINTABLE.match(value):
        raise _bad('%s must be 1 to %d printable characters.'
                   % (name, size))
    return value


def _time(name, value):
    try:
        parsed = timeutils.parse_isotime(value)
    except ValueError as exc:
        raise _bad('%s must be an ISO 8601 time, e.g. '
                   '2026-01-31T12:00:00Z: %s' % (name, exc)) from exc
    return timeutils.normalize_time(parsed)


def _uuid(name, value):
    if not uuidutils.is_uuid_like(value):
        raise _bad('%s must be a UUID.' % name)
    return value.lower()


def _parse_sort(value):
    keys, dirs = [], []
    for item in value.split(','):
        key, _sep, direction = item.strip().partition(':')
        direction = direction or 'desc'
        if key not in SORT_KEYS:
            raise _bad('Cannot sort on %r; sort keys: %s.'
                       % (key, ', '.join(SORT_KEYS)))
        if direction not in SORT_DIRS:
            raise _bad('Bad sort direction %r; use asc or desc.'
                       % direction)
        if key in keys:
            raise _bad('Sort key %s is given twice.' % key)
        keys.append(key)
        dirs.append(direction)
    return keys, dirs


def parse_list_params(args, max_limit, default_limit):
    """Validate the query of GET /v1/anomalies.

    :returns: dict of ``filters``, ``limit``, ``marker``, ``sort_keys``,
        ``sort_dirs``, ``all_projects``, ``project_id``.
    :raises werkzeug.exceptions.BadRequest: on any bad parameter.
    """
    unknown = sorted(set(args) - LIST_PARAMS)
    if unknown:
        raise _bad('Unknown query parameter(s): %s; known: %s.'
                   % (', '.join(unknown), ', '.join(sorted(LIST_PARAMS))))
    value = {name: _single(args, name) for name in LIST_PARAMS}
    filters = {}
    for name in TEXT_FILTERS:
        if value[name] is not None:
            filters[name] = _text(name, value[name])
    for name in ('since', 'until'):
        if value[name] is not None:
            filters[name] = _time(name, value[name])
    if value['min_score'] is not None:
        try:
            score = float(value['min_score'])
        except ValueError:
            score = math.nan
        if not math.isfinite(score):
            raise _bad('min_score must be a finite number.')
        filters['min_score'] = score
    if value['status'] is not None:
        if value['status'] not in STATUSES:
            raise _bad('status must be one of %s.' % ', '.join(STATUSES))
        filters['status'] = value['status']
    if value['instance_id'] is not None:
        filters['instance_id'] = _uuid('instance_id', value['instance_id'])
    if value['request_id'] is not None:
        if not _REQUEST_ID.match(value['request_id']):
            raise _bad('request_id must look like req-<UUID>.')
        filters['request_id'] = value['request_id'].lower()
    project_id = value['project_id']
    if project_id is not None:
        project_id = _text('project_id', project_id, MAX_ID)
    all_projects = False
    if value['all_projects'] is not None:
        try:
            all_projects = strutils.bool_from_string(
                value['all_projects'], strict=True)
        except ValueError as exc:
            raise _bad('all_projects must be true or false.') from exc
    limit = min(default_limit, max_limit)
    if value['limit'] is not None:
        try:
            limit = int(value['limit'])
        except ValueError as exc:
            raise _bad('limit must be an integer.') from exc
        if not 1 <= limit <= max_limit:
            raise _bad('limit must be between 1 and %d.' % max_limit)
    marker = None
    if value['marker'] is not None:
        marker = _uuid('marker', value['marker'])
    sort_keys = sort_dirs = None
    if value['sort'] is not None:
        sort_keys, sort_dirs = _parse_sort(value['sort'])
    return {'filters': filters, 'limit': limit, 'marker': marker,
            'sort_keys': sort_keys, 'sort_dirs': sort_dirs,
            'all_projects': all_projects, 'project_id': project_id}


# -- views ---------------------------------------------------------------

def _anomalies_url():
    return flask.request.url_root + 'v1/anomalies/'


def anomaly_view(row, anomalies_url=None):
    """The API document of an anomaly (without evidence).

    :param anomalies_url: the collection's URL ending in ``/``, given by
        callers that build many views in one request.
    """
    view = {'id': row['uuid']}
    for field in _FIELDS:
        view[field] = row.get(field)
    for field in _TIME_FIELDS:
        value = view[field]
        if value is not None:
            view[field] = _iso(value)
    view['links'] = [{'rel': 'self', 'href': (
        anomalies_url or _anomalies_url()) + row['uuid']}]
    return view


def evidence_view(line):
    view = {field: line.get(field) for field in _EVIDENCE_FIELDS}
    view['timestamp'] = _iso(view['timestamp'])
    return view


def visible_evidence(row, context, see_other_projects):
    """Evidence lines the caller may see, and how many were hidden.

    A line whose request belongs to another project than the caller's is
    hidden unless policy allows seeing those (admin by default).
    """
    shown, hidden = [], 0
    for line in row.get('evidence') or ():
        owner = line.get('project_id')
        if (owner and owner != context.project_id
                and not see_other_projects):
            hidden += 1
            continue
        shown.append(evidence_view(line))
    return shown, hidden


# -- helpers -------------------------------------------------------------

def _context():
    return flask.g.context


def _get_visible(anomaly_id):
    """The anomaly the caller may see, or 404 (also when not allowed)."""
    anomaly_id = _uuid_path(anomaly_id)
    state = _state()
    row = state.dbapi.anomaly_get(anomaly_id)
    if row is None or not _can_see(state, row, rules.GET):
        # Another project's anomaly is reported as missing, not forbidden:
        # its existence is not the caller's business.
        raise wexc.NotFound(description='Anomaly %s not found.'
                            % anomaly_id)
    return row


def _uuid_path(anomaly_id):
    if not uuidutils.is_uuid_like(anomaly_id):
        raise wexc.NotFound(description='Anomaly %s not found: anomaly ids '
                            'are UUIDs.' % anomaly_id[:64])
    return anomaly_id.lower()


def _can_see(state, row, rule):
    context = _context()
    if row.get('project_id') is None:
        return state.enforcer.allowed(context, rules.GET_SERVICE_LEVEL,
                                      {'project_id': None})
    return state.enforcer.allowed(context, rule,
                                  {'project_id': row['project_id']})


def _detail(row):
    state = _state()
    see_all = state.enforcer.allowed(
        _context(), rules.GET_OTHER_PROJECT_EVIDENCE,
        {'project_id': row.get('project_id')})
    view = anomaly_view(row)
    view['evidence'], view['evidence_hidden'] = visible_evidence(
        row, _context(), see_all)
    return view


def _next_link(params, rows):
    if len(rows) < params['limit']:
        return []
    query = [(k, v) for k, v in flask.request.args.items(multi=True)
             if k != 'marker']
    query.append(('marker', rows[-1]['uuid']))
    return [{'rel': 'next', 'href': '%s?%s' % (
        flask.request.base_url, urlparse.urlencode(query))}]


# -- routes --------------------------------------------------------------

@blueprint.get('/anomalies')
def list_anomalies():
    """List the anomalies the caller may see, newest first."""
    state = _state()
    conf = state.conf
    params = parse_list_params(flask.request.args, conf.api.max_limit,
                               conf.api.default_limit)
    context = _context()
    filters = dict(params['filters'])
    project_id = params['project_id']
    if params['all_projects']:
        state.enforcer.authorize(context, rules.LIST_ALL_PROJECTS,
                                 {'project_id': context.project_id})
        filters['project_id'] = project_id
    else:
        target = project_id or context.project_id
        state.enforcer.authorize(context, rules.LIST, {'project_id': target})
        if project_id is None and state.enforcer.allowed(
                context, rules.GET_SERVICE_LEVEL, {'project_id': None}):
            filters['project_id_or_null'] = target
        else:
            filters['project_id'] = target
    try:
        rows = state.dbapi.anomaly_get_all(
            filters=filters, limit=params['limit'], marker=params['marker'],
            sort_keys=params['sort_keys'], sort_dirs=params['sort_dirs'])
    except db_exc.InvalidMarker as exc:
        raise _bad('Bad marker: %s.' % exc) from exc
    except db_exc.InvalidParameter as exc:
        raise _bad(str(exc)) from exc
    url = _anomalies_url()
    return {'anomalies': [anomaly_view(row, url) for row in rows],
            'links': _next_link(params, rows)}


@blueprint.get('/anomalies/<anomaly_id>')
def show_anomaly(anomaly_id):
    """Show an anomaly with the evidence lines the caller may see."""
    return {'anomaly': _detail(_get_visible(anomaly_id))}


@blueprint.patch('/anomalies/<anomaly_id>')
def update_anomaly(anomaly_id):
    """Change the status of an anomaly; records who and when."""
    state = _state()
    request = flask.request
    if request.mimetype not in ('application/json',
                                'application/merge-patch+json'):
        raise wexc.UnsupportedMediaType(
            description='The body must be application/json.')
    # get_data first: it enforces MAX_CONTENT_LENGTH (413) before parsing.
    request.get_data(cache=True)
    body = request.get_json(silent=True)
    if body is None:
        raise _bad('The body is not a JSON document.')
    problems = sorted(_UPDATE_VALIDATOR.iter_errors(body),
                      key=lambda e: list(e.path))
    if problems:
        raise _bad('Invalid body: %s' % '; '.join(
            '%s: %s' % ('/'.join(str(p) for p in e.path) or 'body',
                        e.message) for e in problems[:5]))
    row = _get_visible(anomaly_id)
    rule = (rules.UPDATE if row.get('project_id')
            else rules.UPDATE_SERVICE_LEVEL)
    state.enforcer.authorize(_context(), rule,
                             {'project_id': row.get('project_id')})
    values = {'status': body['status'],
              'status_changed_by': _context().user_id}
    if 'comment' in body:
        values['status_comment'] = body['comment']
    try:
        updated = state.dbapi.anomaly_update(row['uuid'], values)
    except db_exc.AnomalyNotFound as exc:
        raise wexc.NotFound(description=str(exc)) from exc
    except db_exc.InvalidValue as exc:
        raise _bad(str(exc)) from exc
    LOG.info('Anomaly %s set to %s by user %s', row['uuid'],
             body['status'], _context().user_id)
    return {'anomaly': _detail(updated)}


@blueprint.get('/anomalies/<anomaly_id>/explanation')
def explain_anomaly(anomaly_id):
    """The stored explanation, or a plain summary of the evidence."""
    state = _state()
    row = _get_visible(anomaly_id)
    if not _can_see(state, row, rules.EXPLAIN):
        raise wexc.Forbidden(description='Policy does not allow %s.'
                             % rules.EXPLAIN)
    see_all = state.enforcer.allowed(
        _context(), rules.GET_OTHER_PROJECT_EVIDENCE,
        {'project_id': row.get('project_id')})
    stored = state.dbapi.explanation_get(row['uuid'])
    if stored is None and state.conductor is not None:
        stored = _ask_conductor(state, row['uuid'])
    if stored is not None and stored.get('body'):
        body = stored['body']
        if not see_all:
            # No line whose request context is another project's.
            body = rca_service.redact_for_project(body, _context().project_id)
        return {'explanation': {
            'anomaly_id': row['uuid'], 'source': 'rca',
            'driver': stored.get('driver'),
            'created_at': _iso(stored.get('created_at')),
            'body': body}}
    lines, hidden = visible_evidence(row, _context(), see_all)
    return {'explanation': evidence_summary(row, lines, hidden)}


def _ask_conductor(state, anomaly_id):
    """The conductor's explanation, or None if it cannot give one now."""
    try:
        body = state.conductor.explain_anomaly({}, anomaly_id)
    except Exception as exc:  # timeout, no conductor: fall back, say why
        LOG.warning('The conductor did not explain anomaly %s: %s',
                    anomaly_id, exc)
        return None
    if not body:
        return None
    # The conductor stored it: read it back with its time and driver.
    return (state.dbapi.explanation_get(anomaly_id)
            or {'driver': body.get('driver'), 'body': body})


def evidence_summary(row, lines, hidden):
    """A plain summary of the (visible) evidence of an anomaly."""
    by_level = collections.Counter(line['level'] or 'UNKNOWN'
                                   for line in lines)
    by_service = collections.Counter(line['stream'] for line in lines)
    first_error = next((line for line in lines
                        if line['level'] in ('ERROR', 'CRITICAL')), None)
    services = sorted(by_service)
    text = '%s (score %.3g): %d evidence line(s) from %s.' % (
        row.get('reason') or 'Anomaly', row.get('score') or 0.0,
        len(lines), ', '.join(services) or 'no service')
    if first_error is not None:
        text += ' First error at %s in %s: %s' % (
            first_error['timestamp'], first_error['stream'],
            first_error['message'].splitlines()[0][:300])
    return {
        'anomaly_id': row['uuid'],
        'source': 'evidence_summary',
        'summary': text,
        'first_error': first_error,
        'services': services,
        'counts': {'lines': len(lines), 'hidden_lines': hidden,
                   'by_level': dict(by_level),
                   'by_service': dict(by_service)},
    }
