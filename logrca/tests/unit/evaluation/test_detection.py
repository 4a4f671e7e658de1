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

"""Tests of the detection harness: replay, anonymity, figures, command."""

import dataclasses
import json
import os

import pytest

from logrca import conf as logrca_conf
from logrca.cmd import manage
from logrca.detectors import anomaly
from logrca.detectors import base
from logrca.evaluation import cache
from logrca.evaluation import dataset
from logrca.evaluation import detection
from logrca.evaluation import splits
from logrca.evaluation import streams
from logrca.tests.unit.evaluation import fixtures

# Strings that would tell detection code which dataset, campaign, test or
# round a run is.
FORBIDDEN = ('Test_', 'round_', 'Nova/', 'Cinder/', 'Neutron/', 'dessertlab',
             '.tar.xz', '.bzip2.out', 'trigger_log', 'foreground_wl',
             'fip_info')


def _conf():
    conf = logrca_conf.new_conf()
    conf([], project='logrca', default_config_files=[])
    return conf


@pytest.fixture
def folder(tmp_path):
    return fixtures.write_folder(tmp_path / 'data',
                                 fixtures.standard_tests())


@pytest.fixture
def harness(tmp_path):
    conf = _conf()
    return detection.Harness(conf, cache.RecordCache(tmp_path / 'cache'),
                             progress=False)


class Spy(base.Detector):
    """Keeps every string detection code is handed; raises on close."""

    name = 'spy'

    def __init__(self, conf, raise_on_close=False):
        super().__init__(conf)
        self.strings = []
        self.streams = set()
        self.raise_on_close = raise_on_close
        self.records = 0
        #: Records seen when each reset_stream() came.
        self.resets = []

    def _strings(self, value):
        if isinstance(value, str):
            self.strings.append(value)
        elif isinstance(value, (list, tuple, set)):
            for item in value:
                self._strings(item)

    def observe(self, record, sessions):
        self.records += 1
        self.streams.add(record.stream)
        for field in dataclasses.fields(record):
            self._strings(getattr(record, field.name))
        for session in sessions:
            self._strings(session.key)
            self._strings(sorted(session.streams))
        return []

    def reset_stream(self):
        self.resets.append(self.records)

    def on_session_closed(self, session):
        self._strings(session.key)
        if not self.raise_on_close:
            return []
        return [anomaly.Anomaly(detector=self.name, score=1.0,
                                reason='closed', session_key=session.key,
                                start_time=session.first_ts,
                                end_time=session.last_ts,
                                raised_at=session.last_ts)]


def test_detector_never_sees_a_dataset_path_or_name(folder, harness):
    data = dataset.Dataset(folder)
    spy = Spy(harness.conf)
    results = harness.score(data, data.test_keys(), spy, miner=None)
    assert spy.records == sum(r['records'] for r in results) > 0
    assert spy.streams == {'nova-compute', 'nova-api', 'cinder-api'}
    assert all(streams.STREAM_NAME_RE.match(s) for s in spy.streams)
    for text in spy.strings:
        assert folder not in text
        for bad in FORBIDDEN:
            assert bad not in text, (bad, text)
    # The harness alone knows which run is which.
    assert {str(key) for _path, key in harness.mapping.values()} >= {
        'Nova/Test_1/round_1', 'Nova/Test_5/round_2'}
    assert all(r['run_id'] in harness.mapping for r in results)
    # Each run is its own stream: what is pending from the run before is
    # forgotten before its first record.
    assert spy.resets == [sum(r['records'] for r in results[:i])
                          for i in range(len(results))]


def test_error_rule_figures(folder, harness):
    data = dataset.Dataset(folder)
    results = harness.score(data, data.test_keys(), None, miner=None)
    by_run = {(r['test'], r['round']): r for r in results}
    assert len(results) == 9
    out = {(o.group, r['round']): o for o, r in zip(
        detection.outcomes(results, detection.ERROR_RULE), results)}
    first = out[('Nova/Test_1', 1)]
    assert first.flagged and first.delay == pytest.approx(4.0)
    early = out[('Nova/Test_2', 1)]
    assert not early.flagged and early.pre_activation == 1
    assert out[('Nova/Test_2', 2)].flagged          # false alarm
    assert by_run[('Nova/Test_3', 1)]['silent']
    assert not out[('Nova/Test_3', 1)].flagged
    assert out[('Nova/Test_5', 1)].label == 'latent'
    # Its epoch trigger stamp (1529997612.0) stands for 5 ms earlier.
    assert out[('Nova/Test_5', 1)].delay == pytest.approx(8.005)
    assert by_run[('Nova/Test_6', 1)]['activation'] is None
    assert out[('Nova/Test_6', 1)].flagged
    got = detection.metrics.figures(list(out.values()))
    assert got['recall'] == 0.5 and got['false_alarm_rate'] == 0.25
    assert got['precision'] == pytest.approx(2 / 3)
    assert got['silent_recall'] == 0.0 and got['pre_activation_alarms'] == 1


def test_anomalies_at_end_of_stream_are_raised_after_the_window(
        folder, harness):
    data = dataset.Dataset(folder)
    spy = Spy(harness.conf, raise_on_close=True)
    results = harness.score(data, [dataset.TestKey('Nova', 1)], spy, None)
    window = harness.conf.agent.session_window
    for res in results:
        # Every session of these 30-second runs closes at the end.
        assert res['at_end'] > 0
        assert set(res['raised']['spy']) == {res['last_ts'] + window}


def _trainables(monkeypatch):
    """Make the harness load :class:`Trainable` detectors; returns the list
    of those it made."""
    made = []

    def load(conf, name):
        made.append(Trainable(conf))
        return made[-1]

    monkeypatch.setattr(detection.pipeline_mod, 'load_detector', load)
    return made


class Trainable(Spy):
    """A fake learned detector recording what it was trained on."""

    trainable = True

    def fit(self, sessions, progress=None, **kwargs):
        self.fit_options = kwargs
        sessions = list(sessions)
        self.sources = {s.source for s in sessions}
        self.fitted = [(t, k) for s in sessions
                       for t, k in zip(s.times, s.keys)]
        self.thresholds = {'score': float('inf')}

    def observe(self, record, sessions):
        # The score is the number of ERROR records seen in the run.
        self.max_seen['score'] += record.is_error
        return super().observe(record, sessions)

    def reset_max(self):
        self.max_seen = {'score': 0}

    def save(self, path):
        os.makedirs(path)
        with open(os.path.join(path, 'metadata.json'), 'w') as f:
            json.dump({'fitted': self.fitted}, f)

    def load(self, path):
        with open(os.path.join(path, 'metadata.json')) as f:
            self.fitted = [tuple(x) for x in json.load(f)['fitted']]
        self.loaded = path

    def calibrate(self, run_maxima, target_far, failure_maxima=None):
        self.calibrated = (run_maxima, target_far)
        self.failures = failure_maxima
        self.thresholds = {'score': max(m['score'] for m in run_maxima)}
        return self.thresholds


def test_training_sees_normal_runs_of_training_tests_only(
        folder, harness, monkeypatch):
    data = dataset.Dataset(folder)
    _trainables(monkeypatch)
    split = splits.Split('t', {dataset.TestKey('Nova', 1)},
                         {dataset.TestKey('Nova', 2)},
                         {dataset.TestKey('Nova', 3)}).check()
    got = detection.train_detector(harness.conf, harness, 'x', data, split,
                                   None)
    # Round 2 of test 1 only (a request, window and instance session may
    # hold the same record: count distinct lines).
    lines = set(got.fitted)
    assert len(lines) == 5
    assert not any(k.startswith(('ERROR', 'CRITICAL')) for _t, k in lines)
    # One replayed run: one source of sequences.
    assert got.sources == {0}
    # Validation is test 2's normal round 2, which has one ERROR line.
    assert got.calibrated == ([{'score': 1}], 0.02)
    # Normal calibration (the default here) reads no failure run.
    assert got.failures is None


def test_labelled_calibration_reads_training_failures_after_activation(
        folder, harness, monkeypatch):
    data = dataset.Dataset(folder)
    _trainables(monkeypatch)
    split = splits.Split('t', {dataset.TestKey('Nova', 1),
                               dataset.TestKey('Nova', 3)},
                         {dataset.TestKey('Nova', 2)},
                         {dataset.TestKey('Nova', 5)}).check()
    got = detection.train_detector(harness.conf, harness, 'x', data, split,
                                   None, calibration='labelled')
    # The failure runs of tests 1, 2 and 3 (training and validation; not
    # test 5, being scored), scores counted from the activation on: test
    # 2's only ERROR comes before it, test 3 is silent.
    assert got.failures == [{'score': 1}, {'score': 0}, {'score': 0}]
    # The normal runs still set the false-alarm side.
    assert got.calibrated == ([{'score': 1}], 0.02)
    with pytest.raises(ValueError):
        detection.labelled_tests(split, 'everything')


def test_cv_keeps_fold_models_and_reuses_them(folder, tmp_path,
                                               monkeypatch):
    made = _trainables(monkeypatch)
    models = tmp_path / 'models'

    def run():
        made.clear()
        doc = detection.evaluate(_conf(), 'x', None, cv_path=folder,
                                 cache_dir=tmp_path / 'c', progress=False,
                                 resamples=0, models_dir=str(models))
        return doc, list(made)

    first, trained = run()
    assert trained[0].fit_options == {}
    assert sorted(os.listdir(models)) == ['fold-1', 'fold-2', 'fold-3']
    assert not any(hasattr(d, 'loaded') for d in trained)
    assert not any('reused_from' in m for m in first['models'].values())
    again, reused = run()
    # Loaded, not trained again, and calibrated again on validation runs.
    assert [d.loaded for d in reused] == [
        str(models / f) for f in ('fold-1', 'fold-2', 'fold-3')]
    assert [d.fitted for d in reused] == [d.fitted for d in trained]
    assert [hasattr(d, 'calibrated') for d in reused] == [
        hasattr(d, 'calibrated') for d in trained]
    assert any(hasattr(d, 'calibrated') for d in reused)
    assert again['models']['fold-2']['reused_from'] == str(models / 'fold-2')
    assert again['f1'] == first['f1'] and again['runs'] == first['runs']
    # A time budget reaches the driver's fit().
    detection.evaluate(_conf(), 'x', None, cv_path=folder, folds=[1],
                       cache_dir=tmp_path / 'c', progress=False,
                       resamples=0, time_budget=60.0)
    assert made[-1].fit_options == {'time_budget': 60.0}


def test_untrained_learned_driver_is_refused(folder, tmp_path, monkeypatch):
    monkeypatch.setattr(detection.pipeline_mod, 'load_detector',
                        lambda conf, name: Trainable(conf))
    with pytest.raises(base.DetectorError, match='must be trained'):
        detection.evaluate(_conf(), 'x', folder, cache_dir=tmp_path / 'c',
                           progress=False, resamples=0)


def test_command_writes_the_protocol_document(folder, tmp_path):
    out = tmp_path / 'out.json'
    argv = ['evaluate', 'detection', '--driver', 'error_rule', '--cv',
            folder, '--output', str(out), '--cache-dir',
            str(tmp_path / 'c'), '--bootstrap', '50', '--no-progress']
    assert manage.main(argv) == 0
    doc = json.loads(out.read_text())
    assert doc['protocol'] == 'logrca-eval-1'
    for key in ('precision', 'recall', 'f1', 'false_alarm_rate',
                'silent_recall', 'latent_flag_rate', 'pre_activation_alarms',
                'detection_delay_s', 'runs', 'per_campaign', 'baselines',
                'per_run', 'splits', 'machine', 'settings', 'data'):
        assert key in doc, key
    assert doc['recall'] == 0.5
    assert doc['baselines']['error_rule']['recall'] == 0.5
    # Ungated, test 2's pre-activation ERROR counts too.
    assert doc['baselines']['error_rule_ungated']['recall'] == 0.75
    assert doc['per_campaign']['Nova']['runs']['positive'] == 4
    assert doc['machine']['cpu_count'] >= 1
    assert [s['test'] for s in doc['splits']] == [
        ['Nova/Test_1', 'Nova/Test_5'], ['Nova/Test_2', 'Nova/Test_6'],
        ['Nova/Test_3']]
    assert len(doc['per_run']) == 9
    entry = next(v for v in doc['per_run'].values()
                 if v['test'] == 'Nova/Test_1' and v['round'] == 1)
    assert entry['error_rule']['detected'] and entry['label'] == 'positive'
    assert entry['error_rule']['delay'] == pytest.approx(4.0)


def test_folds_run_apart_and_merge_into_the_whole_cv(folder, tmp_path):
    base = ['evaluate', 'detection', '--driver', 'baseline', '--cache-dir',
            str(tmp_path / 'c'), '--bootstrap', '20', '--no-progress']
    whole = tmp_path / 'whole.json'
    assert manage.main(base + ['--cv', folder, '--output', str(whole)]) == 0
    parts = []
    for folds in (['1'], ['2', '3']):
        part = tmp_path / ('part%s.json' % ''.join(folds))
        argv = base + ['--cv', folder, '--output', str(part)]
        for fold in folds:
            argv += ['--fold', fold]
        assert manage.main(argv) == 0
        parts.append(str(part))
    one = json.loads(open(parts[0]).read())
    assert [s['name'] for s in one['splits']] == ['fold-1']
    merged = tmp_path / 'merged.json'
    assert manage.main(base + ['--merge', *parts, '--output',
                               str(merged)]) == 0
    got = json.loads(merged.read_text())
    want = json.loads(whole.read_text())
    for key in ('precision', 'recall', 'f1', 'false_alarm_rate', 'runs',
                'pre_activation_alarms', 'detection_delay_s', 'ci95'):
        assert got[key] == want[key], key
    assert got['baselines']['error_rule']['f1'] == \
        want['baselines']['error_rule']['f1']
    assert sorted(got['per_fold']) == ['fold-1', 'fold-2', 'fold-3']
    # The same fold twice is refused.
    assert manage.main(base + ['--merge', parts[0], parts[0], '--output',
                               str(merged)]) == 1


def test_command_rejects_bad_arguments(folder, tmp_path, capsys):
    out = str(tmp_path / 'o.json')
    assert manage.main(['evaluate', 'detection', '--driver', 'error_rule',
                        '--output', out]) == 2
    assert manage.main(['evaluate', 'detection', '--driver', 'error_rule',
                        '--test', str(tmp_path), '--output', out,
                        '--no-progress']) == 1
    assert 'none of the tables' in capsys.readouterr().err
    # Scoring the training folder itself: splits overlap.
    assert manage.main(['evaluate', 'detection', '--driver', 'baseline',
                        '--train', folder, '--test', folder, '--output',
                        out, '--cache-dir', str(tmp_path / 'c'),
                        '--no-progress']) == 1
    assert 'both' in capsys.readouterr().err


def test_training_sessions_come_from_normal_runs_only(folder, tmp_path):
    assert dataset.is_dataset_folder(folder)
    assert not dataset.is_dataset_folder(str(tmp_path))
    got = list(detection.training_sessions(
        _conf(), folder, ['Nova/Test_1', 'Nova/Test_6'],
        cache_dir=tmp_path / 'c', progress=False))
    lines = {(t, k) for s in got for t, k in zip(s.times, s.keys)}
    # Test 1 round 2 only: test 6's round 2 failed, round 1 is faulty.
    assert len(lines) == 5
    assert {s.source for s in got} == {0}
    assert {s.kind for s in got} >= {'request', 'window'}


def test_anomalies_of_ensemble_members_count_for_the_system():
    got = detection.ReplayResult(
        records=3, has_error=True, first_ts=0.0, last_ts=3.0,
        raised={'deeplog': [3.0], 'logbert': [1.0], 'error_rule': [2.0]},
        reasons={'deeplog': 'a', 'logbert': 'b', 'error_rule': 'c'},
        at_end=0)
    detection._as_system(got, 'ensemble')
    assert got.raised == {'ensemble': [1.0, 3.0], 'error_rule': [2.0]}
    assert got.reasons['error_rule'] == 'c' and 'ensemble' in got.reasons
