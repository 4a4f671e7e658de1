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

"""Detection evaluation (PROTOCOL.md section 1): streaming replay, figures.

Each run is handed to the agent's :class:`~logrca.agent.pipeline.Pipeline`
as anonymous streams (:mod:`logrca.evaluation.streams`), replayed record by
record in log-time order. An anomaly counts as raised at the log time the
pipeline had reached when it came out (the stream time of the record on
which it was raised); those that only come out of ``finish()`` are raised at
the last record's time plus the session window, when a live agent's timeout
would have fired. The mapping from random run ids to tests stays here.
"""

import dataclasses
import math
import os
import sys
import time

from oslo_log import log

from logrca.agent import pipeline as pipeline_mod
from logrca.detectors import anomaly as anomaly_mod
from logrca.detectors import artifact
from logrca.detectors import base as detector_base
from logrca.detectors import learned as learned_mod
from logrca.evaluation import cache as cache_mod
from logrca.evaluation import dataset as dataset_mod
from logrca.evaluation import metrics
from logrca.evaluation import splits as splits_mod
from logrca.evaluation import streams as streams_mod

LOG = log.getLogger(__name__)

PROTOCOL = 'logrca-eval-1'
#: Name of the protocol's baseline, computed beside every driver.
ERROR_RULE = 'error_rule'
#: How thresholds are picked: with the failure runs of the training
#: tests (``labelled``) or from normal runs alone (``normal``).
CALIBRATIONS = ('labelled', 'normal')


class ErrorRule(detector_base.Detector):
    """The protocol's baseline: "the run has an ERROR/CRITICAL line".

    It raises one anomaly, at the first ERROR or CRITICAL record it sees;
    the harness gives every run a fresh instance.
    """

    name = ERROR_RULE

    def __init__(self, conf):
        super().__init__(conf)
        self._raised = False

    def observe(self, record, sessions):
        if self._raised or not record.is_error:
            return []
        self._raised = True
        key = sessions[0].key if sessions else ('run',)
        return [anomaly_mod.Anomaly(
            detector=self.name, score=1.0,
            reason='%s record' % record.level, session_key=key,
            start_time=record.timestamp, end_time=record.timestamp,
            raised_at=record.timestamp, service=record.stream,
            evidence=[anomaly_mod.Evidence.from_record(record)])]


class _SessionCollector(detector_base.Detector):
    """Keeps the sessions the pipeline closes (training data)."""

    name = '_collector'

    def __init__(self, conf):
        super().__init__(conf)
        self.closed = []

    def observe(self, record, sessions):
        return []

    def on_session_closed(self, session):
        self.closed.append(session)
        return []

    def drain(self):
        closed, self.closed = self.closed, []
        return closed


@dataclasses.dataclass
class ReplayResult:
    """What came out of replaying one run.

    :ivar raised: detector name -> sorted raise times of its anomalies.
    :ivar reasons: detector name -> reason of its first anomaly.
    """

    records: int
    has_error: bool
    first_ts: float | None
    last_ts: float | None
    raised: dict
    reasons: dict
    at_end: int


def replay(conf, run, miner, detectors):
    """Replay one :class:`~logrca.evaluation.streams.AnonymousRun`.

    Records are processed one by one in merged log-time order through a
    fresh :class:`~logrca.agent.pipeline.Pipeline`: sessions start empty,
    and the detectors keep what they learned but forget what was pending
    from the last run (the pipeline calls ``reset_stream()``), so that a
    run is scored the same whatever was replayed before it. (Round 2 of a
    test starts within a minute of the end of its round 1, in log time:
    without the reset, a step the faulty run never logged raised "missing"
    in the normal run.)
    """
    pipe = pipeline_mod.Pipeline(conf, miner, detectors)
    raised = {}
    reasons = {}
    has_error = False
    first_ts = None
    count = 0

    def note(found, when):
        for item in found:
            raised.setdefault(item.detector, []).append(when)
            reasons.setdefault(item.detector, item.reason)

    for record in run.records():
        count += 1
        if record.is_error:
            has_error = True
        found = pipe.process(record)
        now = pipe.sessionizer.now
        if first_ts is None:
            first_ts = now
        if found:
            note(found, now if now is not None else record.timestamp)
    last_ts = pipe.sessionizer.now
    end = pipe.finish()
    if end:
        note(end, (last_ts + conf.agent.session_window
                   if last_ts is not None else None))
    for times in raised.values():
        times.sort(key=lambda t: float('inf') if t is None else t)
    return ReplayResult(records=count, has_error=has_error,
                        first_ts=first_ts, last_ts=last_ts, raised=raised,
                        reasons=reasons, at_end=len(end))


def _as_system(got, name):
    """File every anomaly not from the error rule under ``name``.

    A composite driver (an ensemble) may raise anomalies under the names of
    its members; they all are the system's decisions.
    """
    times = []
    reason = None
    for detector, raised in list(got.raised.items()):
        if detector == ERROR_RULE:
            continue
        times.extend(raised)
        del got.raised[detector]
        reason = reason or got.reasons.pop(detector, None)
    if times:
        times.sort(key=lambda t: float('inf') if t is None else t)
        got.raised[name] = times
        got.reasons[name] = reason


def _sequences(sessions, source):
    for session in sessions:
        if session.records:
            yield learned_mod.Sequence.from_session(session, source)


def load_miner(conf):
    """The configured template miner."""
    from logrca.parsing import base as parsing_base
    return parsing_base.load_miner(conf)


class Harness:
    """Reads folders, hands anonymous runs out and keeps the mapping.

    :param conf: the configuration (``[agent] session_window`` and
        ``max_line_length`` matter).
    :param cache: a :class:`~logrca.evaluation.cache.RecordCache`.
    """

    def __init__(self, conf, cache=None, progress=True, jobs=1):
        self.conf = conf
        self.cache = cache or cache_mod.RecordCache(
            max_line_length=conf.agent.max_line_length)
        self.progress = progress
        self.jobs = jobs
        #: run id -> (folder, RunKey); never handed to detection code.
        self.mapping = {}

    def prepare(self, data, tests):
        """Parse (once, cached) every archive the given tests need."""
        archives = sorted({(k.campaign, r) for k in tests
                           for r in dataset_mod.ROUNDS})
        self.cache.ensure(data, archives, progress=self.progress,
                          jobs=self.jobs)

    def anonymous_run(self, data, run_key):
        """The run as detection code may see it (random id, named streams).
        """
        run = streams_mod.AnonymousRun(self.cache.load(data, run_key))
        self.mapping[run.run_id] = (data.path, run_key)
        return run

    def normal_runs(self, data, tests):
        """Anonymous normal runs (round 2, NO_FAILURE) of ``tests``."""
        for run_key, _label in data.runs(tests, [dataset_mod.NEGATIVE]):
            yield self.anonymous_run(data, run_key)

    def iter_sessions(self, runs, miner):
        """Closed sessions of ``runs``, replayed through the pipeline.

        This is the training data of the learned detectors
        (``Detector.fit(sessions, progress)``), as compact
        :class:`~logrca.detectors.learned.Sequence` objects that name the
        replay they came from (a counter, ``source``), so that runs whose
        clocks overlap never share a period of activity. They come out run
        by run, so a consumer that keeps only features stays small.
        """
        for source, run in enumerate(runs):
            collector = _SessionCollector(self.conf)
            pipe = pipeline_mod.Pipeline(self.conf, miner, [collector])
            for record in run.records():
                pipe.process(record)
                if collector.closed:
                    yield from _sequences(collector.drain(), source)
            pipe.finish()
            yield from _sequences(collector.drain(), source)

    def _bar(self, total, desc):
        if not self.progress:
            return None
        import tqdm
        return tqdm.tqdm(total=total, desc=desc, unit=' runs',
                         file=sys.stderr, mininterval=1.0)

    def score(self, data, tests, detector, miner, desc='score'):
        """Replay every labelled run of ``tests``; return per-run results.

        :param detector: a loaded or trained detector, or None to run the
            error rule alone.
        :returns: list of dicts (one per run) with the harness's labels and
            what each system raised.
        """
        self.prepare(data, tests)
        runs = data.runs(tests)
        bar = self._bar(len(runs), desc)
        results = []
        for run_key, label in runs:
            run = self.anonymous_run(data, run_key)
            detectors = [ErrorRule(self.conf)]
            if detector is not None:
                detectors.insert(0, detector)
            got = replay(self.conf, run, miner, detectors)
            if detector is not None:
                _as_system(got, detector.name or 'system')
            activation = (self.cache.activation(data, run_key.test)
                          if run_key.round == 1 else None)
            results.append({
                'run_id': run.run_id, 'test': str(run_key.test),
                'campaign': run_key.test.campaign, 'round': run_key.round,
                'label': label, 'activation': activation,
                'silent': label == dataset_mod.POSITIVE and not got.has_error,
                'records': got.records, 'first_ts': got.first_ts,
                'last_ts': got.last_ts, 'raised': got.raised,
                'reasons': got.reasons, 'at_end': got.at_end})
            if bar is not None:
                bar.update(1)
        if bar is not None:
            bar.close()
        return results


def training_sessions(conf, path, tests=None, miner=None, cache_dir=None,
                      progress=True):
    """Closed sessions of the normal runs of a fault-injection folder.

    For ``Detector.fit(sessions, progress)`` (e.g. ``logrca-manage detector
    train --data PATH``): the round-2 ``NO_FAILURE`` runs of ``tests``
    (default: all tests of the folder), replayed as anonymous streams
    through the pipeline, run by run. Faulty and latent runs never train.

    :param tests: :class:`~logrca.evaluation.dataset.TestKey` objects or
        strings like ``Nova/Test_12``.
    """
    data = dataset_mod.Dataset(path)
    keys = [dataset_mod.TestKey.parse(t) if isinstance(t, str) else t
            for t in (tests if tests is not None else data.test_keys())]
    harness = Harness(conf, cache_mod.RecordCache(
        cache_dir, max_line_length=conf.agent.max_line_length),
        progress=progress)
    harness.prepare(data, keys)
    yield from harness.iter_sessions(harness.normal_runs(data, keys), miner)


def outcomes(results, system):
    """Per-run results to :class:`~logrca.evaluation.metrics.Outcome`."""
    found = []
    for res in results:
        times = [t for t in res['raised'].get(system, []) if t is not None]
        found.append(metrics.Outcome(
            group=res['test'], campaign=res['campaign'],
            label=res['label'], silent=res['silent'],
            activation=res['activation'], raised=times))
    return found


def per_run(results, systems):
    """The ``per_run`` section: anonymous run id -> labels and decisions."""
    table = {}
    for res, *outs in zip(results, *[outcomes(results, s)
                                     for s in systems]):
        entry = {k: res[k] for k in ('test', 'campaign', 'round', 'label',
                                     'activation', 'silent', 'records')}
        for system, out in zip(systems, outs):
            first = out.first_counted
            entry[system] = {
                'detected': out.flagged,
                'raised_at': first,
                'delay': out.delay,
                'pre_activation': out.pre_activation,
                'anomalies': len(res['raised'].get(system, [])),
                'raised': list(out.raised),
                'reason': res['reasons'].get(system),
            }
        table[res['run_id']] = entry
    return table


def machine():
    """What the figures were measured on."""
    import platform
    return {'cpu_count': os.cpu_count(),
            'usable_cpus': len(os.sched_getaffinity(0))
            if hasattr(os, 'sched_getaffinity') else None,
            'platform': platform.platform(),
            'python': platform.python_version()}


def build_detector(conf, driver, model=None):
    """Load a driver, and its artifact when ``model`` is given."""
    detector = pipeline_mod.load_detector(conf, driver)
    if model:
        detector.load(model)
    return detector


def calibrate_detector(conf, harness, detector, data, tests, miner,
                       target_far, labelled=None):
    """Pick thresholds on the normal runs of ``tests`` (validation).

    Each normal run is replayed with the detector's score maxima reset
    (``reset_max()``); the per-run maxima (``max_seen``) go to
    ``calibrate(run_maxima, target_far)``, which allows ``target_far`` of
    the runs above threshold. With ``labelled`` (training tests, never
    the tests being scored), the maxima of their labelled failure runs
    after the fault's activation go along (``failure_maxima``), so that
    the budget is spent where it detects failures. Returns the
    thresholds, or None when the driver is not calibrated this way.
    """
    if not (hasattr(detector, 'calibrate') and hasattr(detector, 'reset_max')
            and tests):
        return None
    maxima = []
    for run in harness.normal_runs(data, sorted(tests)):
        detector.reset_max()
        replay(conf, run, miner, [detector])
        maxima.append(dict(detector.max_seen))
    failures = None
    if labelled:
        failures = failure_maxima(conf, harness, detector, data, labelled,
                                  miner) or None
    if failures is None:
        return detector.calibrate(maxima, target_far)
    return detector.calibrate(maxima, target_far, failure_maxima=failures)


def failure_maxima(conf, harness, detector, data, tests, miner):
    """``max_seen`` of the labelled failure runs of ``tests``.

    Scores count from the fault's activation on (what the metrics count
    as a detection); a run without a known activation counts whole.
    Thresholds are lifted while the runs replay, so that a family raising
    before the activation (once per period) does not hide its later
    scores.
    """
    members = [m for m in getattr(detector, 'learned', None) or [detector]
               if isinstance(getattr(m, 'thresholds', None), dict)]
    saved = [dict(m.thresholds) for m in members]
    for member in members:
        member.thresholds = dict.fromkeys(member.thresholds, math.inf)
    try:
        return _failure_maxima(conf, harness, detector, data, tests, miner)
    finally:
        for member, thresholds in zip(members, saved):
            member.thresholds = thresholds


def _failure_maxima(conf, harness, detector, data, tests, miner):
    found = []
    for run_key, _label in data.runs(sorted(tests),
                                     [dataset_mod.POSITIVE]):
        run = harness.anonymous_run(data, run_key)
        activation = harness.cache.activation(data, run_key.test)
        detector.reset_max()
        armed = activation is None
        pipe = pipeline_mod.Pipeline(conf, miner, [detector])
        for record in run.records():
            if not armed and record.timestamp is not None and (
                    record.timestamp > activation - metrics.LOG_RESOLUTION):
                detector.reset_max()
                armed = True
            pipe.process(record)
        pipe.finish()
        if armed:
            found.append(dict(detector.max_seen))
    return found


def check_calibration(calibration):
    """Raise ValueError unless ``calibration`` is one of CALIBRATIONS."""
    if calibration not in CALIBRATIONS:
        raise ValueError('calibration must be one of %s' % (CALIBRATIONS,))


def labelled_tests(split, calibration):
    """The training tests whose failure runs calibration may read.

    ``calibration`` is ``labelled`` (the failure runs of the split's
    training and validation tests: labels of training ids only,
    PROTOCOL.md section 1) or ``normal`` (none: normal runs only).
    """
    check_calibration(calibration)
    if calibration == 'normal':
        return None
    return set(split.train) | set(split.validation)


def train_detector(conf, harness, driver, data, split, miner, progress=None,
                   target_far=0.02, time_budget=None, calibration='normal'):
    """Fit ``driver`` on the normal runs of ``split.train``.

    Models learn from normal runs only. Thresholds are then calibrated on
    the normal runs of ``split.validation`` (see
    :func:`calibrate_detector`), with the labelled failure runs of the
    training tests when ``calibration`` is ``labelled``. ``time_budget``
    (seconds) stops the drivers that train in epochs after the epoch
    that passes it.
    """
    detector = pipeline_mod.load_detector(conf, driver)
    if not detector.trainable:
        return detector
    started = time.monotonic()
    sessions = harness.iter_sessions(
        harness.normal_runs(data, sorted(split.train)), miner)
    if time_budget:
        detector.fit(sessions, progress, time_budget=time_budget)
    else:
        detector.fit(sessions, progress)
    LOG.info('Trained %s on %d test(s) in %.1f s', driver, len(split.train),
             time.monotonic() - started)
    calibrate_detector(conf, harness, detector, data, split.validation,
                       miner, target_far, labelled_tests(split, calibration))
    return detector


def fold_detector(conf, harness, driver, data, split, miner, target_far,
                  models_dir, time_budget=None, calibration='normal'):
    """Train ``driver`` for one split, or reuse the model kept for it.

    With ``models_dir``, the model of split ``fold-N`` is kept under
    ``models_dir/fold-N``; when one is there already (an earlier run of
    the same driver and training options), it is loaded instead of
    trained and its thresholds are calibrated again, under the current
    options, on the split's validation runs: an ablation that only
    switches score families off needs no new training.

    :returns: ``(detector, path it was loaded from or None)``.
    """
    path = models_dir and os.path.join(models_dir, split.name)
    if path and os.path.exists(os.path.join(path, artifact.METADATA)):
        LOG.info('Reusing the %s model of %s from %s', driver, split.name,
                 path)
        detector = build_detector(conf, driver, path)
        calibrate_detector(conf, harness, detector, data, split.validation,
                           miner, target_far,
                           labelled_tests(split, calibration))
        return detector, path
    detector = train_detector(conf, harness, driver, data, split, miner,
                              target_far=target_far, time_budget=time_budget,
                              calibration=calibration)
    if path and detector.trainable:
        detector.save(path)
    return detector, None


def _model_info(detector):
    """Thresholds and training summary of a detector, JSON-ready."""
    info = {'name': detector.name or 'system'}
    thresholds = getattr(detector, 'thresholds', None)
    if isinstance(thresholds, dict):
        info['thresholds'] = {k: (None if v in (float('inf'), float('-inf'))
                                  else v) for k, v in thresholds.items()}
    summary = getattr(detector, 'training_summary', None)
    if summary:
        info['training'] = summary
    return info


def evaluate(conf, driver, test_path, model=None, train_path=None,
             cv_path=None, cache_dir=None, progress=True, jobs=1,
             resamples=1000, campaigns=None, target_far=0.02, limit=None,
             folds=None, models_dir=None, time_budget=None,
             calibration='labelled'):
    """Run one evaluation and return the JSON document.

    Exactly one of ``cv_path`` (3-fold CV on one folder) or ``test_path``
    (with ``model`` or ``train_path``, or neither for untrained drivers)
    says what is scored. ``folds`` (CV only) keeps some folds, e.g.
    ``[2]``, to run folds in parallel processes and :func:`merge` them.
    ``models_dir`` keeps (or reuses) each split's trained model (see
    :func:`fold_detector`). ``calibration`` (``labelled`` or ``normal``)
    says whether thresholds may read the failure runs of the training
    tests (see :func:`labelled_tests`).
    """
    check_calibration(calibration)
    started = time.monotonic()
    cache = cache_mod.RecordCache(
        cache_dir, max_line_length=conf.agent.max_line_length)
    harness = Harness(conf, cache, progress=progress, jobs=jobs)
    rule_only = driver == ERROR_RULE
    if cv_path:
        data = dataset_mod.Dataset(cv_path, campaigns, limit)
        plan = [(data, data, s)
                for s in splits_mod.cross_validation(data.test_keys())
                if not folds or int(s.name.split('-')[1]) in folds]
        if not plan:
            raise splits_mod.SplitError('no fold among %s' % (folds,))
    else:
        data = dataset_mod.Dataset(test_path, campaigns, limit)
        train = (dataset_mod.Dataset(train_path, campaigns, limit)
                 if train_path else None)
        split = splits_mod.train_test(
            train.test_keys() if train else set(), data.test_keys(),
            validation=train is not None)
        plan = [(train, data, split)]
    results = []
    models = {}
    for train_data, test_data, split in plan:
        reused = None
        harness.prepare(test_data, split.test)
        miner = None if rule_only else load_miner(conf)
        if rule_only:
            detector = None
        elif model:
            detector = build_detector(conf, driver, model)
        elif train_data is not None:
            harness.prepare(train_data, split.train | split.validation)
            detector, reused = fold_detector(
                conf, harness, driver, train_data, split, miner, target_far,
                models_dir, time_budget, calibration)
        else:
            detector = build_detector(conf, driver)
            if detector.trainable:
                raise detector_base.DetectorError(
                    'driver %s must be trained: give --model DIR or '
                    '--train PATH (or use --cv)' % driver)
        if detector is not None:
            models[split.name] = _model_info(detector)
            if reused:
                models[split.name]['reused_from'] = os.path.abspath(reused)
        LOG.info('Scoring %s: %d test(s)', split.name, len(split.test))
        results.extend(harness.score(test_data, split.test, detector,
                                     miner, desc=split.name))
    name = driver
    if models:
        # The name the harness filed the system's anomalies under.
        name = next(iter(models.values())).get('name', driver)
    systems = [ERROR_RULE] if rule_only else [name, ERROR_RULE]
    doc = _document(driver, results, systems, resamples,
                    [s.to_json() for _a, _b, s in plan])
    doc['data'] = {'cv': cv_path and os.path.abspath(cv_path),
                   'train': train_path and os.path.abspath(train_path),
                   'test': test_path and os.path.abspath(test_path),
                   'model': model and os.path.abspath(model),
                   'cache': cache.root}
    doc['settings'] = {
        'driver': driver, 'model': model,
        'session_window': conf.agent.session_window,
        'max_line_length': conf.agent.max_line_length,
        'parsing_driver': conf.parsing.driver,
        'detectors': {k: conf.detectors[k] for k in conf.detectors},
        'bootstrap_resamples': resamples,
        'target_far': target_far,
        'calibration': calibration,
        'limit_tests_per_campaign': limit,
        'folds': sorted(folds) if folds else None,
        'models_dir': models_dir and os.path.abspath(models_dir),
        'time_budget_s': time_budget,
        'raised_at': 'stream time when the pipeline returned the anomaly; '
                     'finish() anomalies at last record + session_window',
    }
    doc['models'] = models
    doc['machine'] = machine()
    doc['seconds'] = round(time.monotonic() - started, 1)
    return doc


def _document(driver, results, systems, resamples, splits):
    """Figures of per-run results (see :meth:`Harness.score`)."""
    doc = metrics.report(outcomes(results, systems[0]), resamples)
    doc = {'protocol': PROTOCOL, 'driver': driver, **doc}
    doc['baselines'] = {ERROR_RULE: metrics.report(
        outcomes(results, ERROR_RULE), resamples)}
    # For reference only: the same rule when any ERROR line of a faulty
    # run counts, even one logged before the fault was activated.
    ungated = outcomes(results, ERROR_RULE)
    for outcome in ungated:
        outcome.activation = None
    doc['baselines'][ERROR_RULE + '_ungated'] = metrics.report(ungated, 0)
    doc['per_fold'] = {}
    for split in splits:
        names = set(split['test'])
        subset = [r for r in results if r['test'] in names]
        doc['per_fold'][split['name']] = {
            s: metrics.figures(outcomes(subset, s)) for s in systems}
    doc['splits'] = splits
    doc['records'] = sum(r['records'] for r in results)
    doc['runs_without_records'] = sorted(
        '%s/round_%d' % (r['test'], r['round']) for r in results
        if not r['records'])
    doc['per_run'] = per_run(results, systems)
    return doc


def merge(docs, resamples=1000):
    """One document from documents of disjoint folds of one evaluation.

    Per-run decisions (``per_run``, with every raise time) are pooled and
    every figure is computed again; the documents must come from the same
    driver and settings (apart from ``folds``) and score disjoint tests.
    """
    if not docs:
        raise splits_mod.SplitError('nothing to merge')
    first = docs[0]

    def same(doc):
        return {k: v for k, v in doc['settings'].items() if k != 'folds'}

    results = []
    seen = set()
    for doc in docs:
        if (doc.get('protocol') != PROTOCOL
                or doc['driver'] != first['driver']
                or same(doc) != same(first)):
            raise splits_mod.SplitError(
                'documents of different evaluations cannot be merged')
        for run_id, entry in doc['per_run'].items():
            key = (entry['test'], entry['round'])
            if key in seen:
                raise splits_mod.SplitError('%s/round_%d scored twice'
                                            % key)
            seen.add(key)
            systems = [k for k, v in entry.items() if isinstance(v, dict)]
            res = {k: entry[k] for k in ('test', 'campaign', 'round',
                                         'label', 'activation', 'silent',
                                         'records')}
            res['run_id'] = run_id
            res['raised'] = {s: entry[s]['raised'] for s in systems}
            res['reasons'] = {s: entry[s]['reason'] for s in systems}
            results.append(res)
    names = [k for k, v in next(iter(first['per_run'].values())).items()
             if isinstance(v, dict)]
    systems = [n for n in names if n != ERROR_RULE] + [ERROR_RULE]
    splits = [s for doc in docs for s in doc['splits']]
    out = _document(first['driver'], results, systems, resamples, splits)
    out['data'] = first['data']
    out['settings'] = dict(first['settings'], folds=None,
                           bootstrap_resamples=resamples)
    out['models'] = {k: v for doc in docs for k, v in doc['models'].items()}
    out['machine'] = first['machine']
    out['seconds'] = round(sum(doc['seconds'] for doc in docs), 1)
    out['merged_from'] = len(docs)
    return out
