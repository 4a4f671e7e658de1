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

"""Reader of fault-injection folders laid out like the dessertlab dataset.

A folder holds ``nova.tsv``, ``cinder.tsv``, ``neutron.tsv`` (one row per
test) and ``logs/<Campaign>-round_<n>.tar.xz`` (the per-test logs). This
module reads the tables (labels) and walks the archives sequentially; it is
harness code: nothing it returns is handed to detection code except through
:mod:`logrca.evaluation.streams`.
"""

import collections
import csv
import dataclasses
import datetime
import os
import re
import tarfile

from oslo_log import log

LOG = log.getLogger(__name__)

# Campaign (the subsystem faults were injected into) -> table file name.
TABLES = {'Nova': 'nova.tsv', 'Cinder': 'cinder.tsv', 'Neutron': 'neutron.tsv'}
CAMPAIGNS = tuple(TABLES)
ROUNDS = (1, 2)

REQUIRED_COLUMNS = ('TEST', 'ROUND_1', 'ROUND_2')
FAILURE = 'FAILURE'
NO_FAILURE = 'NO_FAILURE'
OUTCOMES = (FAILURE, NO_FAILURE)

# Run labels (PROTOCOL.md section 1, Detection).
POSITIVE = 'positive'    # round 1 of a test whose ROUND_1 is FAILURE
NEGATIVE = 'negative'    # round 2 of a test whose ROUND_2 is NO_FAILURE
LATENT = 'latent'        # round 1 of a test whose ROUND_1 is NO_FAILURE
EXCLUDED = 'excluded'    # round 2 of a test whose ROUND_2 is FAILURE

_TEST_RE = re.compile(r'^Test_(\d+)$')
# <Campaign>/Test_<id>/<rest>
_MEMBER_RE = re.compile(r'^(?:\./)?([A-Za-z]+)/Test_(\d+)/(.+)$')
_TRIGGER_RE = re.compile(
    r'^\s*(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(?:\.\d+)?|\d{9,11}(?:\.\d+)?)'
    r'\s.*Injection activated')
# The service logs carry the wall-clock time of the test machine, without
# a zone; every run is dated 2018-06-26 to 2018-09-30, when that clock was
# UTC-4 (EDT): an epoch trigger time of 1536815336.7 (05:08:56 UTC) is the
# line stamped 01:08:56.565 in neutron-server. Epoch trigger times are
# shifted by this offset to the logs' clock.
SOURCE_UTC_OFFSET = -4 * 3600
TRIGGER_NAME = 'trigger_log'
# The injector wrote epoch times with Python 2's ``str(time.time())``,
# which keeps 12 significant digits (``1536861340.66``, or ``1536815336.7``
# with its trailing zero dropped): the instant is known to 10 ms.
PY2_FLOAT_DIGITS = 12


class DatasetError(Exception):
    """A folder is not laid out like the fault-injection dataset."""


@dataclasses.dataclass(frozen=True, order=True)
class TestKey:
    """A test: its campaign and numeric id (``Nova``, 12 is Test_12)."""

    campaign: str
    test_id: int

    def __str__(self):
        return '%s/Test_%d' % (self.campaign, self.test_id)

    @classmethod
    def parse(cls, text):
        """Parse ``Nova/Test_12`` back into a key."""
        campaign, _, test = text.partition('/')
        match = _TEST_RE.match(test)
        if campaign not in TABLES or not match:
            raise ValueError('not a test key: %r' % text)
        return cls(campaign, int(match.group(1)))


@dataclasses.dataclass(frozen=True)
class TestCase:
    """One row of a campaign table: the labels of one test."""

    key: TestKey
    round_1: str
    round_2: str
    row: dict = dataclasses.field(compare=False, repr=False)


@dataclasses.dataclass(frozen=True, order=True)
class RunKey:
    """One run: a test and a round."""

    test: TestKey
    round: int

    def __str__(self):
        return '%s/round_%d' % (self.test, self.round)


def label_of(case, round_):
    """The detection label of round ``round_`` of ``case``."""
    if round_ == 1:
        return POSITIVE if case.round_1 == FAILURE else LATENT
    return NEGATIVE if case.round_2 == NO_FAILURE else EXCLUDED


def parse_trigger(text):
    """Fault activation time from a trigger_log, on the logs' clock, or None.

    A trigger_log has one line per activation, either ``2018-06-26
    03:28:34.195098 [manager.pyc]: Injection activated!`` (the machine's
    clock, like the service logs) or ``1536815336.7 [api.pyc]: Injection
    activated!`` (epoch seconds, shifted by :data:`SOURCE_UTC_OFFSET`, and
    rounded when written: see :func:`epoch_resolution`). The first
    activation counts. Zone-less times are read as UTC, as the record
    reader reads the logs, so the two compare.
    """
    found = []
    for line in text.splitlines():
        match = _TRIGGER_RE.match(line)
        if not match:
            continue
        stamp = match.group(1)
        if '-' in stamp:
            found.append(naive_to_epoch(stamp))
        else:
            found.append(float(stamp) - epoch_resolution(stamp) / 2.0
                         + SOURCE_UTC_OFFSET)
    return min(found) if found else None


def epoch_resolution(stamp):
    """Seconds between two epoch stamps written like ``stamp``.

    A stamp of at most :data:`PY2_FLOAT_DIGITS` significant digits was
    rounded to that many (1536861340.66 and 1536815336.7 both to 10 ms);
    a longer one is exact to its last decimal. An activation is taken as
    the earliest instant its stamp can stand for (half a step before it),
    so that the error logged 4 ms before a stamp rounded up is not counted
    as raised before the fault was activated.
    """
    whole, _, decimals = stamp.partition('.')
    if len(whole) + len(decimals) <= PY2_FLOAT_DIGITS:
        return 10.0 ** (len(whole) - PY2_FLOAT_DIGITS)
    return 10.0 ** -len(decimals)


def naive_to_epoch(stamp):
    """``YYYY-MM-DD HH:MM:SS[.f]`` without a zone, read as UTC."""
    fmt = '%Y-%m-%d %H:%M:%S.%f' if '.' in stamp else '%Y-%m-%d %H:%M:%S'
    when = datetime.datetime.strptime(stamp, fmt)
    return when.replace(tzinfo=datetime.UTC).timestamp()


def split_member(name):
    """``Nova/Test_3/logs/round_1/nova/x.out`` -> (TestKey, rest) or None."""
    match = _MEMBER_RE.match(name)
    if not match or match.group(1) not in TABLES:
        return None
    return TestKey(match.group(1), int(match.group(2))), match.group(3)


def is_dataset_folder(path):
    """Whether ``path`` looks like a fault-injection folder."""
    return os.path.isdir(os.path.join(path, 'logs')) and any(
        os.path.exists(os.path.join(path, t)) for t in TABLES.values())


class Dataset:
    """A folder laid out like ``dessertlab-openstack-fault-injection``.

    :param path: the folder.
    :param campaigns: campaigns to read (default: every table present).
    :param limit: keep only the ``limit`` lowest test ids of each campaign
        (quick trials; figures on a subset are not the protocol's).
    :raises DatasetError: when no table or no archive is found, or a table
        lacks the columns the labels need.
    """

    def __init__(self, path, campaigns=None, limit=None):
        self.path = os.path.abspath(path)
        if not os.path.isdir(self.path):
            raise DatasetError('no such folder: %s' % path)
        self.stats = collections.Counter()
        self.tests = {}
        wanted = campaigns or CAMPAIGNS
        for campaign in wanted:
            if campaign not in TABLES:
                raise DatasetError('unknown campaign %r (known: %s)'
                                   % (campaign, ', '.join(CAMPAIGNS)))
            table = os.path.join(self.path, TABLES[campaign])
            if os.path.exists(table):
                self._read_table(campaign, table)
            elif campaigns:
                raise DatasetError('campaign %s: no table %s'
                                   % (campaign, table))
        if not self.tests:
            raise DatasetError('%s holds none of the tables %s'
                               % (path, ', '.join(TABLES.values())))
        if limit is not None:
            keep = set()
            for campaign in CAMPAIGNS:
                keep.update(sorted(k for k in self.tests
                                   if k.campaign == campaign)[:limit])
            self.tests = {k: v for k, v in self.tests.items() if k in keep}
        for campaign in self.campaigns:
            for round_ in ROUNDS:
                if not os.path.exists(self.archive(campaign, round_)):
                    raise DatasetError('campaign %s has a table but no '
                                       'archive %s' % (
                                           campaign,
                                           self.archive(campaign, round_)))

    def _read_table(self, campaign, table):
        with open(table, newline='', encoding='utf-8') as handle:
            reader = csv.DictReader(handle, delimiter='\t')
            missing = [c for c in REQUIRED_COLUMNS
                       if c not in (reader.fieldnames or ())]
            if missing:
                raise DatasetError('%s lacks column(s) %s'
                                   % (table, ', '.join(missing)))
            for lineno, row in enumerate(reader, 2):
                match = _TEST_RE.match((row.get('TEST') or '').strip())
                r1 = (row.get('ROUND_1') or '').strip()
                r2 = (row.get('ROUND_2') or '').strip()
                if not match or r1 not in OUTCOMES or r2 not in OUTCOMES:
                    LOG.error('%s line %d: malformed row skipped (TEST=%r '
                              'ROUND_1=%r ROUND_2=%r)', table, lineno,
                              row.get('TEST'), r1, r2)
                    self.stats['bad_rows'] += 1
                    continue
                key = TestKey(campaign, int(match.group(1)))
                if key in self.tests:
                    LOG.error('%s line %d: duplicate %s skipped', table,
                              lineno, key)
                    self.stats['bad_rows'] += 1
                    continue
                self.tests[key] = TestCase(key, r1, r2, dict(row))

    @property
    def campaigns(self):
        """Campaigns with a table, in the canonical order."""
        present = {key.campaign for key in self.tests}
        return [c for c in CAMPAIGNS if c in present]

    def archive(self, campaign, round_):
        """Path of the archive of one campaign and round."""
        return os.path.join(self.path, 'logs',
                            '%s-round_%d.tar.xz' % (campaign, round_))

    def test_keys(self, campaign=None):
        """Sorted keys of the tests (of one campaign)."""
        return sorted(k for k in self.tests
                      if campaign is None or k.campaign == campaign)

    def runs(self, tests=None, labels=None):
        """Sorted ``(RunKey, label)`` pairs of the given tests.

        :param tests: test keys (default: all).
        :param labels: keep only runs with these labels (default: all but
            :data:`EXCLUDED`).
        """
        labels = (set(labels) if labels is not None
                  else {POSITIVE, NEGATIVE, LATENT})
        found = []
        for key in sorted(self.tests if tests is None else tests):
            case = self.tests.get(key)
            if case is None:
                raise DatasetError('%s is not in %s' % (key, self.path))
            for round_ in ROUNDS:
                label = label_of(case, round_)
                if label in labels:
                    found.append((RunKey(key, round_), label))
        return found

    def members(self, campaign, round_):
        """Walk one archive in order, never unpacking it to disk.

        Yields ``(TestKey, rest, tarinfo, fileobj)`` for each regular file of
        a test of the table; ``rest`` is the path below ``Test_<id>/``.
        The archive is read sequentially (``r|xz``), the only fast way
        through an xz tar, so each file object must be read before the next
        one is asked for.
        """
        path = self.archive(campaign, round_)
        with tarfile.open(path, 'r|xz') as archive:
            for info in archive:
                if not info.isfile():
                    continue
                split = split_member(info.name)
                if split is None or split[0].campaign != campaign:
                    LOG.warning('%s: unexpected member %s skipped', path,
                                info.name)
                    self.stats['unexpected_members'] += 1
                    continue
                if split[0] not in self.tests:
                    self.stats['members_without_row'] += 1
                    continue
                yield split[0], split[1], info, archive.extractfile(info)
