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

"""The detectors' model of normal gives RCA contexts their missing step."""

import random

import pytest

from logrca import conf as conf_mod
from logrca.detectors import baseline
from logrca.detectors import deeplog
from logrca.detectors import learned
from logrca.evaluation import rca as rca_eval
from logrca.tests.unit.detectors import test_learned as tl


@pytest.fixture
def conf(tmp_path):
    c = conf_mod.new_conf()
    c([], project='logrca')
    c.set_override('model_dir', str(tmp_path / 'models'), 'detectors')
    c.set_override('device', 'cpu', 'detectors')
    c.set_override('session_window', 30, 'agent')
    return c


def test_deeplog_gives_the_step_that_normally_follows(conf):
    det = tl._trained(conf, deeplog.DeepLogDetector, epochs=15)
    # A request that stopped after its third step (a silent failure).
    recs = tl._request(random.Random(7), 9000.0, 'req-silent', 'stop')[:3]
    expected = learned.key_text(tl._request(
        random.Random(7), 9000.0, 'req-whole')[3])
    assert det.next_template(recs) == expected
    assert det.next_template([]) is None
    # The evaluation harness hands such a detector to the context.
    assert rca_eval.normal_model_of([baseline.BaselineDetector(conf),
                                     det]) is det


def test_untrained_or_rule_detectors_give_no_missing_step(conf):
    assert deeplog.DeepLogDetector(conf, load=False).next_template(
        tl._request(random.Random(1), 0.0, 'req-a')) is None
    assert rca_eval.normal_model_of([baseline.BaselineDetector(conf)]) \
        is None
