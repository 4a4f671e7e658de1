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

"""Storage of anomalies on SQLite, MariaDB and PostgreSQL."""

import concurrent.futures
import datetime

import pytest
import sqlalchemy as sa

from logrca.db import api as db_api
from logrca.db import exceptions
from logrca.db import models
from logrca.detectors import anomaly as anomaly_mod
from logrca.tests import services
from logrca.tests.functional.db import base

UTC = datetime.UTC


@pytest.fixture(scope='module', params=services.BACKENDS)
def dbapi(request):
    """A Connection to a fresh database per backend, for this module."""
    with base.migrated_database(request.param) as connection:
        yield connection


def _uniq(request):
    """A name unique to the running test (tests share the database)."""
    return request.node.name[-60:]


def test_store_and_get(dbapi, request):
    project = 'p-' + _uniq(request)[:40]
    anomaly = base.make_anomaly(1, lines=4, project_id=project,
                                instance_id='6f0f3c2e-1111-4d5e-9f00-'
                                            '123456789abc',
                                user_id='u1', service=_uniq(request))
    assert dbapi.store_anomalies([anomaly]) == [anomaly.uuid]
    got = dbapi.anomaly_get(anomaly.uuid)
    assert got['detector'] == 'baseline'
    assert got['score'] == anomaly.score
    assert got['threshold'] == 0.5
    assert got['project_id'] == project and got['user_id'] == 'u1'
    assert got['session_kind'] == 'request'
    assert got['session_key'] == list(anomaly.session_key)
    assert got['request_ids'] == anomaly.request_ids
    assert got['instance_ids'] == anomaly.instance_ids
    assert got['status'] == models.STATUS_NEW
    # Times keep their microseconds and come back as aware UTC datetimes.
    assert got['raised_at'] == datetime.datetime.fromtimestamp(
        anomaly.raised_at, UTC)
    assert [e['message'] for e in got['evidence']] == [
        e.message for e in anomaly.evidence]
    first = got['evidence'][1]
    assert first['timestamp'] == datetime.datetime.fromtimestamp(
        anomaly.evidence[1].timestamp, UTC)
    assert first['timestamp'].microsecond == 123
    assert first['lineno'] == 101 and first['template_id'] == 1
    assert first['instance_id'] == anomaly.instance_ids[0]
    assert dbapi.anomaly_get('00000000-0000-0000-0000-000000000000') is None


def test_get_many_keeps_order_and_each_evidence(dbapi, request):
    batch = [base.make_anomaly(i, lines=2 + i, service=_uniq(request))
             for i in range(3)]
    dbapi.store_anomalies(batch)
    missing = '00000000-0000-0000-0000-000000000000'
    wanted = [batch[2].uuid, missing, batch[0].uuid, batch[2].uuid]
    got = dbapi.anomaly_get_many(wanted)
    assert [g['uuid'] for g in got] == [batch[2].uuid, batch[0].uuid]
    for row, anomaly in zip(got, (batch[2], batch[0])):
        assert [e['message'] for e in row['evidence']] == [
            e.message for e in anomaly.evidence]
        assert [e['position'] for e in row['evidence']] == list(
            range(len(anomaly.evidence)))
    assert dbapi.anomaly_get_many([]) == []


def test_store_is_idempotent(dbapi, request):
    batch = [base.make_anomaly(i, service=_uniq(request)) for i in range(5)]
    assert sorted(dbapi.store_anomalies(batch[:3])) == sorted(
        a.uuid for a in batch[:3])
    # A redelivered batch, partly new, as dicts (as sent over RPC).
    again = dbapi.store_anomalies([a.to_dict() for a in batch])
    assert sorted(again) == sorted(a.uuid for a in batch[3:])
    assert dbapi.store_anomalies(batch) == []
    # The same anomaly twice in one batch is stored once.
    twin = base.make_anomaly(9, service=_uniq(request))
    assert dbapi.store_anomalies([twin, twin.to_dict()]) == [twin.uuid]
    assert dbapi.anomaly_count({'service': _uniq(request)}) == 6


def test_concurrent_store_of_same_anomalies(dbapi, request):
    batch = [base.make_anomaly(i, service=_uniq(request)) for i in range(20)]
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        results = list(pool.map(
            lambda _n: dbapi.store_anomalies(batch), range(4)))
    stored = [uuid for result in results for uuid in result]
    assert sorted(stored) == sorted(a.uuid for a in batch)
    assert dbapi.anomaly_count({'service': _uniq(request)}) == 20


def test_malformed_anomaly_stores_nothing(dbapi, request):
    good = base.make_anomaly(1, service=_uniq(request)).to_dict()
    for bad in ({'detector': 'x'}, dict(good, score='high'),
                dict(good, score=float('nan')), dict(good, raised_at=1e300),
                dict(good, uuid='short')):
        with pytest.raises(ValueError):
            dbapi.store_anomalies([good, bad])
    assert dbapi.anomaly_count({'service': _uniq(request)}) == 0


def test_secrets_are_masked(dbapi, request):
    anomaly = base.make_anomaly(
        1, service=_uniq(request),
        reason='auth failed for password=Hunter2Reason',
        session_key=('window', 'rabbit://nova:RabbitPw@10.0.0.1:5672/'))
    anomaly.evidence[0].message = (
        'connection=mysql+pymysql://nova:NovaDbPw@db/nova '
        'X-Auth-Token: gAAAAABbMxyz0123')
    anomaly.uuid = anomaly.make_id()
    dbapi.store_anomalies([anomaly])
    with dbapi.get_engine().connect() as conn:
        dump = ' '.join(str(v) for table in ('anomalies', 'anomaly_evidence')
                        for row in conn.execute(sa.text(
                            'SELECT * FROM %s' % table)) for v in row)
    for secret in ('Hunter2Reason', 'RabbitPw', 'NovaDbPw',
                   'gAAAAABbMxyz0123'):
        assert secret not in dump
    got = dbapi.anomaly_get(anomaly.uuid)
    assert '***' in got['reason'] and '***' in got['evidence'][0]['message']


def test_unicode_and_long_lines(dbapi, request):
    line = 'ERROR ünïcødé 日本語 🚀 ' + 'x' * (1024 * 1024)
    anomaly = base.make_anomaly(1, service=_uniq(request),
                                reason='échec 🚀 du nœud')
    anomaly.evidence[0].message = line
    anomaly.uuid = anomaly.make_id()
    dbapi.store_anomalies([anomaly])
    got = dbapi.anomaly_get(anomaly.uuid)
    assert got['reason'] == 'échec 🚀 du nœud'
    assert got['evidence'][0]['message'] == line


def test_evidence_is_truncated(dbapi, request):
    lines = dbapi.max_evidence_lines + 7
    anomaly = base.make_anomaly(1, lines=lines, service=_uniq(request))
    dbapi.store_anomalies([anomaly])
    got = dbapi.anomaly_get(anomaly.uuid)
    assert len(got['evidence']) == dbapi.max_evidence_lines
    assert got['evidence'][0]['message'] == anomaly.evidence[0].message
    # A line longer than max_evidence_chars is cut and marked.
    huge = base.make_anomaly(2, service=_uniq(request))
    huge.evidence[0].message = 'y' * (dbapi.max_message_chars + 10)
    huge.uuid = huge.make_id()
    dbapi.store_anomalies([huge])
    message = dbapi.anomaly_get(huge.uuid)['evidence'][0]['message']
    assert message.endswith('[truncated]')
    assert len(message) == dbapi.max_message_chars + len(' [truncated]')


@pytest.fixture(scope='module')
def listing(dbapi):
    """30 anomalies over 2 projects, 3 hosts and 2 detectors, plus ties."""
    anomalies = []
    for i in range(30):
        anomalies.append(base.make_anomaly(
            i, service='listing', host='host-%d' % (i % 3),
            detector='baseline' if i % 2 else 'learned',
            project_id=('proj-a', 'proj-b', None)[i % 3],
            score=float(i % 7),
            # Pairs share raised_at: the id tie-breaker must order them.
            raised_at=base.BASE_TIME + 1000 + i // 2,
            instance_id='inst-%d' % (i % 4)))
    dbapi.store_anomalies(anomalies)
    return anomalies


def _page_all(dbapi, filters, limit, **kwargs):
    seen, marker = [], None
    while True:
        page = dbapi.anomaly_get_all(filters, limit=limit, marker=marker,
                                     **kwargs)
        seen.extend(page)
        if len(page) < limit:
            return seen
        marker = page[-1]['uuid']


def test_default_order_and_paging(dbapi, listing):
    everything = dbapi.anomaly_get_all({'service': 'listing'})
    assert len(everything) == 30
    keys = [(a['raised_at'], a['uuid']) for a in everything]
    times = [k[0] for k in keys]
    assert times == sorted(times, reverse=True)
    for size in (1, 4, 7, 30):
        paged = _page_all(dbapi, {'service': 'listing'}, size)
        assert [a['uuid'] for a in paged] == [a['uuid'] for a in everything]


@pytest.mark.parametrize('keys,dirs', [
    (['score'], ['asc']), (['score', 'raised_at'], ['desc', 'asc']),
    (['host'], ['asc']), (['project_id'], ['desc']),
    (['project_id', 'score'], ['asc', 'desc']), (['detector'], None),
])
def test_sorted_paging_is_complete_and_ordered(dbapi, listing, keys, dirs):
    full = dbapi.anomaly_get_all({'service': 'listing'}, sort_keys=keys,
                                 sort_dirs=dirs)
    assert len(full) == 30
    first = keys[0]
    values = [a[first] for a in full]
    # NULLs sort as the smallest value on every backend.
    key = [(v is not None, v if v is not None else '') for v in values]
    descending = (dirs or ['desc'])[0] == 'desc'
    assert key == sorted(key, reverse=descending)
    for size in (3, 8):
        paged = _page_all(dbapi, {'service': 'listing'}, size,
                          sort_keys=keys, sort_dirs=dirs)
        assert [a['uuid'] for a in paged] == [a['uuid'] for a in full]


def test_filters(dbapi, listing):
    def uuids(filters):
        result = dbapi.anomaly_get_all(dict(filters, service='listing'))
        assert dbapi.anomaly_count(dict(filters, service='listing')) == len(
            result)
        return {a['uuid'] for a in result}

    def expect(predicate):
        return {a.uuid for a in listing if predicate(a)}

    assert uuids({'host': 'host-1'}) == expect(lambda a: a.host == 'host-1')
    assert uuids({'detector': 'learned'}) == expect(
        lambda a: a.detector == 'learned')
    assert uuids({'project_id': 'proj-a'}) == expect(
        lambda a: a.project_id == 'proj-a')
    assert uuids({'project_id_or_null': 'proj-a'}) == expect(
        lambda a: a.project_id in ('proj-a', None))
    assert uuids({'project_id': None}) == expect(lambda a: True)
    assert uuids({'min_score': 4}) == expect(lambda a: a.score >= 4)
    since = base.BASE_TIME + 1005
    until = datetime.datetime.fromtimestamp(base.BASE_TIME + 1010, UTC)
    assert uuids({'since': since, 'until': until}) == expect(
        lambda a: since <= a.raised_at < base.BASE_TIME + 1010)
    assert uuids({'since': until.isoformat()}) == expect(
        lambda a: a.raised_at >= base.BASE_TIME + 1010)
    assert uuids({'instance_id': 'inst-2'}) == expect(
        lambda a: 'inst-2' in a.instance_ids)
    assert uuids({'request_id': listing[5].request_ids[0]}) == {
        listing[5].uuid}
    assert uuids({'request_id': 'req-nothing'}) == set()
    assert uuids({'host': 'host-0', 'project_id': 'proj-a',
                  'min_score': 2}) == expect(
        lambda a: a.host == 'host-0' and a.project_id == 'proj-a'
        and a.score >= 2)
    assert uuids({'host': ['host-0', 'host-2']}) == expect(
        lambda a: a.host in ('host-0', 'host-2'))


def test_bad_list_arguments(dbapi, listing):
    with pytest.raises(exceptions.InvalidFilter):
        dbapi.anomaly_get_all({'colour': 'red'})
    with pytest.raises(exceptions.InvalidFilter):
        dbapi.anomaly_get_all({'since': 'yesterday'})
    with pytest.raises(exceptions.InvalidFilter):
        dbapi.anomaly_get_all({'min_score': 'high'})
    with pytest.raises(exceptions.InvalidSortKey):
        dbapi.anomaly_get_all({}, sort_keys=['reason'])
    with pytest.raises(exceptions.InvalidSortKey):
        dbapi.anomaly_get_all({}, sort_keys=['score'], sort_dirs=['up'])
    with pytest.raises(exceptions.InvalidMarker):
        dbapi.anomaly_get_all({}, marker='00000000-0000-0000-0000-0000000000'
                                         '00')
    with pytest.raises(exceptions.InvalidParameter):
        dbapi.anomaly_get_all({}, limit=-1)


def test_update_status(dbapi, request):
    anomaly = base.make_anomaly(1, service=_uniq(request))
    dbapi.store_anomalies([anomaly])
    got = dbapi.anomaly_update(anomaly.uuid, {
        'status': 'acknowledged', 'status_changed_by': 'alice',
        'status_comment': 'looking, token=abc123secret'})
    assert got['status'] == 'acknowledged'
    assert got['status_changed_by'] == 'alice'
    assert 'abc123secret' not in got['status_comment']
    assert got['status_changed_at'] is not None
    assert len(got['evidence']) == 3
    assert dbapi.anomaly_get_all({'service': _uniq(request),
                                  'status': 'acknowledged'})[0][
        'uuid'] == anomaly.uuid
    with pytest.raises(exceptions.InvalidValue):
        dbapi.anomaly_update(anomaly.uuid, {'status': 'closed'})
    with pytest.raises(exceptions.InvalidValue):
        dbapi.anomaly_update(anomaly.uuid, {'score': 0})
    with pytest.raises(exceptions.AnomalyNotFound):
        dbapi.anomaly_update('00000000-0000-0000-0000-000000000000',
                             {'status': 'resolved'})


def test_explanations(dbapi, request):
    anomaly = base.make_anomaly(1, service=_uniq(request))
    dbapi.store_anomalies([anomaly])
    assert dbapi.explanation_get(anomaly.uuid) is None
    body = {'summary': 'db down, password=Sekret1', 'causes': [
        {'service': 'nova', 'score': 0.9}]}
    saved = dbapi.explanation_save(anomaly.uuid, 'evidence', body)
    assert saved['driver'] == 'evidence'
    assert 'Sekret1' not in saved['body']['summary']
    assert saved['body']['causes'] == body['causes']
    dbapi.explanation_save(anomaly.uuid, 'graph', {'summary': 'v2'})
    assert dbapi.explanation_get(anomaly.uuid)['body'] == {'summary': 'v2'}
    with pytest.raises(exceptions.AnomalyNotFound):
        dbapi.explanation_save('00000000-0000-0000-0000-000000000000',
                               'x', {})


def test_purge(dbapi, request):
    old = [base.make_anomaly(i, service=_uniq(request),
                             raised_at=1000000.0 + i,
                             instance_id='purge-inst') for i in range(3)]
    new = base.make_anomaly(7, service=_uniq(request),
                            instance_id='purge-inst')
    dbapi.store_anomalies(old + [new])
    dbapi.explanation_save(old[0].uuid, 'evidence', {'summary': 'x'})
    dbapi.feedback_create(old[1].uuid, {'verdict': 'confirmed'})
    deleted = dbapi.anomaly_purge(
        datetime.datetime.fromtimestamp(2000000.0, UTC))
    assert deleted >= 3
    assert all(dbapi.anomaly_get(a.uuid) is None for a in old)
    assert dbapi.anomaly_get(new.uuid) is not None
    assert [a['uuid'] for a in dbapi.anomaly_get_all(
        {'instance_id': 'purge-inst'})] == [new.uuid]
    with dbapi.get_engine().connect() as conn:
        for table in ('anomaly_evidence', 'anomaly_refs', 'explanations',
                      'feedback'):
            orphans = conn.execute(sa.text(
                'SELECT COUNT(*) FROM %s WHERE anomaly_id NOT IN '
                '(SELECT id FROM anomalies)' % table)).scalar()
            assert orphans == 0, table


def test_anomaly_without_times(dbapi, request):
    anomaly = anomaly_mod.Anomaly(
        detector='baseline', score=2.0, reason='no times',
        session_key=('window', _uniq(request)), start_time=None,
        end_time=None, raised_at=None, service=_uniq(request))
    assert dbapi.store_anomalies([anomaly]) == [anomaly.uuid]
    got = dbapi.anomaly_get(anomaly.uuid)
    assert got['raised_at'] is not None and got['evidence'] == []


def test_feedback(dbapi, request):
    project = 'p-' + _uniq(request)[:40]
    anomaly = base.make_anomaly(1, service=_uniq(request),
                                project_id=project)
    other = base.make_anomaly(2, service=_uniq(request), project_id='other')
    dbapi.store_anomalies([anomaly, other])
    confirmed = dbapi.feedback_create(anomaly.uuid, {
        'verdict': 'confirmed', 'user_id': 'u1', 'project_id': project,
        'module': 'nova/compute/manager.py', 'function': '_build',
        'operation': 'boot'})
    corrected = dbapi.feedback_create(anomaly.uuid, {
        'verdict': 'corrected', 'user_id': 'u2', 'project_id': project,
        'module': 'nova/virt/libvirt/driver.py', 'function': 'spawn',
        'cause': 'libvirt died', 'comment': 'see token=Sekret12345 here'})
    dbapi.feedback_create(other.uuid, {'verdict': 'corrected',
                                       'cause': 'disk full',
                                       'project_id': 'other'})
    assert confirmed['anomaly_id'] == anomaly.uuid
    assert confirmed['user_id'] == 'u1' and confirmed['function'] == '_build'
    assert confirmed['created_at'].tzinfo is not None
    assert 'Sekret12345' not in corrected['comment']
    mine = dbapi.feedback_get_all({'anomaly_id': anomaly.uuid})
    assert [f['id'] for f in mine] == [confirmed['id'], corrected['id']]
    assert [f['verdict'] for f in mine] == ['confirmed', 'corrected']
    assert mine[1]['module'] == 'nova/virt/libvirt/driver.py'
    assert mine[1]['cause'] == 'libvirt died'
    assert [f['anomaly_id'] for f in dbapi.feedback_get_all(
        {'project_id': 'other'})] == [other.uuid]
    assert len(dbapi.feedback_get_all({'verdict': 'corrected',
                                       'project_id': project})) == 1
    # What ``kb build`` calls: no arguments, every project.
    every = {f['id'] for f in dbapi.feedback_get_all()}
    assert {confirmed['id'], corrected['id']} <= every
    with pytest.raises(exceptions.InvalidValue):
        dbapi.feedback_create(anomaly.uuid, {'verdict': 'maybe'})
    with pytest.raises(exceptions.InvalidValue):
        dbapi.feedback_create(anomaly.uuid, {'verdict': 'corrected'})
    with pytest.raises(exceptions.InvalidValue):
        dbapi.feedback_create(anomaly.uuid, {'verdict': 'confirmed',
                                             'comment': 'x' * 9000})
    with pytest.raises(exceptions.InvalidValue):
        dbapi.feedback_create(anomaly.uuid, {'verdict': 'confirmed',
                                             'rating': 5})
    with pytest.raises(exceptions.AnomalyNotFound):
        dbapi.feedback_create('00000000-0000-0000-0000-000000000000',
                              {'verdict': 'confirmed'})
    with pytest.raises(exceptions.InvalidFilter):
        dbapi.feedback_get_all({'user': 'u1'})


def test_conversations(dbapi, request):
    ident = '5d1c7a4e-0000-4000-8000-%012d' % (len(_uniq(request)))
    assert dbapi.conversation_get(ident) is None
    state = {'id': ident, 'turns': [
        {'question': 'why? password=Sekret12345', 'answer': ['a']}]}
    saved = dbapi.conversation_save(ident, state, project_id='p1',
                                    user_id='u1')
    assert saved['project_id'] == 'p1' and saved['user_id'] == 'u1'
    assert 'Sekret12345' not in saved['state']['turns'][0]['question']
    assert saved['state']['turns'][0]['answer'] == ['a']
    state['turns'].append({'question': 'and then?', 'answer': []})
    # The owner is kept on update.
    again = dbapi.conversation_save(ident, state, project_id='p2')
    assert again['project_id'] == 'p1'
    assert len(again['state']['turns']) == 2
    assert again['created_at'] == saved['created_at']
    assert again['updated_at'] >= saved['updated_at']
    assert dbapi.conversation_purge(
        datetime.datetime(2000, 1, 1, tzinfo=UTC)) == 0
    assert dbapi.conversation_purge(
        datetime.datetime.now(UTC) + datetime.timedelta(minutes=1)) >= 1
    assert dbapi.conversation_get(ident) is None


@pytest.mark.parametrize('dbapi', ['mysql'], indirect=True)
def test_mysqlclient_lists_as_pymysql(dbapi, listing):
    """The C driver (mysql+mysqldb://, for the API) gives the same pages."""
    # mysqlclient is a requirement (tools/setup.sh installs it): a missing
    # driver fails here rather than skipping.
    import MySQLdb  # noqa: F401
    assert dbapi.get_engine().dialect.name == 'mysql'
    url = sa.engine.make_url(dbapi.url).set(drivername='mysql+mysqldb')
    other = db_api.get_instance(base.make_conf(
        url.render_as_string(hide_password=False)))
    try:
        for filters, keys in (({'service': 'listing'}, None),
                              ({'service': 'listing'}, ['host', 'score'])):
            expected = _page_all(dbapi, filters, 7, sort_keys=keys)
            assert _page_all(other, filters, 7, sort_keys=keys) == expected
            assert len(expected) == 30
        assert other.get_engine().dialect.driver == 'mysqldb'
    finally:
        other.dispose()
