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

"""Tests of the dataset reader, anonymous streams and splits."""

import pytest

from logrca.evaluation import dataset
from logrca.evaluation import splits
from logrca.evaluation import streams
from logrca.parsing import records
from logrca.tests.unit.evaluation import fixtures


@pytest.fixture
def folder(tmp_path):
    return fixtures.write_folder(tmp_path / 'data',
                                 fixtures.standard_tests())


def test_labels_follow_the_protocol(folder):
    data = dataset.Dataset(folder)
    assert data.campaigns == ['Nova']
    got = {(str(k), lab) for k, lab in data.runs()}
    assert got == {
        ('Nova/Test_1/round_1', 'positive'),
        ('Nova/Test_1/round_2', 'negative'),
        ('Nova/Test_2/round_1', 'positive'),
        ('Nova/Test_2/round_2', 'negative'),
        ('Nova/Test_3/round_1', 'positive'),
        ('Nova/Test_3/round_2', 'negative'),
        ('Nova/Test_5/round_1', 'latent'),
        ('Nova/Test_5/round_2', 'negative'),
        # Test 6: round 2 failed too, so it is left out.
        ('Nova/Test_6/round_1', 'positive'),
    }
    only = data.runs([dataset.TestKey('Nova', 6)], [dataset.EXCLUDED])
    assert [str(k) for k, _ in only] == ['Nova/Test_6/round_2']


def test_malformed_rows_are_counted_and_skipped(tmp_path, folder):
    with open(folder + '/nova.tsv', 'a') as f:
        f.write('Test_x\t\t\t\t\t\tFAILURE\t\t\tNO_FAILURE\t\t\n')
        f.write('Test_9\t\t\t\t\t\tMAYBE\t\t\tNO_FAILURE\t\t\n')
    data = dataset.Dataset(folder)
    assert data.stats['bad_rows'] == 2
    assert len(data.tests) == 5


def test_missing_tables_or_archives_are_clear_errors(tmp_path, folder):
    with pytest.raises(dataset.DatasetError, match='none of the tables'):
        dataset.Dataset(str(tmp_path))
    with pytest.raises(dataset.DatasetError, match='no table'):
        dataset.Dataset(folder, ['Cinder'])
    (tmp_path / 'data' / 'logs' / 'Nova-round_2.tar.xz').unlink()
    with pytest.raises(dataset.DatasetError, match='no archive'):
        dataset.Dataset(folder)


def test_members_are_streamed_with_their_test(folder):
    data = dataset.Dataset(folder)
    seen = [(str(k), rest) for k, rest, _i, f in data.members('Nova', 1)
            if f.read() is not None]
    assert ('Nova/Test_1', 'logs/round_1/trigger_log') in seen
    assert ('Nova/Test_6', 'logs/round_1/nova/nova-compute.log.bzip2.out'
            ) in seen
    assert len(seen) == 5 * 4 + 4 + 5  # logs, fip_info, triggers, workload


@pytest.mark.parametrize('text, expected', [
    ('2018-06-26 03:28:34.195098 [manager.pyc]: Injection activated!\n',
     '2018-06-26 03:28:34.195098'),
    # Epoch times are on UTC; the logs' clock is UTC-4.
    # Epoch times were rounded to 10 ms (Python 2 str of a float): the
    # activation is the earliest instant the stamp stands for.
    ('1536815366.2 [a.pyc]: Injection activated!\n'
     '1536815336.7 [a.pyc]: Injection activated!\n',
     '2018-09-13 01:08:56.695'),
    ('1536861340.66 [a.pyc]: Injection activated!\n',
     '2018-09-13 13:55:40.655'),
])
def test_trigger_times_are_on_the_logs_clock(text, expected):
    assert dataset.parse_trigger(text) == pytest.approx(
        dataset.naive_to_epoch(expected))


@pytest.mark.parametrize('stamp, step', [
    ('1536861340.66', 0.01), ('1536815336.7', 0.01), ('1536815336.0', 0.01),
    ('1536861340.655123', 1e-06)])
def test_epoch_resolution(stamp, step):
    assert dataset.epoch_resolution(stamp) == pytest.approx(step)


def test_trigger_without_activation_is_none():
    assert dataset.parse_trigger('nothing happened\n') is None


@pytest.mark.parametrize('rest, name', [
    ('logs/round_1/nova/nova-compute.log.bzip2.out', 'nova-compute'),
    ('logs/round_1/cinder/api.log.bzip2.out', 'cinder-api'),
    ('logs/round_1/neutron/dhcp-agent.log.bzip2.out', 'neutron-dhcp-agent'),
    ('logs/round_1/neutron/server.log.bzip2.out', 'neutron-server'),
    ('logs/round_1/heat/heat-engine.log.bzip2.out', 'heat-engine'),
    ('logs/round_1/glance/api.log.bzip2.out', 'glance-api'),
    ('logs/round_1/cinder/cinder-manage.log.bzip2.out', 'cinder-manage'),
    # Labels, other rounds and other folders are never streams.
    ('logs/round_1/trigger_log', None),
    ('logs/round_1/foreground_wl/openstack_demo_workload-1.err.log'
     '.bzip2.out', None),
    ('logs/round_2/nova/nova-compute.log.bzip2.out', None),
    ('fip_info.data', None),
    ('logs/round_1/keystone/keystone.log.bzip2.out', None),
])
def test_stream_names_are_service_names_only(rest, name):
    assert streams.stream_name(rest, 1) == name


def test_anonymous_run_merges_by_time_and_refuses_paths():
    a = [records.LogRecord('nova-compute', t) for t in (1.0, 3.0, 5.0)]
    b = [records.LogRecord('cinder-api', t) for t in (2.0, 4.0)]
    run = streams.AnonymousRun({'nova-compute': a, 'cinder-api': b})
    assert [r.timestamp for r in run.records()] == [1, 2, 3, 4, 5]
    assert len(run.run_id) == 16 and run.run_id != streams.AnonymousRun(
        {}).run_id
    for bad in ('Nova/Test_1/nova-compute', 'round_1-nova', 'x.log'):
        with pytest.raises(ValueError):
            streams.AnonymousRun({bad: []})


def _keys(*ids):
    return {dataset.TestKey('Nova', i) for i in ids} | {
        dataset.TestKey('Cinder', i) for i in ids}


def test_cross_validation_folds_by_id_mod_4():
    tests = _keys(*range(1, 41))
    folds = splits.cross_validation(tests)
    assert [s.name for s in folds] == ['fold-1', 'fold-2', 'fold-3']
    scored = set()
    for k, split in enumerate(folds, 1):
        assert {t.test_id % 4 for t in split.test} == {k}
        # Held-out ids (mod 4 = 0) only ever train.
        assert all(t.test_id % 4 != 0 for t in split.test)
        assert split.train.isdisjoint(split.test)
        assert split.validation.isdisjoint(split.test | split.train)
        assert split.validation and split.train
        assert split.train | split.validation | split.test == tests
        assert not scored & split.test
        scored |= split.test
    assert scored == {t for t in tests if t.test_id % 4}


def test_train_test_split_refuses_overlap():
    split = splits.train_test(_keys(1, 2, 3, 20), _keys(4, 8))
    assert split.test == _keys(4, 8)
    assert dataset.TestKey('Nova', 20) in split.validation
    with pytest.raises(splits.SplitError, match='both'):
        splits.train_test(_keys(1, 2), _keys(2, 3))


def test_limit_keeps_the_lowest_ids(folder):
    data = dataset.Dataset(folder, limit=2)
    assert [str(k) for k in data.test_keys()] == ['Nova/Test_1',
                                                  'Nova/Test_2']
