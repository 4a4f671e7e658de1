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

"""Questions, conversations and feedback (microversion 1.1) on real DBs."""

import uuid

import pytest
from werkzeug import test as wtest

from logrca.api import app as api_app
from logrca.db import api as db_api
from logrca.db import migration
from logrca.rca import operations
from logrca.tests import services
from logrca.tests.functional.api import fixtures

P1, P2, PADMIN = 'q1' + 'a' * 30, 'q2' + 'b' * 30, 'qa' + 'c' * 30
DOC = fixtures.OpenAPIDocument()
V11 = {'OpenStack-API-Version': 'log-analysis 1.1'}


def who(project, roles, user):
    return dict(V11, **{'X-Project-Id': project, 'X-Roles': ','.join(roles),
                        'X-User-Id': user})


READER = who(P1, ['reader'], 'reader-1')
MEMBER = who(P1, ['member', 'reader'], 'member-1')
READER2 = who(P2, ['reader'], 'reader-2')
ADMIN = who(PADMIN, ['admin', 'member', 'reader'], 'admin-1')


def explanation(anomaly, project, module, function, step):
    """An explanation as the grounded driver stores it (boot failure)."""
    return {
        'summary': 'Instance boot failed in %s [E1].' % module,
        'operation': operations.BOOT,
        'suspects': [{'module': module, 'function': function,
                      'service': 'nova-compute', 'why': 'first error',
                      'citations': ['E1']}],
        'next_steps': [{'text': step, 'citations': ['E1']}],
        'evidence': [{'id': 'E1', 'project_id': project,
                      'message': anomaly.evidence[-1].message}],
    }


class Env:
    """Client, database and anomalies of the module."""


@pytest.fixture(scope='module', params=['sqlite', 'postgresql'])
def env(request):
    with services.temp_database(request.param) as url:
        e = Env()
        # No conductor here: a0's missing explanation is not asked for.
        e.conf = fixtures.make_conf(url, overrides={
            ('api', 'max_request_body_size'): 4096,
            ('api', 'explain_via_conductor'): False})
        migration.upgrade(e.conf)
        e.dbapi = db_api.get_instance(e.conf)
        # b1 (other project) fails first, a1 then a2 in P1; a0 has no
        # explanation yet (and no conductor here).
        e.b1 = fixtures.make_anomaly(1, P2, [P2], raised_at=1767225600.0)
        e.a0 = fixtures.make_anomaly(2, P1, [P1], raised_at=1767225650.0)
        e.a1 = fixtures.make_anomaly(3, P1, [P1, P2], raised_at=1767225700.0)
        e.a2 = fixtures.make_anomaly(4, P1, [P1], raised_at=1767225800.0)
        e.dbapi.store_anomalies([e.b1, e.a0, e.a1, e.a2])
        e.dbapi.explanation_save(e.b1.uuid, 'grounded', explanation(
            e.b1, P2, 'nova/virt/libvirt/driver.py', 'spawn',
            'Check libvirtd on the compute host.'))
        e.dbapi.explanation_save(e.a1.uuid, 'grounded', explanation(
            e.a1, P1, 'nova/compute/manager.py', '_build_and_run_instance',
            'Check the scheduler placement of the instance.'))
        e.dbapi.explanation_save(e.a2.uuid, 'grounded', explanation(
            e.a2, P1, 'nova/network/neutron.py', 'allocate_for_instance',
            'Check neutron-server.'))
        e.client = wtest.Client(api_app.make_app(e.conf, e.dbapi))
        yield e
        e.dbapi.dispose()


def ask(env, headers, question, conversation_id=None, status=200):
    body = {'question': question}
    if conversation_id is not None:
        body['conversation_id'] = conversation_id
    response = env.client.post('/v1/questions', json=body, headers=headers)
    assert response.status_code == status, response.get_json()
    return DOC.check('POST', '/v1/questions', response)


def test_reader_gets_own_project_answer_and_follow_up(env):
    answer = ask(env, READER, 'What caused the server outage?')
    # The earliest explained boot failure of P1, not P2's earlier one.
    assert answer['anomalies'] == [env.a1.uuid]
    assert answer['query']['intent'] == 'cause'
    assert answer['query']['operation'] == operations.BOOT
    assert 'nova/compute/manager.py' in answer['answer']
    assert answer['citations'] == ['E1']
    follow = ask(env, READER, 'What should I check first?',
                 answer['conversation_id'])
    assert follow['conversation_id'] == answer['conversation_id']
    assert follow['query']['intent'] == 'next_steps'
    assert follow['anomalies'] == [env.a1.uuid]
    assert 'scheduler placement' in follow['answer']
    response = env.client.get('/v1/conversations/%s'
                              % answer['conversation_id'], headers=READER)
    conversation = DOC.check('GET', '/v1/conversations/{conversation_id}',
                             response)['conversation']
    assert [t['question'] for t in conversation['turns']] == [
        'What caused the server outage?', 'What should I check first?']
    assert conversation['turns'][1]['text'] == follow['answer']
    assert conversation['project_id'] == P1
    assert conversation['user_id'] == 'reader-1'
    # Another project's reader neither sees nor continues it.
    response = env.client.get('/v1/conversations/%s'
                              % answer['conversation_id'], headers=READER2)
    assert DOC.check('GET', '/v1/conversations/{conversation_id}',
                     response) and response.status_code == 404
    ask(env, READER2, 'and then?', answer['conversation_id'], status=404)


def test_other_project_lines_are_redacted(env):
    answer = ask(env, who(P2, ['reader'], 'reader-2'),
                 'What caused the server outage?')
    assert answer['anomalies'] == [env.b1.uuid]
    # An admin is answered from every project: b1 failed first.
    answer = ask(env, ADMIN, 'What caused the server outage?')
    assert answer['anomalies'] == [env.b1.uuid]
    listed = ask(env, READER, 'list the anomalies')
    assert set(listed['anomalies']) == {env.a0.uuid, env.a1.uuid,
                                        env.a2.uuid}
    assert env.b1.uuid not in listed['answer']


def test_secrets_in_questions_are_masked(env):
    answer = ask(env, READER, 'why did it fail? password=Sekret123456')
    row = env.dbapi.conversation_get(answer['conversation_id'])
    assert 'Sekret123456' not in str(row['state'])


@pytest.mark.parametrize('body,status', [
    ({'question': ''}, 400),
    ({'question': '   '}, 400),
    ({'question': 'x' * 1001}, 400),
    ({'question': 'why?', 'conversation_id': 'not-a-uuid'}, 400),
    ({'question': 'why?', 'conversation_id': str(uuid.uuid4())}, 404),
    ({'question': 'why?', 'extra': 1}, 400),
    ({'question': 5}, 400),
    ([], 400),
    ({'question': 'y' * 5000}, 413),
])
def test_bad_questions(env, body, status):
    response = env.client.post('/v1/questions', json=body, headers=READER)
    assert response.status_code == status
    assert DOC.check('POST', '/v1/questions', response)['errors']


def test_bad_bodies_and_media(env):
    response = env.client.post('/v1/questions', data='why?',
                               content_type='text/plain', headers=READER)
    assert response.status_code == 415
    response = env.client.post('/v1/questions', data='{',
                               content_type='application/json',
                               headers=READER)
    assert response.status_code == 400
    response = env.client.get('/v1/conversations/zzz', headers=READER)
    assert response.status_code == 404


def test_routes_need_microversion_1_1(env):
    headers = {k: v for k, v in READER.items() if k != 'OpenStack-API-Version'}
    response = env.client.post('/v1/questions', json={'question': 'why?'},
                               headers=headers)
    assert response.status_code == 404
    assert 'microversion 1.1' in response.get_json()['errors'][0]['detail']
    assert response.headers['OpenStack-API-Version'] == 'log-analysis 1.0'
    response = env.client.get('/v1/anomalies/%s/feedback' % env.a1.uuid,
                              headers=headers)
    assert response.status_code == 404
    # 1.0 keeps working.
    response = env.client.get('/v1/anomalies/%s' % env.a1.uuid,
                              headers=headers)
    assert response.status_code == 200
    response = env.client.get('/v1', headers=READER)
    assert response.get_json()['version']['max_version'] == '1.1'


def test_feedback(env):
    path = '/v1/anomalies/%s/feedback' % env.a1.uuid
    template = '/v1/anomalies/{anomaly_id}/feedback'
    response = env.client.post(path, json={'verdict': 'confirmed'},
                               headers=READER)
    assert response.status_code == 403
    DOC.check('POST', template, response)
    response = env.client.post(path, json={
        'verdict': 'confirmed', 'comment': 'right, token=Sekret123456'},
        headers=MEMBER)
    confirmed = DOC.check('POST', template, response)['feedback']
    assert response.status_code == 201
    # The top suspect of the stored explanation is what was confirmed.
    assert confirmed['module'] == 'nova/compute/manager.py'
    assert confirmed['function'] == '_build_and_run_instance'
    assert confirmed['operation'] == operations.BOOT
    assert confirmed['user_id'] == 'member-1'
    assert confirmed['project_id'] == P1
    assert 'Sekret123456' not in confirmed['comment']
    response = env.client.post(path, json={
        'verdict': 'corrected', 'module': 'nova/scheduler/manager.py',
        'function': 'select_destinations', 'cause': 'no valid host'},
        headers=MEMBER)
    corrected = DOC.check('POST', template, response)['feedback']
    assert corrected['module'] == 'nova/scheduler/manager.py'
    response = env.client.get(path, headers=READER)
    listed = DOC.check('GET', template, response)['feedback']
    assert [f['id'] for f in listed][-2:] == [confirmed['id'],
                                              corrected['id']]
    # Another project's anomaly is not found, for reading and writing.
    other = '/v1/anomalies/%s/feedback' % env.b1.uuid
    assert env.client.get(other, headers=READER).status_code == 404
    assert env.client.post(other, json={'verdict': 'confirmed'},
                           headers=MEMBER).status_code == 404


@pytest.mark.parametrize('body', [
    {'verdict': 'maybe'},
    {'verdict': 'corrected'},
    {'verdict': 'corrected', 'comment': 'only a comment'},
    {'verdict': 'confirmed', 'module': ''},
    {'verdict': 'confirmed', 'comment': 'x' * 1025},
    {'verdict': 'confirmed', 'rating': 5},
    {},
])
def test_bad_feedback(env, body):
    response = env.client.post('/v1/anomalies/%s/feedback' % env.a2.uuid,
                               json=body, headers=MEMBER)
    assert response.status_code == 400
    DOC.check('POST', '/v1/anomalies/{anomaly_id}/feedback', response)
    assert env.dbapi.feedback_get_all({'anomaly_id': env.a2.uuid}) == []


class _Conductor:
    """Stands in for the conductor's RPC client: explains and stores."""

    def __init__(self, dbapi, body):
        self.dbapi, self.body, self.calls = dbapi, body, []

    def explain_anomaly(self, context, anomaly_id):
        self.calls.append(anomaly_id)
        self.dbapi.explanation_save(anomaly_id, 'grounded', self.body)
        return self.body


def test_missing_explanation_is_asked_of_the_conductor(env):
    conductor = _Conductor(env.dbapi, explanation(
        env.a0, P1, 'nova/conductor/manager.py', 'build_instances',
        'Check nova-conductor.'))
    flask_app = api_app.create_flask_app(fixtures.make_conf(env.dbapi.url),
                                         env.dbapi)
    flask_app.extensions['logrca']._conductor = conductor
    client = wtest.Client(flask_app)
    try:
        response = client.post('/v1/questions', headers=READER,
                               json={'question': 'What caused the server '
                                                 'outage?'})
        answer = response.get_json()
        assert response.status_code == 200
        # a0 (earliest in P1) is explained now, by the conductor, once.
        assert conductor.calls == [env.a0.uuid]
        assert answer['anomalies'] == [env.a0.uuid]
        assert 'nova/conductor/manager.py' in answer['answer']
    finally:
        # Unexplained again for the other tests (an empty body is none).
        env.dbapi.explanation_save(env.a0.uuid, 'none', {})
