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


"""logrca-manage db and anomaly commands on an embedded SQLite database."""

import json
import subprocess
import sys

import pytest

from logrca.cmd import manage
from logrca.db import api as db_api
from logrca.db import migration
from logrca.tests.functional.db import base


@pytest.fixture
def config(tmp_path):
    path = tmp_path / 'logrca.conf'
    # The default connection: sqlite:///$state_path/logrca.sqlite.
    path.write_text('[DEFAULT]\nstate_path = %s\n' % (tmp_path / 'state'))
    return path


def _manage(config, *args):
    return subprocess.run(
        [sys.executable, '-m', 'logrca.cmd.manage', '--config-file',
         str(config)] + list(args), capture_output=True, text=True,
        timeout=120)


def test_db_sync_and_version_commands(config, tmp_path):
    result = _manage(config, 'db', 'version')
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == 'None (empty database)'
    result = _manage(config, 'db', 'sync')
    assert result.returncode == 0, result.stderr
    assert (tmp_path / 'state' / 'logrca.sqlite').exists()
    result = _manage(config, 'db', 'version')
    assert result.stdout.strip() == migration.head()


@pytest.fixture
def stored(config, capsys):
    assert manage.main(['--config-file', str(config), 'db', 'sync']) == 0
    conf = base.make_conf('sqlite://')
    conf(['--config-file', str(config)], default_config_files=[])
    conf.clear_override('connection', group='database')
    dbapi = db_api.get_instance(conf)
    anomalies = [base.make_anomaly(
        i, service='nova-compute', host='cmp-%d' % (i % 2),
        project_id='p1' if i % 2 else None,
        reason='failure %d password=Hunter2' % i) for i in range(6)]
    dbapi.store_anomalies(anomalies)
    dbapi.dispose()
    capsys.readouterr()
    return anomalies


def _run(config, capsys, *args):
    rc = manage.main(['--config-file', str(config)] + list(args))
    out = capsys.readouterr()
    return rc, out.out, out.err


def test_anomaly_list(config, capsys, stored):
    rc, out, _err = _run(config, capsys, 'anomaly', 'list', '--format',
                         'json', '--host', 'cmp-1', '--limit', '2')
    assert rc == 0
    listed = json.loads(out)
    expected = sorted((a for a in stored if a.host == 'cmp-1'),
                      key=lambda a: a.raised_at, reverse=True)[:2]
    assert [a['uuid'] for a in listed] == [a.uuid for a in expected]
    rc, out, _err = _run(config, capsys, 'anomaly', 'list', '--sort',
                         'score:asc')
    assert rc == 0
    rows = [line for line in out.splitlines() if line.startswith('| ')]
    assert len(rows) == 1 + len(stored)
    assert stored[0].uuid in rows[1] and 'Hunter2' not in out
    rc, _out, err = _run(config, capsys, 'anomaly', 'list', '--sort',
                         'colour')
    assert rc == 2 and 'cannot sort' in err


def test_anomaly_show_and_purge(config, capsys, stored):
    rc, out, _err = _run(config, capsys, 'anomaly', 'show', stored[3].uuid)
    assert rc == 0
    assert 'Evidence (3 lines):' in out
    for line in stored[3].evidence:
        assert line.message in out
    rc, out, _err = _run(config, capsys, 'anomaly', 'show', stored[3].uuid,
                         '--format', 'json')
    assert json.loads(out)['evidence'][2]['lineno'] == 102
    rc, _out, err = _run(config, capsys, 'anomaly', 'show', 'nope')
    assert rc == 1 and 'no anomaly nope' in err
    # The anomalies were raised in 2023: 30 days keeps none of them.
    rc, out, _err = _run(config, capsys, 'anomaly', 'purge',
                         '--older-than', '30')
    assert rc == 0 and out.splitlines()[-1].startswith('Purged 6 anomalies')
    rc, out, _err = _run(config, capsys, 'anomaly', 'list', '--format',
                         'json')
    assert json.loads(out) == []
