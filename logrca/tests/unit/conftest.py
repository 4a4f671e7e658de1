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

"""Fixtures shared by unit tests."""

import pytest

from logrca import conf as conf_mod


@pytest.fixture
def detector_conf(tmp_path):
    """A configuration for detector tests: CPU, models under tmp_path."""
    c = conf_mod.new_conf()
    c([], project='logrca')
    c.set_override('model_dir', str(tmp_path / 'models'), 'detectors')
    c.set_override('device', 'cpu', 'detectors')
    return c
