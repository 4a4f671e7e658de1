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

"""The harness on a small real slice of the shared fault-injection data."""

import csv
import io
import os
import re
import tarfile

import pytest

from logrca.evaluation import cache
from logrca.evaluation import dataset
from logrca.evaluation import detection
from logrca.evaluation import streams
from logrca.tests.unit.evaluation import fixtures
from logrca.tests.unit.evaluation import test_detection

NAME = 'dessertlab-openstack-fault-injection'
# First line of a record: oslo.log header with ERROR or CRITICAL.
_ERROR = re.compile(rb'^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+) \d+ '
                    rb'(?:ERROR|CRITICAL) ')


def _pick(source):
    """Two failing tests and one passing test of the Neutron table."""
    with open(os.path.join(source, 'neutron.tsv'), newline='') as f:
        rows = list(csv.DictReader(f, delimiter='\t'))
    failing = [r for r in rows if r['ROUND_1'] == 'FAILURE'
               and r['ROUND_2'] == 'NO_FAILURE'][:2]
    passing = [r for r in rows if r['ROUND_1'] == 'NO_FAILURE'][:1]
    return failing + passing


@pytest.fixture(scope='module')
def real_slice(tmp_path_factory):
    source = fixtures.shared_data(NAME)
    root = tmp_path_factory.mktemp('slice')
    rows = _pick(source)
    wanted = {'Neutron/%s/' % r['TEST'] for r in rows}
    with open(root / 'neutron.tsv', 'w', newline='') as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]),
                                delimiter='\t')
        writer.writeheader()
        writer.writerows(rows)
    (root / 'logs').mkdir()
    raw = {}
    for round_ in (1, 2):
        name = 'Neutron-round_%d.tar.xz' % round_
        with tarfile.open(os.path.join(source, 'logs', name), 'r|xz') as src, \
                tarfile.open(root / 'logs' / name, 'w:xz',
                             preset=0) as dst:
            for info in src:
                if info.name[:info.name.find('/', 8) + 1] in wanted:
                    data = src.extractfile(info).read()
                    raw[info.name] = data
                    info.size = len(data)
                    dst.addfile(info, io.BytesIO(data))
    return str(root), raw


def _expected(raw, run_key, activation):
    """Error-rule decision on a run, straight from the raw bytes."""
    prefix = '%s/logs/round_%d/' % (run_key.test.campaign + '/Test_%d'
                                    % run_key.test.test_id, run_key.round)
    times = []
    for name, data in raw.items():
        if not name.startswith(prefix):
            continue
        if streams.stream_name('logs/' + name.split('/logs/', 1)[1],
                               run_key.round) is None:
            continue
        for line in data.splitlines():
            match = _ERROR.match(line)
            if match:
                times.append(dataset.naive_to_epoch(match.group(1).decode()))
    if activation is None:
        return bool(times)
    return any(t > activation - 0.001 for t in times)


def test_real_runs_are_scored_and_stay_anonymous(real_slice, tmp_path):
    folder, raw = real_slice
    data = dataset.Dataset(folder)
    assert len(data.tests) == 3
    conf = test_detection._conf()
    harness = detection.Harness(conf, cache.RecordCache(tmp_path / 'c'),
                                progress=False)
    spy = test_detection.Spy(conf)
    results = harness.score(data, data.test_keys(), spy, miner=None)
    assert len(results) == 6
    assert spy.records == sum(r['records'] for r in results) > 1000
    assert spy.streams and all(streams.STREAM_NAME_RE.match(s)
                               for s in spy.streams)
    assert 'neutron-server' in spy.streams
    for text in spy.strings:
        assert folder not in text
        for bad in test_detection.FORBIDDEN:
            assert bad not in text, (bad, text[:200])
    outs = detection.outcomes(results, detection.ERROR_RULE)
    for res, out in zip(results, outs):
        _path, run_key = harness.mapping[res['run_id']]
        if run_key.round == 1:
            # Every shared round-1 run but 13 has a trigger_log.
            assert res['first_ts'] <= res['activation'] <= res['last_ts']
        assert out.flagged == _expected(raw, run_key, res['activation'])
    # The slice holds two failing tests: at least one is caught.
    assert any(o.flagged for o in outs if o.label == 'positive')
