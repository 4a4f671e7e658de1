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

"""Tests of the run-level detection figures."""

import pytest

from logrca.evaluation import metrics


def _o(label, raised, activation=100.0, silent=False, group=None,
       campaign='Nova'):
    return metrics.Outcome(group=group or str(id(raised)), campaign=campaign,
                           label=label, silent=silent,
                           activation=activation, raised=raised)


def test_activation_decides_what_counts():
    late = _o('positive', [90.0, 104.0])
    assert late.flagged and late.delay == 4.0 and late.pre_activation == 1
    early = _o('positive', [90.0])
    assert not early.flagged and early.delay is None
    assert early.pre_activation == 1
    # No trigger_log: any anomaly counts, no delay.
    unknown = _o('positive', [90.0], activation=None)
    assert unknown.flagged and unknown.delay is None
    # A negative run with any anomaly is a false alarm.
    assert _o('negative', [1.0], activation=None).flagged
    assert not _o('negative', [], activation=None).flagged


def test_figures_by_hand():
    runs = [
        _o('positive', [101.0]),                 # TP, delay 1
        _o('positive', [110.0], silent=True),    # TP silent, delay 10
        _o('positive', [50.0]),                  # FN, pre-activation
        _o('positive', [], silent=True),         # FN silent
        _o('negative', [5.0], activation=None),  # FP
        _o('negative', [], activation=None),
        _o('negative', [], activation=None),
        _o('negative', [], activation=None),
        _o('latent', [120.0]),
        _o('latent', [20.0]),
    ]
    got = metrics.figures(runs)
    assert got['precision'] == pytest.approx(2 / 3)
    assert got['recall'] == pytest.approx(0.5)
    assert got['f1'] == pytest.approx(2 * (2 / 3) * 0.5 / (2 / 3 + 0.5))
    assert got['false_alarm_rate'] == pytest.approx(0.25)
    assert got['silent_recall'] == pytest.approx(0.5)
    assert got['latent_flag_rate'] == pytest.approx(0.5)
    assert got['pre_activation_alarms'] == 1
    assert got['detection_delay_s']['median'] == pytest.approx(5.5)
    assert got['detection_delay_s']['p90'] == pytest.approx(9.1)
    assert got['runs']['positive'] == 4 and got['runs']['silent'] == 2
    assert got['runs']['negative'] == 4 and got['runs']['latent'] == 2


def test_undefined_figures_are_none():
    got = metrics.figures([_o('negative', [], activation=None)])
    assert got['recall'] is None and got['precision'] is None
    assert got['false_alarm_rate'] == 0.0
    assert got['detection_delay_s']['median'] is None


def test_bootstrap_is_deterministic_and_brackets_the_estimate():
    runs = []
    for i in range(60):
        runs.append(_o('positive', [101.0] if i % 5 else [], group=str(i)))
        runs.append(_o('negative', [3.0] if i % 10 == 0 else [],
                       activation=None, group=str(i)))
    point = metrics.figures(runs)
    ci = metrics.bootstrap(runs, resamples=300, seed=1)
    assert ci == metrics.bootstrap(runs, resamples=300, seed=1)
    for name in ('precision', 'recall', 'f1', 'false_alarm_rate'):
        low, high = ci[name]
        assert low <= point[name] <= high and low < high
    assert ci['silent_recall'] is None


def test_report_splits_per_campaign():
    runs = [_o('positive', [101.0], campaign='Nova'),
            _o('positive', [], campaign='Cinder'),
            _o('negative', [], activation=None, campaign='Cinder')]
    got = metrics.report(runs, resamples=20)
    assert got['recall'] == 0.5
    assert set(got['per_campaign']) == {'Nova', 'Cinder'}
    assert got['per_campaign']['Nova']['recall'] == 1.0
    assert got['per_campaign']['Cinder']['recall'] == 0.0
    assert 'ci95' in got and 'ci95' in got['per_campaign']['Nova']


def test_a_line_in_the_activation_millisecond_counts():
    # trigger_log has microseconds, oslo.log milliseconds.
    same_ms = _o('positive', [100.123], activation=100.123431)
    assert same_ms.flagged and same_ms.delay == 0.0
    assert same_ms.pre_activation == 0
    before = _o('positive', [100.122], activation=100.123431)
    assert not before.flagged and before.pre_activation == 1
