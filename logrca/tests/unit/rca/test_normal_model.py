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

from logrca.detectors import baseline
from logrca.detectors import deeplog
from logrca.detectors import learned
from logrca.evaluation import rca as rca_eval
from logrca.tests.unit.detectors import test_learned as tl


@pytest.fixture
def conf(detector_conf):
    detector_conf.set_override('session_window', 30, 'agent')
    return detector_conf


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


def test_conductor_loads_the_agents_trained_model_of_normal(conf):
    from logrca.rca import service
    conf.set_override('detectors', ['baseline', 'deeplog'], 'agent')
    # No trained artifact yet: no model of normal, RCA goes on without.
    assert service.load_normal_model(conf) is None
    det = tl._trained(conf, deeplog.DeepLogDetector, epochs=15)
    det.save(det.artifact_path())
    normal = service.load_normal_model(conf)
    assert normal is not None and normal.name == 'deeplog'
    # An anomaly of a request that stopped after its third step: the
    # explanation names the step that normally follows.
    recs = tl._request(random.Random(7), 9000.0, 'req-silent', 'stop')[:3]
    anomaly = _anomaly(recs)
    exp = service.explain(conf, anomaly, driver='grounded',
                          normal_model=normal)
    assert 'Creating image for' in exp.chain[-1]['step']
    assert 'was not seen' in exp.summary


def _anomaly(recs):
    from logrca.detectors import anomaly as anomaly_mod
    return anomaly_mod.Anomaly(
        detector='deeplog', score=3.0, reason='a step is missing',
        session_key=('request', recs[0].request_id),
        start_time=recs[0].timestamp, end_time=recs[-1].timestamp,
        raised_at=recs[-1].timestamp + 60.0, service='nova-compute',
        host=None, project_id=None, request_ids=[recs[0].request_id],
        instance_ids=[],
        evidence=[anomaly_mod.Evidence.from_record(r) for r in recs])
