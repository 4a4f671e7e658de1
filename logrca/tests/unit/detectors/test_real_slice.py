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

"""Learned detectors on a small real slice of the fault-injection data.

The first Neutron tests of the shared archives are streamed (``r|xz``, no
copy): the normal round-2 runs of a few tests train DeepLog in seconds,
two others calibrate it, and it must then flag the failing round 1 of
Test_1 after its fault activation while staying quiet on a normal run it
never saw.
"""

import csv
import os
import tarfile

import pytest
import torch

from logrca.agent import pipeline
from logrca.detectors import autoencoder
from logrca.detectors import base
from logrca.detectors import deeplog
from logrca.evaluation import cache
from logrca.evaluation import dataset
from logrca.evaluation import streams
from logrca.parsing import base as parsing_base
from logrca.tests.unit.evaluation import fixtures

torch.set_num_threads(1)

NAME = 'dessertlab-openstack-fault-injection'
FAILING = 1
# Normal round-2 runs: training, calibration and one held-out run.
TRAIN = (2, 3, 5, 6, 7, 9)
CALIBRATE = (10, 11)
HELD_OUT = 13


def _read(source, round_, wanted):
    """Runs ({test id: AnonymousRun}) and activation times of some tests.

    The archive is streamed once; only the wanted tests are parsed.
    """
    path = os.path.join(source, 'logs', 'Neutron-round_%d.tar.xz' % round_)
    found, activations = {}, {}
    with tarfile.open(path, 'r|xz') as tar:
        for info in tar:
            parts = info.name.split('/', 2)
            if (len(parts) < 3 or not parts[1].startswith('Test_')
                    or not parts[2].startswith('logs/')):
                continue
            test = int(parts[1][5:])
            if test not in wanted or not info.isfile():
                continue
            if parts[2].endswith('/' + dataset.TRIGGER_NAME):
                activations[test] = dataset.parse_trigger(
                    tar.extractfile(info).read().decode())
                continue
            name = streams.stream_name(parts[2], round_)
            if name is None:
                continue
            records = cache.parse_lines(tar.extractfile(info), name,
                                        cache.oslo_log_reader, 65536,
                                        _Counter())
            found.setdefault(test, {})[name] = records
    runs = {t: streams.AnonymousRun(s) for t, s in found.items()}
    return runs, activations


class _Counter(dict):
    def __missing__(self, key):
        return 0


@pytest.fixture(scope='module')
def real_runs():
    source = fixtures.shared_data(NAME)
    with open(os.path.join(source, 'neutron.tsv'), newline='') as f:
        rows = {r['TEST']: r for r in csv.DictReader(f, delimiter='\t')}
    assert rows['Test_%d' % FAILING]['ROUND_1'] == 'FAILURE'
    normal_ids = TRAIN + CALIBRATE + (HELD_OUT,)
    for test in normal_ids:
        assert rows['Test_%d' % test]['ROUND_2'] == 'NO_FAILURE'
    normal, _ = _read(source, 2, set(normal_ids))
    failing, activations = _read(source, 1, {FAILING})
    return normal, failing[FAILING], activations[FAILING]


@pytest.fixture
def conf(detector_conf):
    return detector_conf


def _sessions(conf, miner, runs):
    closed = []

    class Collect(base.Detector):
        name = 'collect'

        def observe(self, record, sessions):
            return []

        def on_session_closed(self, session):
            closed.append(session)
            return []

    for run in runs:
        pipe = pipeline.Pipeline(conf, miner, [Collect(conf)])
        for record in run.records():
            pipe.process(record)
        pipe.finish()
    return closed


def _replay(conf, miner, det, run):
    det.reset_max()
    pipe = pipeline.Pipeline(conf, miner, [det])
    found = []
    for record in run.records():
        found.extend(pipe.process(record))
    found.extend(pipe.finish())
    return found


def _train(conf, cls, normal, **kwargs):
    miner = parsing_base.load_miner(conf)
    det = cls(conf, load=False)
    det.fit(_sessions(conf, miner, [normal[t] for t in TRAIN]), **kwargs)
    maxima = []
    for test in CALIBRATE:
        _replay(conf, miner, det, normal[test])
        maxima.append(dict(det.max_seen))
    det.calibrate(maxima, 0.0)
    return det, miner


def test_deeplog_separates_a_real_failure_from_a_normal_run(conf,
                                                            real_runs):
    normal, failing, activation = real_runs
    det, miner = _train(conf, deeplog.DeepLogDetector, normal, epochs=1)
    assert det.rarity.periods >= len(TRAIN)
    quiet = _replay(conf, miner, det, normal[HELD_OUT])
    assert quiet == [], [a.reason for a in quiet]
    found = _replay(conf, miner, det, failing)
    after = [a for a in found if a.raised_at >= activation - 0.001]
    assert after, [a.reason for a in found]
    # Raised on the record that showed it, within seconds of activation.
    assert after[0].raised_at - activation < 10.0
    assert after[0].evidence


def test_saved_model_scores_real_runs_alike(conf, real_runs, tmp_path):
    normal, failing, _activation = real_runs
    det, miner = _train(conf, autoencoder.AutoencoderDetector, normal,
                        epochs=2)
    path = str(tmp_path / 'ae')
    det.save(path)
    other = autoencoder.AutoencoderDetector(conf, load=False)
    other.load(path)
    assert other.rarity.to_json() == det.rarity.to_json()
    a = _replay(conf, miner, det, failing)
    b = _replay(conf, miner, other, failing)
    assert [x.reason for x in a] == [x.reason for x in b]
    assert a, 'the failing run raised nothing'
