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

"""Expectations across sessions: steps that follow others in a period.

Some failures log nothing wrong: the step that should come next simply
never happens (a booted instance that never fetches its metadata, a volume
that is never attached). Such a step is usually in another session than
the one before it (another request, another service), so the per-session
models cannot see it missing. This model learns, from normal logs cut into
*periods* of activity (a new period after ``gap`` seconds of log-time
silence), rules "when key A occurs, key B follows within T seconds": A and
B present in almost every period, B after A in almost every period that
has A, T a margin over the longest delay seen. Live, a rule whose deadline
passes in log time without B is violated; the score of a period is the
number of distinct keys B missing so far; deadlines due within the
period's ``gap`` after the last record of a stream pass when it ends.
"""

import heapq
import math

import numpy

from logrca.detectors import base
from logrca.detectors import periods as periods_mod

# Levels whose keys may enter rules (DEBUG keys vary too much).
LEVELS = frozenset(('INFO', 'WARNING', 'ERROR', 'CRITICAL'))


def _periods(seqs, gap):
    """Periods of sequences (see :mod:`~logrca.detectors.periods`): one
    ``{key: first time}`` dict per period, INFO-or-worse keys only."""
    out = []
    for members in periods_mod.split(seqs, gap):
        firsts = {}
        for seq in members:
            for key, level, t in zip(seq.keys, seq.levels, seq.times):
                if t is None or level not in LEVELS:
                    continue
                old = firsts.get(key)
                if old is None or t < old:
                    firsts[key] = t
        out.append(firsts)
    return out


class ExpectationModel:
    """Rules "B follows A within T" learned from periods of normal logs.

    :param gap: seconds of silence that start a new period.
    :param presence: share of periods a key must occur in to enter rules.
    :param follow: share of the periods with A in which B must follow A.
    :param margin: the timeout is ``margin`` times the longest delay seen,
        at least ``min_timeout`` and at most ``max_timeout`` seconds.
    :param min_periods: fewer training periods than this learn no rule.
    """

    def __init__(self, gap=60.0, presence=0.98, follow=0.995, margin=2.0,
                 min_timeout=30.0, max_timeout=120.0, min_periods=20):
        self.gap = gap
        self.presence = presence
        self.follow = follow
        self.margin = margin
        self.min_timeout = min_timeout
        self.max_timeout = max_timeout
        self.min_periods = min_periods
        self.keys = []
        # key index -> list of (key index of B, timeout)
        self.rules = {}
        self.periods = 0
        #: Cross-fitted score of each training period: the number of
        #: distinct keys it misses under the rules learned without it.
        self.loo_scores = []
        self._index = {}
        self.reset()

    # -- training ---------------------------------------------------------

    def fit(self, seqs):
        """Learn rules from :class:`~logrca.detectors.learned.Sequence`s."""
        periods = _periods(seqs, self.gap)
        self.periods = len(periods)
        self.rules = {}
        self.keys = []
        self.loo_scores = []
        if self.periods < self.min_periods:
            self._index = {}
            return
        counts = {}
        for firsts in periods:
            for key in firsts:
                counts[key] = counts.get(key, 0) + 1
        # Candidates: keys present in enough periods once any one period
        # is left out (cross-fitting needs them); rules use the keys
        # present in enough of all periods.
        need = self.presence * (self.periods - 1)
        self.keys = sorted(k for k, c in counts.items() if c >= need)
        self._index = {k: i for i, k in enumerate(self.keys)}
        n_keys = len(self.keys)
        if n_keys < 2:
            return
        times = numpy.full((self.periods, n_keys), numpy.nan)
        for p, firsts in enumerate(periods):
            for key, t in firsts.items():
                i = self._index.get(key)
                if i is not None:
                    times[p, i] = t
        start = numpy.where(numpy.isnan(times), numpy.inf, times).min(
            axis=1, keepdims=True)
        times = times - numpy.where(numpy.isinf(start), 0.0, start)
        has = ~numpy.isnan(times)
        filled = numpy.where(has, times, numpy.inf).astype(numpy.float32)
        # ok[p, a, b]: B first occurs at or after A's first occurrence.
        ok = numpy.zeros((self.periods, n_keys, n_keys), dtype=bool)
        longest = numpy.zeros((n_keys, n_keys), dtype=numpy.float32)
        zeroed = numpy.where(has, filled, 0.0)
        for a in range(n_keys):
            after = (filled >= filled[:, a:a + 1]) & has & has[:, a:a + 1]
            ok[:, a, :] = after
            delays = numpy.where(after, zeroed - zeroed[:, a:a + 1],
                                 -numpy.inf)
            longest[a] = delays.max(axis=0)
        n_a = has.sum(axis=0).astype(float)          # periods with A
        n_ok = ok.sum(axis=0).astype(float)           # ... and B after A
        common = n_a >= self.presence * self.periods
        rule = (n_ok >= self.follow * n_a[:, None]) & (n_a[:, None] > 0)
        rule &= common[:, None] & common[None, :]
        numpy.fill_diagonal(rule, False)
        timeouts = numpy.maximum(longest * self.margin, self.min_timeout)
        # A step that may come minutes later (the clean-up at the end of a
        # workload) is not a step that "follows": no rule.
        rule &= timeouts <= self.max_timeout
        for a, b in zip(*numpy.nonzero(rule)):
            self.rules.setdefault(int(a), []).append(
                (int(b), float(timeouts[a, b])))
        # Cross-fitting: a period violates (A, B) when it has A and no B
        # after it; without that period the rule is kept when B followed A
        # in enough of the other periods that have A.
        kept_without = (n_ok >= self.follow * (n_a[:, None] - 1)) & \
            (n_a[:, None] > 1) & (timeouts <= self.max_timeout)
        numpy.fill_diagonal(kept_without, False)
        for p in range(self.periods):
            common = n_a - has[p] >= self.presence * (self.periods - 1)
            violated = (has[p][:, None] & ~ok[p] & kept_without
                        & common[:, None] & common[None, :])
            self.loo_scores.append(float(violated.any(axis=0).sum()))

    # -- scoring ----------------------------------------------------------

    def reset(self):
        """Forget the live state (a new stream of logs)."""
        self._last = None
        self._seen_first = {}
        self._last_seen = {}
        self._deadlines = []
        self._missing = {}
        self._seq = 0
        #: Whether this period already raised (set by the detector).
        self.raised = False

    @property
    def empty(self):
        return not self.rules

    def observe(self, key, level, now, record=None):
        """Account one record at log time ``now``.

        :returns: ``(missing, causes)``: the number of distinct keys
            missing in this period so far when a deadline just passed
            (else 0), and the records of the keys they should have
            followed.
        """
        if now is None or not self.rules:
            return 0, []
        if (self._last is None or now > self._last + self.gap
                or now < self._last - self.gap):
            # A new period (or another stream replayed): pending
            # expectations of the last one lapse.
            self._seen_first = {}
            self._last_seen = {}
            self._deadlines = []
            self._missing = {}
            self._last = None
            self.raised = False
        if self._last is None or now > self._last:
            self._last = now
        grew = self._pass(now)
        i = self._index.get(key) if level in LEVELS else None
        if i is not None:
            self._last_seen[i] = now
            if i not in self._seen_first:
                self._seen_first[i] = (now, record)
                for b, timeout in self.rules.get(i, ()):
                    self._seq += 1
                    heapq.heappush(self._deadlines,
                                   (now + timeout, self._seq, i, b, now))
        if not grew:
            return 0, []
        causes = [r for r in self._missing.values() if r is not None]
        return len(self._missing), causes

    def _pass(self, now):
        """Let log time reach ``now``: True when keys went missing."""
        grew = False
        while self._deadlines and self._deadlines[0][0] <= now:
            _due, _seq, a, b, since = heapq.heappop(self._deadlines)
            if b in self._missing or self._last_seen.get(b, -math.inf) >= \
                    since:
                continue
            self._missing[b] = self._seen_first[a][1]
            grew = True
        return grew

    def end(self):
        """The stream ends: its period ends ``gap`` seconds after its last
        record, and deadlines due by then pass (a live agent would have
        seen records in that time); later ones lapse with the period.

        :returns: ``(missing, causes)`` as :meth:`observe` does.
        """
        if self._last is None or not self.rules:
            return 0, []
        if not self._pass(self._last + self.gap):
            return 0, []
        causes = [r for r in self._missing.values() if r is not None]
        return len(self._missing), causes

    def missing_keys(self):
        """Key texts missing in the current period."""
        return [self.keys[b] for b in self._missing]

    # -- artifacts --------------------------------------------------------

    def to_json(self):
        return {'params': [self.gap, self.presence, self.follow,
                           self.margin, self.min_timeout, self.max_timeout,
                           self.min_periods],
                'periods': self.periods, 'keys': self.keys,
                'rules': {str(a): [[b, round(t, 3)] for b, t in rules]
                          for a, rules in self.rules.items()},
                'loo_scores': self.loo_scores}

    @classmethod
    def from_json(cls, data):
        model = cls(*data['params'])
        model.periods = int(data['periods'])
        model.keys = list(data['keys'])
        model._index = {k: i for i, k in enumerate(model.keys)}
        model.rules = {int(a): [(int(b), float(t)) for b, t in rules]
                       for a, rules in data['rules'].items()}
        model.loo_scores = [float(x) for x in data.get('loo_scores', [])]
        for b_list in model.rules.values():
            for b, _t in b_list:
                if not 0 <= b < len(model.keys):
                    raise base.DetectorError('malformed expectation rules')
        return model
