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

"""Operator feedback on the cause of an anomaly (microversion 1.1).

A member confirms the explained cause (the top suspect of the stored
explanation is recorded with it) or corrects it (module, function, the
cause in words). ``logrca-manage kb build`` turns feedback into
knowledge-base entries.
"""

import flask
import jsonschema
from oslo_log import log
from werkzeug import exceptions as wexc

from logrca.api.v1 import anomalies
from logrca.api.v1 import questions
from logrca.db import exceptions as db_exc
from logrca.policies import feedback as rules

LOG = log.getLogger(__name__)

blueprint = flask.Blueprint('feedback', __name__)

VERDICTS = ('confirmed', 'corrected')
MAX_NAME = 255
MAX_TEXT = 1024
_NAME = {'type': 'string', 'minLength': 1, 'maxLength': MAX_NAME,
         'pattern': r'^[^\x00-\x1f\x7f]+$'}

# The POST body (also in doc/api/openapi.yaml).
CREATE_SCHEMA = {
    'type': 'object',
    'properties': {
        'verdict': {'type': 'string', 'enum': list(VERDICTS)},
        'module': _NAME,
        'function': _NAME,
        'cause': {'type': 'string', 'minLength': 1, 'maxLength': MAX_TEXT},
        'comment': {'type': ['string', 'null'], 'maxLength': MAX_TEXT},
    },
    'required': ['verdict'],
    'additionalProperties': False,
    'if': {'properties': {'verdict': {'const': 'corrected'}}},
    'then': {'anyOf': [{'required': ['module']}, {'required': ['cause']}]},
}
_CREATE_VALIDATOR = jsonschema.Draft202012Validator(CREATE_SCHEMA)


def feedback_view(item):
    return {'id': item['id'], 'anomaly_id': item['anomaly_id'],
            'verdict': item['verdict'], 'module': item['module'],
            'function': item['function'], 'operation': item['operation'],
            'cause': item['cause'], 'comment': item['comment'],
            'user_id': item['user_id'], 'project_id': item['project_id'],
            'created_at': anomalies._iso(item['created_at'])}


def _top_suspect(state, anomaly_id):
    """(module, function, operation) of the stored explanation."""
    stored = state.dbapi.explanation_get(anomaly_id)
    body = (stored or {}).get('body') or {}
    suspects = body.get('suspects') or [{}]
    top = suspects[0] if isinstance(suspects[0], dict) else {}
    return top.get('module'), top.get('function'), body.get('operation')


@blueprint.post('/anomalies/<anomaly_id>/feedback')
def create_feedback(anomaly_id):
    """Confirm or correct the cause of an anomaly."""
    questions.require_version()
    state = anomalies._state()
    context = anomalies._context()
    body = questions.json_body(_CREATE_VALIDATOR)
    row = anomalies._get_visible(anomaly_id)
    rule = rules.CREATE if row.get('project_id') else \
        rules.CREATE_SERVICE_LEVEL
    state.enforcer.authorize(context, rule,
                             {'project_id': row.get('project_id')})
    module, function, operation = _top_suspect(state, row['uuid'])
    if body['verdict'] == 'corrected':
        module, function = body.get('module'), body.get('function')
    else:
        module = body.get('module') or module
        function = body.get('function') or function
    values = {'verdict': body['verdict'], 'user_id': context.user_id,
              'project_id': context.project_id, 'module': module,
              'function': function, 'operation': operation,
              'cause': body.get('cause'), 'comment': body.get('comment')}
    try:
        item = state.dbapi.feedback_create(row['uuid'], values)
    except db_exc.AnomalyNotFound as exc:
        raise wexc.NotFound(description=str(exc)) from exc
    except db_exc.InvalidValue as exc:
        raise anomalies._bad(str(exc)) from exc
    LOG.info('Feedback %s on anomaly %s by user %s: %s', item['id'],
             row['uuid'], context.user_id, body['verdict'])
    response = flask.jsonify({'feedback': feedback_view(item)})
    response.status_code = 201
    return response


@blueprint.get('/anomalies/<anomaly_id>/feedback')
def list_feedback(anomaly_id):
    """The feedback given on an anomaly, oldest first."""
    questions.require_version()
    state = anomalies._state()
    context = anomalies._context()
    row = anomalies._get_visible(anomaly_id)
    # A service-level anomaly the caller may see (operators) has feedback
    # the caller's project may read.
    state.enforcer.authorize(context, rules.LIST, {
        'project_id': row.get('project_id') or context.project_id})
    items = state.dbapi.feedback_get_all({'anomaly_id': row['uuid']})
    return {'feedback': [feedback_view(item) for item in items]}
