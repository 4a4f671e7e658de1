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

"""The committed Drain3 reference configuration matches logrca's masking."""

import pathlib

from drain3 import template_miner_config

from logrca import conf as logrca_conf
from logrca.parsing import masks

INI = pathlib.Path(__file__).resolve().parents[4] / 'tools' / (
    'drain3_reference.ini')


def test_drain3_reference_masks_like_logrca():
    config = template_miner_config.TemplateMinerConfig()
    config.load(str(INI))
    assert [(i.pattern, i.mask_with) for i in config.masking_instructions] \
        == [(pattern, '*') for _name, pattern in masks.MASKS]
    assert (config.mask_prefix, config.mask_suffix) == ('<', '>')
    # Drain settings are the [parsing] defaults.
    conf = logrca_conf.new_conf()
    conf([], project='logrca', default_config_files=[])
    assert config.drain_sim_th == conf.parsing.similarity_threshold
    assert config.drain_depth == conf.parsing.depth
