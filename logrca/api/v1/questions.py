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

"""Questions and conversations (microversion 1.1).

``POST /v1/questions`` answers a question from the stored anomalies and
their explanations with :class:`logrca.rca.questions.QueryProcessor`, run
here in the API: it only reads the database. An explanation that is not
stored yet is asked of the conductor over RPC (``explain_anomaly``), one
per question at most, so the API never loads the knowledge base nor the
MiniLM encoder. The conversation state is kept server-side (table
``conversations``) and ``GET /v1/conversations/{id}`` shows its turns.
"""

import flask
import jsonschema
from oslo_log import log
from oslo_utils import uuidutils
from werkzeug import exceptions as wexc

from logrca.api import microversion
from logrca.api.v1 import anomalies
from logrca.policies import question as rules
from logrca.rca import questions as questions_mod

LOG = log.getLogger(__name__)

blueprint = flask.Blueprint('questions', __name__)

VERSION = '1.1'
MAX_QUESTION = 1000
# Turns a conversation keeps (the oldest are dropped beyond).
MAX_TURNS = 50
# Explanations asked of the conductor per question, at most (each may wait
# up to [api] explain_timeout): the others count as missing; the conductor
# explains new anomalies in the background anyway.
MAX_CONDUCTOR_CALLS = 1

# The POST body (also in doc/api/openapi.yaml).
ASK_SCHEMA = {
    'type': 'object',
    'properties': {
        'question': {'type': 'string', 'minLength': 1,
                     'maxLength': MAX_QUESTION,
                     'pattern': r'^[^\x00]*\S[^\x00]*$'},
        'conversation_id': {'type': ['string', 'null'], 'format': 'uuid'},
    },
    'required': ['question'],
    'additionalProperties': False,
}
_ASK_VALIDATOR = jsonschema.Draft202012Validator(
    ASK_SCHEMA, format_checker=jsonschema.FormatChecker())


def require_version(version=VERSION):
    """404 (as for an unknown route) below the microversion ``version``."""
    if not microversion.supports(flask.g.get('version'), version):
        raise wexc.NotFound(description='This route needs microversion %s '
                            'or later (header %s: %s %s).' % (
                                version, microversion.HEADER,
                                microversion.SERVICE_TYPE, version))


def json_body(validator):
    """The validated JSON body of the request, or 400/413/415."""
    request = flask.request
    if request.mimetype != 'application/json':
        raise wexc.UnsupportedMediaType(
            description='The body must be application/json.')
    # get_data first: it enforces MAX_CONTENT_LENGTH (413) before parsing.
    request.get_data(cache=True)
    body = request.get_json(silent=True)
    if body is None:
        raise anomalies._bad('The body is not a JSON document.')
    problems = sorted(validator.iter_errors(body),
                      key=lambda e: list(e.path))
    if problems:
        raise anomalies._bad('Invalid body: %s' % '; '.join(
            '%s: %s' % ('/'.join(str(p) for p in e.path) or 'body',
                        e.message[:200]) for e in problems[:5]))
    return body


class _Explanations:
    """Stored explanations, or the conductor's for a few missing ones."""

    def __init__(self, state):
        self.state = state
        self.calls = 0

    def __call__(self, anomaly_id):
        stored = self.state.dbapi.explanation_get(anomaly_id)
        if stored is None and self.state.conductor is not None and \
                self.calls < MAX_CONDUCTOR_CALLS:
            self.calls += 1
            stored = anomalies._ask_conductor(self.state, anomaly_id)
        if stored is None or not stored.get('body'):
            raise LookupError('anomaly %s is not explained yet'
                              % anomaly_id)
        return stored['body']


def _conversation(state, conversation_id):
    """The stored conversation the caller may see, or 404."""
    if not uuidutils.is_uuid_like(conversation_id):
        raise wexc.NotFound(description='Conversation %s not found: '
                            'conversation ids are UUIDs.'
                            % conversation_id[:64])
    row = state.dbapi.conversation_get(conversation_id.lower())
    if row is None or not state.enforcer.allowed(
            anomalies._context(), rules.CONVERSATION_GET,
            {'project_id': row['project_id']}):
        # Another project's conversation is missing, not forbidden.
        raise wexc.NotFound(description='Conversation %s not found.'
                            % conversation_id)
    return row


def conversation_view(row):
    conversation = row['state'] or {}
    return {'id': row['id'], 'project_id': row['project_id'],
            'user_id': row['user_id'],
            'created_at': anomalies._iso(row['created_at']),
            'updated_at': anomalies._iso(row['updated_at']),
            'turns': conversation.get('turns') or []}


@blueprint.post('/questions')
def ask():
    """Answer a question; a conversation id makes it a follow-up."""
    require_version()
    state = anomalies._state()
    context = anomalies._context()
    body = json_body(_ASK_VALIDATOR)
    state.enforcer.authorize(context, rules.ASK,
                             {'project_id': context.project_id})
    # Admins are answered from every project; everyone else from the
    # anomalies (and lines) of the token's project only.
    scope = None if state.enforcer.allowed(
        context, rules.ASK_ALL_PROJECTS,
        {'project_id': context.project_id}) else context.project_id
    conversation = None
    if body.get('conversation_id'):
        row = _conversation(state, body['conversation_id'])
        conversation = row['state']
        if (conversation or {}).get('project_id') != scope:
            raise wexc.Forbidden(
                description='Conversation %s searches another scope than '
                'this token\'s; start a new one.' % row['id'])
    processor = questions_mod.QueryProcessor(
        state.conf, state.dbapi, explain=_Explanations(state))
    try:
        result = processor.ask(body['question'], conversation=conversation,
                               project_id=scope)
    except PermissionError as exc:
        raise wexc.Forbidden(description=str(exc)) from exc
    new_state = result['conversation']
    turns = new_state['turns']
    if turns:
        turns[-1]['text'] = result['answer']
    new_state['turns'] = turns[-MAX_TURNS:]
    state.dbapi.conversation_save(new_state['id'], new_state,
                                  project_id=context.project_id,
                                  user_id=context.user_id)
    LOG.info('Question answered for user %s of project %s: %d anomalies '
             'cited (conversation %s)', context.user_id,
             context.project_id, len(result['anomalies']),
             new_state['id'])
    return {'conversation_id': new_state['id'],
            'answer': result['answer'], 'query': result['query'],
            'anomalies': result['anomalies'],
            'citations': result['citations']}


@blueprint.get('/conversations/<conversation_id>')
def show_conversation(conversation_id):
    """The questions and answers of a conversation so far."""
    require_version()
    state = anomalies._state()
    return {'conversation': conversation_view(
        _conversation(state, conversation_id))}
