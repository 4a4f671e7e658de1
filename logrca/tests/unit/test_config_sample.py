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

"""The committed sample configuration and policy files are up to date."""

import pathlib
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parents[3]
BIN = pathlib.Path(sys.executable).parent


def _generate(tool, conf_file, tmp_path):
    out = tmp_path / 'out'
    subprocess.run([str(BIN / tool), '--config-file', str(conf_file),
                    '--output-file', str(out)], check=True, cwd=ROOT)
    return out.read_text()


def test_config_sample_is_current(tmp_path):
    generated = _generate('oslo-config-generator',
                          ROOT / 'etc/logrca/logrca-config-generator.conf',
                          tmp_path)
    committed = (ROOT / 'etc/logrca/logrca.conf.sample').read_text()
    assert '[agent]' in generated and '[detectors]' in generated
    assert generated == committed, (
        'etc/logrca/logrca.conf.sample is stale: run tox -e genconfig')
