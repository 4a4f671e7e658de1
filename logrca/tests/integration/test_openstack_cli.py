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


"""The API behind real Keystone, driven by the real ``openstack`` CLI."""

import json
import os
import subprocess
import sys
import uuid

import pytest
import requests

from logrca.db import api as db_api
from logrca.db import migration
from logrca.rca import operations
from logrca.tests.functional.api import fixtures

OPENSTACK = os.path.join(os.path.dirname(sys.executable), 'openstack')
PASSWORD = 'pw-' + uuid.uuid4().hex[:8]


class Cloud:
    """Keystone, the logrca API and the anomalies of the scenario."""


@pytest.fixture(scope='module')
def cloud(keystone_server, tmp_path_factory):
    ks = keystone_server
    workdir = str(tmp_path_factory.mktemp('logrca-api'))
    c = Cloud()
    c.ks = ks
    suffix = uuid.uuid4().hex[:6]
    c.p1_name, c.p2_name = 'rca-p1-' + suffix, 'rca-p2-' + suffix
    c.p1 = ks.create_project(c.p1_name)
    c.p2 = ks.create_project(c.p2_name)
    c.reader = 'reader-' + suffix
    c.member = 'member-' + suffix
    c.reader_id = ks.create_user(c.reader, PASSWORD, c.p1, ['reader'])
    c.member_id = ks.create_user(c.member, PASSWORD, c.p1, ['member'])
    service_user = 'logrca-' + suffix
    ks.create_service_user(service_user, PASSWORD)

    connection = 'sqlite:///%s/logrca.sqlite' % workdir
    conf = fixtures.make_conf(connection)
    migration.upgrade(conf)
    dbapi = db_api.get_instance(conf)
    c.a1 = fixtures.make_anomaly(1, c.p1, [c.p1, c.p2, c.p1], score=5.0)
    c.a2 = fixtures.make_anomaly(2, c.p1, [c.p1], score=2.0,
                                 raised_at=1767225700.0)
    c.b1 = fixtures.make_anomaly(3, c.p2, [c.p2], score=3.0)
    c.s1 = fixtures.make_anomaly(4, None, [None], score=4.0)
    dbapi.store_anomalies([c.a1, c.a2, c.b1, c.s1])
    # Explained boot failures (as the conductor stores them): p2's b1
    # failed before p1's a2; a1 stays unexplained.
    for anomaly, project, module in (
            (c.a2, c.p1, 'nova/compute/manager.py'),
            (c.b1, c.p2, 'nova/virt/libvirt/driver.py')):
        dbapi.explanation_save(anomaly.uuid, 'grounded', {
            'summary': 'Instance boot failed in %s [E1].' % module,
            'operation': operations.BOOT,
            'suspects': [{'module': module, 'function': 'spawn',
                          'service': 'nova-compute', 'citations': ['E1']}],
            'next_steps': [{'text': 'Check %s on the compute host.'
                            % module, 'citations': ['E1']}],
            'evidence': [{'id': 'E1', 'project_id': project}]})
    dbapi.dispose()

    authtoken = '\n'.join('%s = %s' % item for item in
                          ks.authtoken_options(service_user,
                                               PASSWORD).items())
    server = fixtures.APIServer(
        '[DEFAULT]\nlog_file = %s/api.log\n'
        # No conductor in this test: do not wait for one.
        '[api]\nexplain_via_conductor = false\n'
        '[database]\nconnection = %s\n'
        '[keystone_authtoken]\n%s\n' % (workdir, connection, authtoken),
        workdir)
    c.api = server.start()
    ks.register_service('log-analysis', 'logrca-' + suffix, server.url)
    yield c
    server.stop()


def openstack(cloud, user, project, *args, check=True):
    env = cloud.ks.openstack_env(user, cloud.ks.admin_password
                                 if user == 'admin' else PASSWORD, project)
    result = subprocess.run([OPENSTACK, *args], env=env, capture_output=True,
                            text=True, timeout=120)
    if check and result.returncode != 0:
        raise AssertionError('openstack %s failed (%d):\n%s'
                             % (' '.join(args), result.returncode,
                                result.stderr))
    return result


def ids_of(result):
    return {row['ID'] for row in json.loads(result.stdout)}


def test_reader_lists_only_its_project(cloud):
    result = openstack(cloud, cloud.reader, cloud.p1_name,
                       'rca', 'anomaly', 'list', '-f', 'json')
    assert ids_of(result) == {cloud.a1.uuid, cloud.a2.uuid}
    # The filters reach the API: only a1 scores 5.
    result = openstack(cloud, cloud.reader, cloud.p1_name,
                       'rca', 'anomaly', 'list', '--min-score', '4',
                       '-f', 'value', '-c', 'ID')
    assert result.stdout.split() == [cloud.a1.uuid]


def test_project_by_name_and_paging_with_the_printed_marker(cloud):
    # A reader names its own project (it may not look projects up).
    result = openstack(cloud, cloud.reader, cloud.p1_name,
                       'rca', 'anomaly', 'list', '--project', cloud.p1_name,
                       '-f', 'json')
    assert ids_of(result) == {cloud.a1.uuid, cloud.a2.uuid}
    # An admin names another project, looked up in Keystone.
    result = openstack(cloud, 'admin', 'admin', 'rca', 'anomaly', 'list',
                       '--project', cloud.p2_name, '-f', 'json')
    assert ids_of(result) == {cloud.b1.uuid}
    # A full page says how to get the next one, on standard error only.
    first = openstack(cloud, cloud.reader, cloud.p1_name,
                      'rca', 'anomaly', 'list', '--limit', '1', '-f', 'json')
    (page,) = json.loads(first.stdout)
    assert ('More anomalies: add --marker %s' % page['ID']
            in first.stderr)
    second = openstack(cloud, cloud.reader, cloud.p1_name,
                       'rca', 'anomaly', 'list', '--limit', '1',
                       '--marker', page['ID'], '-f', 'json')
    assert ids_of(first) | ids_of(second) == {cloud.a1.uuid,
                                              cloud.a2.uuid}
    # The last page is not full: no marker printed.
    last = openstack(cloud, cloud.reader, cloud.p1_name,
                     'rca', 'anomaly', 'list', '--limit', '5')
    assert 'More anomalies' not in last.stderr


def test_all_projects_refused_for_reader_allowed_for_admin(cloud):
    result = openstack(cloud, cloud.reader, cloud.p1_name,
                       'rca', 'anomaly', 'list', '--all-projects',
                       check=False)
    assert result.returncode != 0
    assert 'HTTP 403' in result.stderr
    result = openstack(cloud, 'admin', 'admin', 'rca', 'anomaly', 'list',
                       '--all-projects', '-f', 'json')
    assert {cloud.a1.uuid, cloud.a2.uuid, cloud.b1.uuid,
            cloud.s1.uuid} <= ids_of(result)


def test_request_without_token_gets_401(cloud):
    for path in ('/', '/v1/anomalies', '/v1/anomalies/%s' % cloud.a1.uuid):
        response = requests.get(cloud.api.url + path, timeout=10)
        assert response.status_code == 401, path
        assert response.headers['Content-Type'].startswith(
            'application/json')
        assert 'Keystone uri=' in response.headers['WWW-Authenticate']
    response = requests.get(cloud.api.url + '/v1/anomalies', timeout=10,
                            headers={'X-Auth-Token': 'not-a-token'})
    assert response.status_code == 401
    assert requests.get(cloud.api.url + '/healthcheck',
                        timeout=10).status_code == 200


def test_show_hides_other_projects_evidence(cloud):
    result = openstack(cloud, cloud.reader, cloud.p1_name, 'rca', 'anomaly',
                       'show', cloud.a1.uuid, '-f', 'json')
    shown = json.loads(result.stdout)
    assert [e['project_id'] for e in shown['evidence']] == [cloud.p1] * 2
    assert shown['evidence_hidden'] == 1
    result = openstack(cloud, 'admin', 'admin', 'rca', 'anomaly', 'show',
                       cloud.a1.uuid, '-f', 'json')
    assert len(json.loads(result.stdout)['evidence']) == 3
    # Another project's anomaly does not exist for the reader.
    result = openstack(cloud, cloud.reader, cloud.p1_name, 'rca', 'anomaly',
                       'show', cloud.b1.uuid, check=False)
    assert result.returncode != 0 and 'HTTP 404' in result.stderr


def test_reader_cannot_set_member_can(cloud):
    result = openstack(cloud, cloud.reader, cloud.p1_name, 'rca', 'anomaly',
                       'set', cloud.a2.uuid, '--status', 'acknowledged',
                       check=False)
    assert result.returncode != 0
    assert 'HTTP 403' in result.stderr
    result = openstack(cloud, cloud.member, cloud.p1_name, 'rca', 'anomaly',
                       'set', cloud.a2.uuid, '--status', 'acknowledged',
                       '--comment', 'looking at it', '-f', 'json')
    updated = json.loads(result.stdout)
    assert updated['status'] == 'acknowledged'
    assert updated['status_changed_by'] == cloud.member_id
    assert updated['status_comment'] == 'looking at it'
    assert updated['status_changed_at']


def test_explain_prints_summary(cloud):
    result = openstack(cloud, cloud.reader, cloud.p1_name, 'rca', 'explain',
                       cloud.a1.uuid)
    assert 'evidence_summary' in result.stdout
    assert 'anomaly 1' in result.stdout
    # The endpoint can be given instead of taken from the catalog.
    result = openstack(cloud, cloud.reader, cloud.p1_name,
                       '--os-logrca-endpoint', cloud.api.url, 'rca',
                       'explain', cloud.a1.uuid, '-f', 'json')
    explanation = json.loads(result.stdout)
    assert explanation['services'] == ['nova-compute']
    assert explanation['counts']['hidden_lines'] == 1


def test_vitrage_plugin_still_works_beside_ours(cloud):
    pytest.importorskip('vitrageclient')
    env = cloud.ks.openstack_env(cloud.reader, PASSWORD, cloud.p1_name)
    ours = subprocess.run([OPENSTACK, 'rca', 'anomaly', 'list', '--help'],
                          env=env, capture_output=True, text=True,
                          timeout=60)
    theirs = subprocess.run([OPENSTACK, 'rca', 'show', '--help'], env=env,
                            capture_output=True, text=True, timeout=60)
    assert ours.returncode == 0 and '--all-projects' in ours.stdout
    assert theirs.returncode == 0 and 'alarm_vitrage_id' in theirs.stdout


def test_reader_asks_and_follows_up(cloud):
    result = openstack(cloud, cloud.reader, cloud.p1_name, 'rca', 'ask',
                       'What caused the server outage?', '-f', 'json')
    answer = json.loads(result.stdout)
    # Its own project's boot failure, not p2's earlier one.
    assert answer['anomalies'] == [cloud.a2.uuid]
    assert cloud.b1.uuid not in result.stdout
    assert 'nova/compute/manager.py' in answer['answer']
    assert answer['query']['operation'] == operations.BOOT
    result = openstack(cloud, cloud.reader, cloud.p1_name, 'rca', 'ask',
                       'What should I check first?', '--conversation',
                       answer['conversation_id'], '-f', 'json')
    follow = json.loads(result.stdout)
    assert follow['conversation_id'] == answer['conversation_id']
    assert follow['anomalies'] == [cloud.a2.uuid]
    assert follow['answer'].startswith('Check nova/compute/manager.py')
    # The table form prints the answer and the cited anomaly.
    result = openstack(cloud, cloud.reader, cloud.p1_name, 'rca', 'ask',
                       'What caused the server outage?')
    assert 'Instance boot failed' in result.stdout
    assert cloud.a2.uuid in result.stdout
    result = openstack(cloud, cloud.reader, cloud.p1_name, 'rca', 'ask',
                       'why?', '--conversation', 'not-a-conversation',
                       check=False)
    assert result.returncode != 0 and 'HTTP 400' in result.stderr


def test_member_gives_feedback_reader_cannot(cloud):
    result = openstack(cloud, cloud.reader, cloud.p1_name, 'rca',
                       'feedback', 'create', cloud.a2.uuid, '--confirm',
                       check=False)
    assert result.returncode != 0 and 'HTTP 403' in result.stderr
    result = openstack(cloud, cloud.member, cloud.p1_name, 'rca',
                       'feedback', 'create', cloud.a2.uuid, '--confirm',
                       '--comment', 'yes, that was it', '-f', 'json')
    confirmed = json.loads(result.stdout)
    assert confirmed['verdict'] == 'confirmed'
    assert confirmed['module'] == 'nova/compute/manager.py'
    assert confirmed['user_id'] == cloud.member_id
    result = openstack(cloud, cloud.member, cloud.p1_name, 'rca',
                       'feedback', 'create', cloud.a2.uuid, '--module',
                       'nova/scheduler/manager.py', '--function',
                       'select_destinations', '-f', 'json')
    assert json.loads(result.stdout)['verdict'] == 'corrected'
    result = openstack(cloud, cloud.reader, cloud.p1_name, 'rca',
                       'feedback', 'list', cloud.a2.uuid, '-f', 'json')
    listed = json.loads(result.stdout)
    assert [(f['Verdict'], f['Module']) for f in listed] == [
        ('confirmed', 'nova/compute/manager.py'),
        ('corrected', 'nova/scheduler/manager.py')]
    assert listed[0]['Comment'] == 'yes, that was it'
