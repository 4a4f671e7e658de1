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

"""logrca-status upgrade check: database, configuration, artifacts."""

import json
import pathlib
import subprocess
import sys

import pytest
import sqlalchemy as sa
import torch
from oslo_upgradecheck import upgradecheck

from logrca import conf as logrca_conf
from logrca.cmd import status
from logrca.db import migration
from logrca.detectors import artifact
from logrca.detectors import base as detector_base

BIN = pathlib.Path(sys.executable).parent
Code = upgradecheck.Code


class _Trainable(detector_base.Detector):
    """Stands in for a learned driver (a fake for this unit only)."""

    name = 'fakelearned'
    trainable = True

    def observe(self, record, sessions):
        return []


@pytest.fixture
def conf(tmp_path):
    conf = logrca_conf.new_conf()
    conf([], default_config_files=[])
    conf.set_override('state_path', str(tmp_path))
    conf.set_override('max_retries', 1, group='database')
    log = tmp_path / 'nova-compute.log'
    log.write_text('')
    conf.set_override('log_files', [str(tmp_path / '*.log')], group='agent')
    return conf


@pytest.fixture
def fake_learned(monkeypatch):
    real_names = status._entry_point_names
    real_load = status._load_driver_class

    def names(namespace):
        found = real_names(namespace)
        if namespace == detector_base.NAMESPACE:
            found = found | {'fakelearned'}
        return found

    def load(namespace, name):
        if name == 'fakelearned':
            return _Trainable
        return real_load(namespace, name)

    monkeypatch.setattr(status, '_entry_point_names', names)
    monkeypatch.setattr(status, '_load_driver_class', load)


def _check(conf, which):
    checks = status.Checks(conf)
    func = dict(checks._upgrade_checks)[which]
    return func(checks)


def test_database_missing_empty_old_and_current(conf, tmp_path):
    result = _check(conf, 'Database schema')
    assert result.code == Code.FAILURE and 'does not exist' in result.details
    assert not (tmp_path / 'logrca.sqlite').exists(), 'check creates nothing'
    (tmp_path / 'logrca.sqlite').touch()
    result = _check(conf, 'Database schema')
    assert result.code == Code.FAILURE and 'empty' in result.details
    migration.upgrade(conf)
    result = _check(conf, 'Database schema')
    assert result.code == Code.SUCCESS
    assert migration.head() in result.details
    engine = sa.create_engine('sqlite:///%s' % (tmp_path / 'logrca.sqlite'))
    with engine.begin() as connection:
        connection.execute(sa.text(
            "UPDATE alembic_version SET version_num = '0000old'"))
    engine.dispose()
    result = _check(conf, 'Database schema')
    assert result.code == Code.FAILURE
    assert '0000old' in result.details and 'db sync' in result.details


def test_database_unreachable_is_a_failure(conf):
    conf.set_override('connection', 'mysql+pymysql://u:p@127.0.0.1:9/x',
                      group='database')
    conf.set_override('retry_interval', 0, group='database')
    result = _check(conf, 'Database schema')
    assert result.code == Code.FAILURE
    assert 'Cannot read' in result.details


def test_configuration(conf):
    assert _check(conf, 'Configuration').code == Code.SUCCESS
    conf.set_override('detectors', ['baseline', 'nosuchdriver'],
                      group='agent')
    result = _check(conf, 'Configuration')
    assert result.code == Code.FAILURE
    assert 'nosuchdriver' in result.details and 'baseline' in result.details
    conf.clear_override('detectors', group='agent')
    conf.set_override('log_files', [], group='agent')
    result = _check(conf, 'Configuration')
    assert result.code == Code.WARNING and 'log_files' in result.details
    conf.set_override('journal_units', ['devstack@n-cpu'], group='agent')
    assert _check(conf, 'Configuration').code == Code.SUCCESS
    conf.set_override('journal_units', [], group='agent')
    conf.set_override('log_files', ['/nonexistent/*.log'], group='agent')
    result = _check(conf, 'Configuration')
    assert result.code == Code.WARNING and 'matches' in result.details
    conf.set_override('driver', 'nosuchparser', group='parsing')
    result = _check(conf, 'Configuration')
    assert result.code == Code.FAILURE and 'nosuchparser' in result.details


def test_bad_webhook_url_is_a_failure(conf):
    conf.set_override('webhook_urls', ['ftp://x/y'], group='notifications')
    assert _check(conf, 'Configuration').code == Code.FAILURE


def test_artifacts(conf, fake_learned, tmp_path):
    result = _check(conf, 'Detector artifacts')
    assert result.code == Code.SUCCESS and 'No configured' in result.details
    conf.set_override('detectors', ['baseline', 'fakelearned'],
                      group='agent')
    result = _check(conf, 'Detector artifacts')
    assert result.code == Code.FAILURE
    assert 'logrca-manage detector train fakelearned' in result.details
    path = tmp_path / 'models' / 'fakelearned'
    artifact.save(str(path), 'fakelearned', {'w': torch.zeros(2)}, {})
    result = _check(conf, 'Detector artifacts')
    assert result.code == Code.SUCCESS and 'fakelearned' in result.details
    meta = json.loads((path / artifact.METADATA).read_text())
    meta['format_version'] = artifact.FORMAT_VERSION + 1
    (path / artifact.METADATA).write_text(json.dumps(meta))
    result = _check(conf, 'Detector artifacts')
    assert result.code == Code.FAILURE and 'format version' in result.details
    meta['format_version'] = artifact.FORMAT_VERSION
    meta['driver'] = 'other'
    (path / artifact.METADATA).write_text(json.dumps(meta))
    result = _check(conf, 'Detector artifacts')
    assert result.code == Code.FAILURE and "'other'" in result.details
    meta['driver'] = 'fakelearned'
    (path / artifact.METADATA).write_text(json.dumps(meta))
    (path / artifact.WEIGHTS).unlink()
    result = _check(conf, 'Detector artifacts')
    assert result.code == Code.FAILURE and artifact.WEIGHTS in result.details


def test_command_json_and_exit_codes(tmp_path):
    conf_file = tmp_path / 'logrca.conf'
    conf_file.write_text('[DEFAULT]\nstate_path = %s\n'
                         '[agent]\njournal_units = devstack@n-cpu\n'
                         % tmp_path)

    def run():
        proc = subprocess.run(
            [str(BIN / 'logrca-status'), '--config-file', str(conf_file),
             'upgrade', 'check', '--json'],
            capture_output=True, text=True, timeout=120)
        line = [x for x in proc.stdout.splitlines() if x.startswith('{')]
        return proc.returncode, json.loads(line[-1])

    code, out = run()
    assert code == Code.FAILURE, out
    results = {c['check']: c['result'] for c in out['checks']}
    assert results['Database schema'] == Code.FAILURE
    assert results['Configuration'] == Code.SUCCESS
    subprocess.run([str(BIN / 'logrca-manage'), '--config-file',
                    str(conf_file), 'db', 'sync'], check=True,
                   capture_output=True, timeout=120)
    code, out = run()
    assert code == Code.SUCCESS, out
