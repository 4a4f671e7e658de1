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

"""Periods, expectations across sessions and cross-fitted calibration."""

import math

import pytest

from logrca.agent import sessions
from logrca.detectors import base
from logrca.detectors import deeplog
from logrca.detectors import expectation
from logrca.detectors import learned
from logrca.detectors import periods
from logrca.parsing import records

BOOT = 'INFO nova.compute.manager Took <*> seconds to build instance.'
META = 'INFO nova.metadata.wsgi.server GET /openstack/latest/meta_data.json'
NOISE = 'INFO nova.compute.resource_tracker Final resource view'


def seq(start, keys, source=None, step=5.0):
    times = [start + i * step for i in range(len(keys))]
    return learned.Sequence('request', list(keys), times, [None] * len(keys),
                            [k.split(' ', 1)[0] for k in keys], source)


def test_periods_split_on_silence_and_never_mix_sources():
    # Two sources whose clocks overlap: two periods, not one.
    got = periods.split([seq(0.0, ['a', 'b'], source=1),
                         seq(2.0, ['c'], source=2),
                         seq(8.0, ['d'], source=1),
                         seq(500.0, ['e'], source=1)], gap=60.0)
    assert [[s.keys for s in p] for p in got] == [
        [['a', 'b'], ['d']], [['e']], [['c']]]
    # Without sources, overlapping clocks do share a period.
    assert len(periods.split([seq(0.0, ['a']), seq(2.0, ['c'])], 60.0)) == 1
    # A length cap starts a new period even without silence.
    chain = [seq(t, ['x']) for t in range(0, 2000, 50)]
    assert len(periods.split(chain, 60.0, length=900.0)) == 3


def _training(n=30, lacking=()):
    """``n`` runs (sources): boot, then metadata 5-10 s later, noise."""
    out = []
    for i in range(n):
        keys = [BOOT, NOISE] + ([] if i in lacking else [META])
        out.append(seq(10000.0 * i, keys, source=i, step=4.0 + i % 3))
    return out


def test_expectation_learns_follow_rules_and_raises_a_missing_step():
    model = expectation.ExpectationModel()
    model.fit(_training())
    assert model.periods == 30
    boot = model.keys.index(BOOT)
    meta = model.keys.index(META)
    assert meta in [b for b, _t in model.rules[boot]]
    timeout = dict(model.rules[boot])[meta]
    assert timeout == 30.0          # 2 x 12 s is under the 30 s floor
    # Live: a boot whose metadata request comes in time raises nothing.
    assert model.observe(BOOT, 'INFO', 100.0) == (0, [])
    assert model.observe(META, 'INFO', 108.0) == (0, [])
    assert model.observe(NOISE, 'INFO', 200.0)[0] == 0
    # A new period (after silence): the boot is never followed; the
    # deadline passes in log time with the next record.
    model.observe(BOOT, 'INFO', 1000.0, record='boot record')
    assert model.observe(NOISE, 'INFO', 1020.0)[0] == 0
    missing, causes = model.observe(NOISE, 'INFO', 1031.0)
    assert missing >= 1 and causes[0] == 'boot record'
    assert META in model.missing_keys()
    # A period that ends before the deadline lapses silently.
    model.observe(BOOT, 'INFO', 5000.0)
    assert model.observe(NOISE, 'INFO', 9000.0)[0] == 0


def test_expectation_cross_fitted_scores_and_round_trip():
    model = expectation.ExpectationModel()
    model.fit(_training(40, lacking={7}))
    # The one period without the metadata step misses it under the rules
    # of the other periods; the others miss nothing.
    assert model.loo_scores[7] >= 1
    assert sum(1 for s in model.loo_scores if s) == 1
    again = expectation.ExpectationModel.from_json(model.to_json())
    assert again.rules == model.rules and again.keys == model.keys
    assert again.loo_scores == model.loo_scores
    bad = model.to_json()
    bad['rules'] = {'0': [[999, 30.0]]}
    with pytest.raises(base.DetectorError):
        expectation.ExpectationModel.from_json(bad)


def test_expectation_needs_enough_periods():
    model = expectation.ExpectationModel()
    model.fit(_training(5))
    assert model.empty and model.observe(BOOT, 'INFO', 1.0) == (0, [])


def test_rarity_cross_fitted_scores_leave_the_period_out():
    model = learned.KeyRarity()
    seqs = [seq(10000.0 * i, ['INFO a step'], source=i) for i in range(9)]
    seqs.append(seq(1e6, ['INFO a step', 'WARNING odd thing'], source=99))
    model.fit(seqs)
    assert model.periods == 10
    # Without its own period, the warning was never seen.
    assert model.loo_scores[-1] == pytest.approx(
        model.score('WARNING never seen', 'WARNING'))
    assert max(model.loo_scores[:-1]) < model.loo_scores[-1]
    assert learned.KeyRarity.from_json(
        model.to_json()).loo_scores == pytest.approx(model.loo_scores,
                                                      abs=1e-3)


@pytest.fixture
def conf(detector_conf):
    return detector_conf


def test_cross_fitted_families_take_their_share_of_the_budget(conf):
    det = deeplog.DeepLogDetector(conf, load=False)
    # 200 training periods: 6 stand out on rarity, 3 on expectation.
    det.rarity.loo_scores = [1.0] * 194 + [9.0, 8.5, 8.0, 7.5, 7.0, 6.5]
    det.rarity.periods = 10000     # top rung (never-seen ERROR): 11.9
    det.expectation.loo_scores = [0.0] * 197 + [5.0, 3.0, 2.0]
    det.expectation.rules = {0: [(1, 30.0)]}
    maxima = [{'rarity': 1.0, 'expectation': 0.0, 'sequence': 1.0}
              for _ in range(40)]
    maxima.append({'rarity': 1.0, 'expectation': 0.0, 'sequence': 4.0})
    thresholds = det.calibrate(maxima, 0.02)
    # 1 % of 200 periods each: two periods above.
    assert 8.0 < thresholds['rarity'] < 8.5
    assert 2.0 < thresholds['expectation'] < 3.0
    # Validation families: nothing of the validation runs raises (the
    # budget, 0 of 41 runs, is spent).
    assert thresholds['sequence'] > 4.0
    assert math.isinf(thresholds['timing'])     # off by default
    assert det.training_summary['calibration']['crossfit'] == {
        'rarity': 200, 'expectation': 3 + 197}


def test_a_never_seen_error_key_always_raises_after_calibration(conf):
    det = deeplog.DeepLogDetector(conf, load=False)
    det.rarity.periods = 100
    never_seen_error = det.rarity.score_count('ERROR x', 0)
    # Five periods in a hundred hold an ERROR key of their own: the 1 %
    # quantile is the top rung itself.
    det.rarity.loo_scores = [1.0] * 95 + [never_seen_error] * 5
    thresholds = det.calibrate([{'rarity': 1.0}] * 10, 0.02)
    assert thresholds['rarity'] < never_seen_error
    assert det.rarity.score('ERROR y', 'ERROR') > thresholds['rarity']
    assert det.rarity.score('WARNING y', 'WARNING') < thresholds['rarity']


def _record(key, when):
    level, logger, message = key.split(' ', 2)
    return records.LogRecord(stream='nova', timestamp=when, level=level,
                             logger=logger, message=message)


def test_a_new_stream_does_not_inherit_the_last_ones_missing_steps(conf):
    # The end of one run (a boot whose metadata step never came) and the
    # start of the next, unrelated run 25 s later in log time: without
    # reset_stream() the next run's first records would find the last
    # run's deadline passed and raise a missing step of a run they do not
    # belong to.
    det = deeplog.DeepLogDetector(conf, load=False)
    det.expectation.fit(_training())
    det.thresholds['expectation'] = 0.5

    def missing_after(reset):
        det.reset_stream()
        det.expectation_hit(BOOT, _record(BOOT, 100.0))
        if reset:
            det.reset_stream()
        return det.expectation_hit(NOISE, _record(NOISE, 135.0))

    assert missing_after(reset=False) is not None     # the leak
    assert missing_after(reset=True) is None


def test_the_end_of_a_stream_passes_the_deadlines_due_within_its_gap(conf):
    det = deeplog.DeepLogDetector(conf, load=False)
    det.expectation.fit(_training())
    det.thresholds['expectation'] = 0.5
    sessionizer = sessions.Sessionizer(300)
    boot = _record(BOOT, 100.0)
    boot.request_id = 'req-1'
    sessionizer.add(boot)
    det.expectation_hit(BOOT, boot)
    # The metadata step is due 30 s after the boot; the stream's last
    # record comes 10 s after it, and then nothing: a live agent would
    # have seen records past the deadline before the period's 60 s of
    # silence ran out.
    det.expectation_hit(NOISE, _record(NOISE, 110.0))
    found = det.on_stream_end(sessionizer.sessions_of)
    assert len(found) == 1 and found[0].session_key == ('request', 'req-1')
    assert 'missing' in found[0].reason
    assert det.on_stream_end(sessionizer.sessions_of) == []   # once
    # A deadline beyond the period's end lapses with it.
    det.reset_stream()
    det.expectation.rules = {
        a: [(b, 500.0) for b, _t in rules]
        for a, rules in det.expectation.rules.items()}
    det.expectation_hit(BOOT, boot)
    assert det.on_stream_end(sessionizer.sessions_of) == []
