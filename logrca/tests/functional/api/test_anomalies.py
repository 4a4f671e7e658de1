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


"""The API on a real database (SQLite, MariaDB), checked against OpenAPI."""

import uuid

import pytest
from werkzeug import test as wtest

from logrca.api import app as api_app
from logrca.db import api as db_api
from logrca.db import migration
from logrca.tests import services
from logrca.tests.functional.api import fixtures

P1, P2, PADMIN = 'p1' + 'a' * 30, 'p2' + 'b' * 30, 'pa' + 'c' * 30
INSTANCE = '6f3a1c2e-1111-4222-8333-944445555666'
DOC = fixtures.OpenAPIDocument()


def who(project, roles, user='u-' + 'd' * 30):
    return {'X-Project-Id': project, 'X-Roles': ','.join(roles),
            'X-User-Id': user}


READER = who(P1, ['reader'])
MEMBER = who(P1, ['member', 'reader'], user='member-1')
ADMIN = who(PADMIN, ['admin', 'member', 'reader'], user='admin-1')


class Env:
    """The client, the database and the stored anomalies of one test."""


@pytest.fixture(scope='module', params=['sqlite', 'mysql'])
def stored(request):
    """One database per backend for the module, with five anomalies."""
    with services.temp_database(request.param) as url:
        e = Env()
        e.conf = fixtures.make_conf(url, overrides={
            ('api', 'max_limit'): 100, ('api', 'max_request_body_size'): 2048,
            ('api', 'operators_role'): 'rca-operator'})
        migration.upgrade(e.conf)
        e.dbapi = db_api.get_instance(e.conf)
        e.a1 = fixtures.make_anomaly(1, P1, [P1, P2, None], score=5.0,
                                     raised_at=1767225600.0)
        e.a2 = fixtures.make_anomaly(2, P1, [P1], score=2.0,
                                     service='cinder-volume', host='st1',
                                     raised_at=1767225700.0)
        e.a3 = fixtures.make_anomaly(3, P1, [P1], score=3.0,
                                     detector='deeplog',
                                     raised_at=1767225800.0)
        e.a3.instance_ids.append(INSTANCE)
        e.b1 = fixtures.make_anomaly(4, P2, [P2], score=9.0,
                                     raised_at=1767225650.0)
        e.s1 = fixtures.make_anomaly(5, None, [None], score=4.0,
                                     raised_at=1767225750.0)
        e.dbapi.store_anomalies([e.a1, e.a2, e.a3, e.b1, e.s1])
        e.client = wtest.Client(api_app.make_app(e.conf, e.dbapi))
        yield e
        e.dbapi.dispose()


@pytest.fixture
def env(stored):
    """The module's database; statuses set by a test are reset after it."""
    yield stored
    for anomaly in (stored.a1, stored.a2, stored.a3, stored.b1, stored.s1):
        if stored.dbapi.anomaly_get(anomaly.uuid)['status'] != 'new':
            stored.dbapi.anomaly_update(anomaly.uuid, {'status': 'new'})


def get(env, path, headers=READER, template=None, **kwargs):
    response = env.client.get(path, headers=headers, **kwargs)
    DOC.check('GET', template or path.split('?')[0], response)
    return response


def ids(response):
    return [a['id'] for a in response.get_json()['anomalies']]


LIST = '/v1/anomalies'
ONE = '/v1/anomalies/{anomaly_id}'
EXPLAIN = '/v1/anomalies/{anomaly_id}/explanation'


def test_version_discovery(env):
    body = get(env, '/').get_json()
    assert body['versions'][0]['min_version'] == '1.0'
    assert body['versions'][0]['links'][0]['href'].endswith('/v1/')
    assert get(env, '/v1').get_json()['version']['id'] == 'v1'


def test_reader_lists_only_its_project_newest_first(env):
    response = get(env, LIST)
    assert ids(response) == [env.a3.uuid, env.a2.uuid, env.a1.uuid]
    assert response.headers['OpenStack-API-Version'] == 'log-analysis 1.0'
    assert 'OpenStack-API-Version' in response.headers['Vary']


def test_operators_role_and_admin_see_service_level(env):
    operator = who(P1, ['reader', 'rca-operator'])
    assert env.s1.uuid in ids(get(env, LIST, headers=operator))
    assert env.s1.uuid not in ids(get(env, LIST))
    get(env, ONE.format(anomaly_id=env.s1.uuid), headers=operator,
        template=ONE)
    response = env.client.get(ONE.format(anomaly_id=env.s1.uuid),
                              headers=READER)
    assert response.status_code == 404
    # Without all_projects, an admin sees its project and service faults.
    assert ids(get(env, LIST, headers=ADMIN)) == [env.s1.uuid]


def test_all_projects_needs_admin(env):
    response = get(env, LIST + '?all_projects=true')
    assert response.status_code == 403
    response = get(env, LIST + '?all_projects=true', headers=ADMIN)
    everything = {a['uuid'] for a in env.dbapi.anomaly_get_all()}
    assert {env.a1.uuid, env.b1.uuid, env.s1.uuid} <= everything
    assert set(ids(response)) == everything
    response = get(env, LIST + '?all_projects=1&project_id=' + P2,
                   headers=ADMIN)
    assert ids(response) == [env.b1.uuid]
    # A reader may name its own project, not another.
    assert get(env, LIST + '?project_id=' + P1).status_code == 200
    assert get(env, LIST + '?project_id=' + P2).status_code == 403


@pytest.mark.parametrize('query,expected', [
    ('service=cinder-volume', ['a2']),
    ('host=cmp1&detector=deeplog', ['a3']),
    ('min_score=2.5', ['a3', 'a1']),
    ('since=2026-01-01T00:01:40Z', ['a3', 'a2']),
    ('until=2026-01-01T00:01:40Z', ['a1']),
    ('since=2026-01-01T00:01:00%2B00:00&until=2026-01-01T00:03:00Z',
     ['a2']),
    ('instance_id=' + INSTANCE, ['a3']),
    ('request_id=req-00000002-0000-4000-8000-000000000000', ['a2']),
    ('status=acknowledged', []),
    ('sort=score:asc', ['a2', 'a3', 'a1']),
    ('sort=service:asc,raised_at:desc', ['a2', 'a3', 'a1']),
])
def test_filters_and_sort(env, query, expected):
    response = get(env, LIST + '?' + query)
    assert response.status_code == 200, response.get_json()
    assert ids(response) == [getattr(env, name).uuid for name in expected]


def test_paging_with_next_links(env):
    seen = []
    url = LIST + '?limit=1&sort=raised_at:desc'
    while url:
        body = get(env, url).get_json()
        seen.extend(a['id'] for a in body['anomalies'])
        nxt = [link['href'] for link in body['links']
               if link['rel'] == 'next']
        url = nxt[0].replace('http://localhost', '') if nxt else None
        assert len(seen) <= 4
    assert seen == [env.a3.uuid, env.a2.uuid, env.a1.uuid]
    response = get(env, LIST + '?limit=2&marker=' + env.a3.uuid)
    assert ids(response) == [env.a2.uuid, env.a1.uuid]


@pytest.mark.parametrize('query', [
    'foo=bar', 'limit=0', 'limit=101', 'limit=99999999999999999999',
    'limit=abc', 'limit=1.5', 'min_score=nan', 'min_score=inf',
    'min_score=x', 'since=yesterday', 'until=2026-13-01T00:00:00Z',
    'sort=score:up', 'sort=reason', 'sort=score,score', 'status=open',
    'all_projects=maybe', 'limit=1&limit=2', 'instance_id=not-a-uuid',
    'request_id=req-123', 'marker=not-a-uuid', 'project_id=' + 'x' * 65,
    'service=', 'host=a%00b',
    'marker=' + str(uuid.uuid4()),
])
def test_bad_list_input_gets_400(env, query):
    response = get(env, LIST + '?' + query)
    assert response.status_code == 400, response.get_json()
    error = response.get_json()['errors'][0]
    assert error['status'] == 400 and error['detail']
    assert error['request_id'].startswith('req-')


def test_show_filters_other_projects_evidence(env):
    path = ONE.format(anomaly_id=env.a1.uuid)
    anomaly = get(env, path, template=ONE).get_json()['anomaly']
    assert [e['project_id'] for e in anomaly['evidence']] == [P1, None]
    assert anomaly['evidence_hidden'] == 1
    anomaly = get(env, path, headers=ADMIN,
                  template=ONE).get_json()['anomaly']
    assert [e['project_id'] for e in anomaly['evidence']] == [P1, P2, None]
    # Another project's anomaly, a bad and an unknown id: all 404.
    for anomaly_id in (env.b1.uuid, 'not-a-uuid', str(uuid.uuid4())):
        response = get(env, ONE.format(anomaly_id=anomaly_id),
                       template=ONE)
        assert response.status_code == 404


def test_patch_needs_member_and_records_who_and_when(env):
    path = ONE.format(anomaly_id=env.a2.uuid)
    response = env.client.patch(path, headers=READER,
                                json={'status': 'acknowledged'})
    DOC.check('PATCH', ONE, response)
    assert response.status_code == 403
    response = env.client.patch(path, headers=MEMBER, json={
        'status': 'false_positive', 'comment': 'token=abc123 was fine'})
    anomaly = DOC.check('PATCH', ONE, response)['anomaly']
    assert response.status_code == 200
    assert anomaly['status'] == 'false_positive'
    assert anomaly['status_changed_by'] == 'member-1'
    assert anomaly['status_changed_at']
    assert 'abc123' not in anomaly['status_comment']
    assert ids(get(env, LIST + '?status=false_positive')) == [env.a2.uuid]
    # Another project's anomaly cannot be found, let alone changed.
    response = env.client.patch(ONE.format(anomaly_id=env.b1.uuid),
                                headers=MEMBER, json={'status': 'new'})
    assert response.status_code == 404


@pytest.mark.parametrize('kwargs,status', [
    ({'json': {'status': 'closed'}}, 400),
    ({'json': {'comment': 'no status'}}, 400),
    ({'json': {'status': 'new', 'extra': 1}}, 400),
    ({'json': {'status': 'new', 'comment': 'x' * 1025}}, 400),
    ({'json': ['status', 'new']}, 400),
    ({'data': '{"status": ', 'content_type': 'application/json'}, 400),
    ({'data': 'status=new', 'content_type': 'text/plain'}, 415),
    ({'json': {'status': 'new', 'comment': 'x' * 4000}}, 413),
])
def test_bad_patch_bodies(env, kwargs, status):
    response = env.client.patch(ONE.format(anomaly_id=env.a2.uuid),
                                headers=MEMBER, **kwargs)
    DOC.check('PATCH', ONE, response)
    assert response.status_code == status
    assert env.dbapi.anomaly_get(env.a2.uuid)['status'] == 'new'


def test_explanation_summary_then_stored(env):
    path = EXPLAIN.format(anomaly_id=env.a1.uuid)
    explanation = get(env, path, template=EXPLAIN).get_json()['explanation']
    assert explanation['source'] == 'evidence_summary'
    assert explanation['counts']['lines'] == 2
    assert explanation['counts']['hidden_lines'] == 1
    assert explanation['first_error']['level'] == 'ERROR'
    assert explanation['services'] == ['nova-compute']
    # A stored explanation wins; on an anomaly of its own project, so
    # that the other tests keep seeing summaries.
    p3 = 'p3' + 'e' * 30
    x1 = fixtures.make_anomaly(6, p3, [p3])
    env.dbapi.store_anomalies([x1])
    env.dbapi.explanation_save(x1.uuid, 'graph', {'causes': ['disk']})
    explanation = get(env, EXPLAIN.format(anomaly_id=x1.uuid),
                      headers=who(p3, ['reader']),
                      template=EXPLAIN).get_json()['explanation']
    assert explanation['source'] == 'rca'
    assert explanation['body'] == {'causes': ['disk']}
    response = get(env, EXPLAIN.format(anomaly_id=env.b1.uuid),
                   template=EXPLAIN)
    assert response.status_code == 404


@pytest.mark.parametrize('header,status,served', [
    ('log-analysis 1.0', 200, '1.0'), ('log-analysis latest', 200, '1.1'),
    ('log-analysis 1.1', 200, '1.1'),
    ('log-analysis 2.0', 406, '1.0'), ('log-analysis 0.9', 406, '1.0'),
    ('log-analysis one', 400, '1.0'), ('compute 2.90', 200, '1.0'),
])
def test_microversion_header(env, header, status, served):
    response = get(env, LIST, headers=dict(READER, **{
        'OpenStack-API-Version': header}))
    assert response.status_code == status
    assert response.headers['OpenStack-API-Version'] == (
        'log-analysis ' + served)


def test_unknown_route_and_method_are_json(env):
    response = env.client.get('/v2/anomalies', headers=READER)
    assert response.status_code == 404
    assert response.get_json()['errors'][0]['status'] == 404
    response = env.client.delete(ONE.format(anomaly_id=env.a1.uuid),
                                 headers=MEMBER)
    assert response.status_code == 405
    assert 'PATCH' in response.headers['Allow']
    assert response.get_json()['errors'][0]['status'] == 405


def test_healthcheck_needs_no_identity(env):
    response = env.client.get('/healthcheck')
    DOC.check('GET', '/healthcheck', response)
    assert response.status_code == 200
