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

"""Splits by test id (PROTOCOL.md section 1, Splits).

Training, validation and test are disjoint sets of tests. On one folder,
3-fold cross-validation puts the tests whose id mod 4 is k in fold k
(k = 1, 2, 3); tests with id mod 4 = 0 (none in the shared copy: they are
the held-out quarter) never enter a test fold. Validation (for thresholds)
is a fixed part of the training tests, never of the fold being scored.
"""

import dataclasses

FOLDS = (1, 2, 3)
# One training test in VALIDATION_EVERY goes to validation.
VALIDATION_EVERY = 5


class SplitError(Exception):
    """Splits overlap or are empty."""


@dataclasses.dataclass
class Split:
    """Train, validation and test tests (sets of TestKey)."""

    name: str
    train: set
    validation: set
    test: set

    def check(self):
        """Raise :class:`SplitError` unless the three sets are disjoint."""
        for a, b in (('train', 'validation'), ('train', 'test'),
                     ('validation', 'test')):
            common = getattr(self, a) & getattr(self, b)
            if common:
                raise SplitError('%s: %d test(s) in both %s and %s, e.g. %s'
                                 % (self.name, len(common), a, b,
                                    sorted(common)[0]))
        if not self.test:
            raise SplitError('%s: no test to score' % self.name)
        return self

    def to_json(self):
        return {'name': self.name,
                'train': sorted(str(k) for k in self.train),
                'validation': sorted(str(k) for k in self.validation),
                'test': sorted(str(k) for k in self.test)}


def fold_of(key):
    """The CV fold of a test (1-3), or 0 for a held-out id (mod 4 = 0)."""
    return key.test_id % 4


def split_validation(tests, every=VALIDATION_EVERY):
    """Split training tests into (fit, validation), by id, per campaign.

    Validation takes the tests whose ``(id // 4) % every == 0``: a fixed,
    label-blind choice spread over every campaign and fold.
    """
    validation = {k for k in tests if (k.test_id // 4) % every == 0}
    return set(tests) - validation, validation


def cross_validation(tests, validation=True):
    """The three CV splits of a set of tests."""
    splits = []
    for fold in FOLDS:
        test = {k for k in tests if fold_of(k) == fold}
        train = set(tests) - test
        val = set()
        if validation:
            train, val = split_validation(train)
        splits.append(Split('fold-%d' % fold, train, val, test).check())
    return splits


def train_test(train_tests, test_tests, validation=True):
    """One split: train on all of one folder, score all of another."""
    train, val = (split_validation(train_tests) if validation
                  else (set(train_tests), set()))
    return Split('train-test', train, val, set(test_tests)).check()
