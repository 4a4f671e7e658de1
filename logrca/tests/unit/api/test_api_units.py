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


"""Query parsing, microversions, the fault wrapper and the OSC boundary."""

import datetime
import subprocess
import sys

import pytest
from werkzeug import datastructures
from werkzeug import exceptions
from werkzeug import test as wtest

from logrca.api import errors
from logrca.api import microversion
from logrca.api.v1 import anomalies


def parse(**query):
    return anomalies.parse_list_params(
        datastructures.MultiDict(query), max_limit=100, default_limit=50)


def test_defaults():
    params = parse()
    assert params['limit'] == 50 and params['marker'] is None
    assert params['filters'] == {} and params['sort_keys'] is None
    assert parse(limit='100')['limit'] == 100


def test_times_are_naive_utc():
    params = parse(since='2026-01-01T01:00:00+01:00')
    assert params['filters']['since'].isoformat() == '2026-01-01T00:00:00'


def test_sort_defaults_to_desc():
    params = parse(sort='score,service:asc')
    assert params['sort_keys'] == ['score', 'service']
    assert params['sort_dirs'] == ['desc', 'asc']


@pytest.mark.parametrize('query', [
    {'limit': '101'}, {'limit': '-1'}, {'sort': ''}, {'min_score': '1e999'},
    {'all_projects': ''}, {'detector': 'x' * 256}, {'zzz': '1'},
])
def test_rejected(query):
    with pytest.raises(exceptions.BadRequest):
        parse(**query)


def test_microversion_range():
    assert str(microversion.extract({})) == microversion.MIN_VERSION
    latest = microversion.extract(
        {'OpenStack-API-Version': 'log-analysis latest'})
    assert str(latest) == microversion.MAX_VERSION
    with pytest.raises(microversion.UnsupportedVersion):
        microversion.extract({'OpenStack-API-Version': 'log-analysis 9.9'})
    with pytest.raises(microversion.InvalidVersion):
        microversion.extract({'OpenStack-API-Version': 'log-analysis x'})


def test_fault_wrapper_returns_json_500():
    def broken(environ, start_response):
        raise RuntimeError('boom')

    response = wtest.Client(errors.FaultWrapper(broken)).get(
        '/', environ_overrides={'openstack.request_id': 'req-1'})
    assert response.status_code == 500
    body = response.get_json()
    assert body['errors'][0]['request_id'] == 'req-1'
    assert 'boom' not in response.get_data(as_text=True)


def test_osc_plugin_imports_no_server_code_nor_torch():
    code = ('import sys; import logrca.osc.plugin, logrca.osc.v1.anomalies;'
            ' bad = [m for m in sys.modules if m == "torch" or'
            ' m.startswith(("logrca.api", "logrca.db", "flask",'
            ' "sqlalchemy"))]; print(bad); sys.exit(1 if bad else 0)')
    result = subprocess.run([sys.executable, '-c', code],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize('value,text', [
    (None, None),
    (datetime.datetime(2026, 1, 2, 3, 4, 5, 6), '2026-01-02T03:04:05.000006Z'),
    (datetime.datetime(2026, 1, 2, 3, 4, 5, tzinfo=datetime.UTC),
     '2026-01-02T03:04:05Z'),
    (datetime.datetime(2026, 1, 2, 3, 4, 5, 7, tzinfo=datetime.timezone(
        datetime.timedelta(hours=2))), '2026-01-02T01:04:05.000007Z'),
    (1767225600.5, '2026-01-01T00:00:00.500000Z'),
])
def test_times_are_iso_8601_utc(value, text):
    assert anomalies._iso(value) == text
