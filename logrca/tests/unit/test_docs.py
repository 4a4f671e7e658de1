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

"""The documentation and the release notes build with warnings as errors.

The same commands as ``tox -e docs`` and ``tox -e releasenotes``. Outside
CI the tests skip when Sphinx is not installed (``doc/requirements.txt``);
under ``CI=true`` they fail.
"""

import importlib.util
import pathlib
import subprocess
import sys

import pytest

from logrca.tests import services

ROOT = pathlib.Path(__file__).resolve().parents[3]
BIN = pathlib.Path(sys.executable).parent


def _sphinx_build(source, out, *extra):
    missing = [m for m in ('sphinx', 'openstackdocstheme', 'reno',
                           'sphinxcontrib.openapi')
               if importlib.util.find_spec(m) is None]
    if missing:
        services.unavailable('documentation tools missing (%s): pip install '
                             '-r doc/requirements.txt' % ', '.join(missing))
    proc = subprocess.run(
        [str(BIN / 'sphinx-build'), '-W', '--keep-going', '-q', *extra,
         '-b', 'html', str(ROOT / source), str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-5000:]
    return out


@pytest.mark.slow
def test_docs_build(tmp_path):
    out = _sphinx_build('doc/source', tmp_path / 'html')
    # The generated references are there and not empty.
    config = (out / 'configuration' / 'config.html').read_text()
    assert 'retention_days' in config and 'webhook_urls' in config
    assert 'logrca:anomaly' in (out / 'configuration' /
                                'policy.html').read_text()
    assert 'rca anomaly list' in (out / 'cli' / 'openstack.html').read_text()
    assert 'anomaly purge' in (out / 'cli' /
                               'logrca-manage.html').read_text()
    assert '/v1/anomalies/{anomaly_id}' in (out / 'reference' /
                                            'api.html').read_text()
    notifications = (out / 'admin' / 'notifications.html').read_text()
    assert 'AnomalyPayload' in notifications
    assert 'logrca_object.version' in notifications


@pytest.mark.slow
def test_releasenotes_build(tmp_path):
    out = _sphinx_build('releasenotes/source', tmp_path / 'html', '-a', '-E')
    text = (out / 'unreleased.html').read_text()
    assert 'anomaly.create' in text and 'log-analysis' in text
