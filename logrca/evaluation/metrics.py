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

"""Run-level detection figures of PROTOCOL.md section 1, with bootstrap CIs.

The input is one :class:`Outcome` per scored run (what one system did on
it); the figures are those of the protocol: precision, recall and F1 over
positive and negative runs, false-alarm rate on negative runs, recall on
silent failures, latent flag rate, pre-activation alarms and the detection
delay.
"""

import dataclasses
import math
import random

from logrca.evaluation import dataset as dataset_mod

#: Resolution of the service logs' clock (oslo.log writes milliseconds).
#: The trigger_log has microseconds, so a line logged in the very
#: millisecond of the activation reads up to 1 ms earlier than it; it still
#: counts as at the activation.
LOG_RESOLUTION = 0.001

#: Figures that get bootstrap confidence intervals.
CI_FIGURES = ('precision', 'recall', 'f1', 'false_alarm_rate',
              'silent_recall', 'latent_flag_rate')


@dataclasses.dataclass
class Outcome:
    """What one system did on one run.

    :ivar group: the cluster the run belongs to for the bootstrap (its
        test), so that both rounds of a test are drawn together.
    :ivar label: :data:`~logrca.evaluation.dataset.POSITIVE`, ``NEGATIVE``
        or ``LATENT``.
    :ivar silent: a positive run without any ERROR/CRITICAL line.
    :ivar activation: fault activation time, or None (no trigger_log).
    :ivar raised: log times at which anomalies were raised, sorted.
    """

    group: str
    campaign: str
    label: str
    silent: bool
    activation: float | None
    raised: list

    @property
    def flagged(self):
        """The run raised something that counts for it.

        For a run with a known activation time (positive or latent) only
        anomalies raised at or after activation count; otherwise any does.
        """
        return self.first_counted is not None

    @property
    def first_counted(self):
        if self.activation is None or self.label == dataset_mod.NEGATIVE:
            return self.raised[0] if self.raised else None
        for when in self.raised:
            if when > self.activation - LOG_RESOLUTION:
                return when
        return None

    @property
    def pre_activation(self):
        """Anomalies raised before the fault was activated."""
        if self.activation is None or self.label == dataset_mod.NEGATIVE:
            return 0
        return sum(1 for when in self.raised
                   if when <= self.activation - LOG_RESOLUTION)

    @property
    def delay(self):
        """Seconds from activation to the first counted anomaly, or None."""
        first = self.first_counted
        if first is None or self.activation is None:
            return None
        return max(0.0, first - self.activation)


def _ratio(num, den):
    return num / den if den else None


def percentile(values, q):
    """Linear-interpolation percentile (as numpy's default), or None."""
    if not values:
        return None
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q / 100.0
    low = math.floor(pos)
    high = math.ceil(pos)
    return ordered[low] + (ordered[high] - ordered[low]) * (pos - low)


def figures(outcomes):
    """The protocol's figures for a list of outcomes."""
    pos = [o for o in outcomes if o.label == dataset_mod.POSITIVE]
    neg = [o for o in outcomes if o.label == dataset_mod.NEGATIVE]
    lat = [o for o in outcomes if o.label == dataset_mod.LATENT]
    silent = [o for o in pos if o.silent]
    tp = sum(1 for o in pos if o.flagged)
    fp = sum(1 for o in neg if o.flagged)
    rates = _from_counts(_counts(outcomes))
    delays = [o.delay for o in pos if o.delay is not None]
    return {
        **rates,
        'pre_activation_alarms': sum(1 for o in pos if o.pre_activation),
        'pre_activation_anomalies': sum(o.pre_activation for o in pos),
        'detection_delay_s': {
            'median': percentile(delays, 50),
            'p90': percentile(delays, 90),
            'n': len(delays),
        },
        'runs': {
            'positive': len(pos),
            'negative': len(neg),
            'latent': len(lat),
            'silent': len(silent),
            'positive_without_trigger': sum(1 for o in pos
                                            if o.activation is None),
            'true_positive': tp,
            'false_positive': fp,
        },
    }


def _counts(outcomes):
    """[pos, tp, neg, fp, silent, silent_tp, latent, latent_flagged]."""
    counts = [0] * 8
    for o in outcomes:
        flagged = o.flagged
        if o.label == dataset_mod.POSITIVE:
            counts[0] += 1
            counts[1] += flagged
            if o.silent:
                counts[4] += 1
                counts[5] += flagged
        elif o.label == dataset_mod.NEGATIVE:
            counts[2] += 1
            counts[3] += flagged
        elif o.label == dataset_mod.LATENT:
            counts[6] += 1
            counts[7] += flagged
    return counts


def _from_counts(c):
    precision = _ratio(c[1], c[1] + c[3])
    recall = _ratio(c[1], c[0])
    f1 = None
    if precision is not None and recall is not None:
        f1 = (2 * precision * recall / (precision + recall)
              if precision + recall else 0.0)
    return {'precision': precision, 'recall': recall, 'f1': f1,
            'false_alarm_rate': _ratio(c[3], c[2]),
            'silent_recall': _ratio(c[5], c[4]),
            'latent_flag_rate': _ratio(c[7], c[6])}


def bootstrap(outcomes, resamples=1000, seed=0, level=0.95):
    """Percentile bootstrap intervals of :data:`CI_FIGURES`.

    Tests (``Outcome.group``) are drawn with replacement, each bringing all
    its runs, so the intervals respect that the rounds of one test are not
    independent. Returns figure -> ``[low, high]`` (None when undefined).
    """
    groups = {}
    for outcome in outcomes:
        groups.setdefault(outcome.group, []).append(outcome)
    per_group = [_counts(groups[key]) for key in sorted(groups)]
    if not per_group:
        return {name: None for name in CI_FIGURES}
    rng = random.Random(seed)
    samples = {name: [] for name in CI_FIGURES}
    n = len(per_group)
    for _ in range(resamples):
        total = [0] * 8
        for _ in range(n):
            for i, value in enumerate(per_group[rng.randrange(n)]):
                total[i] += value
        for name, value in _from_counts(total).items():
            if value is not None:
                samples[name].append(value)
    tail = (1.0 - level) / 2 * 100
    return {name: ([percentile(values, tail), percentile(values, 100 - tail)]
                   if values else None)
            for name, values in samples.items()}


def report(outcomes, resamples=1000, seed=0):
    """Pooled figures, per-campaign figures and CIs of both."""
    pooled = figures(outcomes)
    if resamples:
        pooled['ci95'] = bootstrap(outcomes, resamples, seed)
    per_campaign = {}
    for campaign in dataset_mod.CAMPAIGNS:
        subset = [o for o in outcomes if o.campaign == campaign]
        if not subset:
            continue
        per_campaign[campaign] = figures(subset)
        if resamples:
            per_campaign[campaign]['ci95'] = bootstrap(subset, resamples,
                                                       seed)
    pooled['per_campaign'] = per_campaign
    return pooled
