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

"""logrca-manage detector: train and calibrate learned detectors."""

import math
import os
import sys
import time

from oslo_log import log

from logrca.agent import pipeline as pipeline_mod
from logrca.detectors import artifact
from logrca.detectors import base as detector_base

LOG = log.getLogger(__name__)


def add_parsers(subparsers):
    parser = subparsers.add_parser(
        'detector', help='Train and calibrate learned anomaly detectors.')
    sub = parser.add_subparsers(dest='action')

    train = sub.add_parser(
        'train', help='Fit a detector on normal logs and save its artifact.')
    train.add_argument('--driver', required=True,
                       help='Detector driver (deeplog, logbert, '
                            'autoencoder, ensemble).')
    train.add_argument('--data', nargs='+', required=True, metavar='PATH',
                       help='Normal logs: log files or folders, or a '
                            'fault-injection dataset folder (its normal '
                            'runs of --tests are used).')
    train.add_argument('--tests', nargs='*', default=None, metavar='ID',
                       help='Dataset folder only: test ids to train on, '
                            'e.g. Nova/Test_5 (default: all).')
    train.add_argument('--output', required=True, metavar='DIR',
                       help='Directory the artifact is written to.')
    train.add_argument('--epochs', type=int, default=None)
    train.add_argument('--time-budget', type=float, default=None,
                       metavar='SECONDS',
                       help='Stop training after this many seconds.')
    train.add_argument('--target-far', type=float, default=0.02,
                       help='Dataset folder only: calibrate on a validation '
                            'part of the normal runs for this false-alarm '
                            'rate.')
    train.add_argument('--no-progress', action='store_true')
    train.set_defaults(func=run_train)

    cal = sub.add_parser(
        'calibrate', help='Pick thresholds on normal validation logs for a '
                          'target false-alarm rate.')
    cal.add_argument('--model', required=True, metavar='DIR')
    cal.add_argument('--data', nargs='+', required=True, metavar='PATH',
                     help='Normal logs: each file or folder is one run; or '
                          'a dataset folder (normal runs of --tests).')
    cal.add_argument('--tests', nargs='*', default=None, metavar='ID')
    cal.add_argument('--target-far', type=float, default=0.01)
    cal.set_defaults(func=run_calibrate)


def _is_dataset(path):
    return os.path.isdir(path) and any(
        os.path.exists(os.path.join(path, t))
        for t in ('nova.tsv', 'cinder.tsv', 'neutron.tsv'))


def _dataset_tests(data, ids):
    from logrca.evaluation import dataset as dataset_mod
    tests = set(data.test_keys())
    if ids:
        wanted = {str(dataset_mod.TestKey.parse(i)) for i in ids}
        tests = {k for k in tests if str(k) in wanted}
        if not tests:
            raise detector_base.DetectorError(
                'none of the given tests is in %s' % data.path)
    return tests


def _log_runs(conf, paths):
    """Each path (file or folder) as one run of merged records."""
    from logrca.manage import replay
    for path in paths:
        files = replay.discover([path])
        stats = {}
        yield replay.merged_records(files, conf.agent.max_line_length,
                                    _Stats(stats))


class _Stats(dict):
    def __missing__(self, key):
        return 0


def _sessions(conf, miner, record_runs):
    """Closed sessions of runs of records, replayed through the pipeline,
    as sequences that name their run (``source``)."""
    collected = []

    class _Collect(detector_base.Detector):
        name = '_collect'

        def observe(self, record, sessions):
            return []

        def on_session_closed(self, session):
            collected.append(session)
            return []

    from logrca.detectors import learned

    def out(source):
        for session in collected:
            if session.records:
                yield learned.Sequence.from_session(session, source)
        collected.clear()

    for source, records in enumerate(record_runs):
        pipe = pipeline_mod.Pipeline(conf, miner, [_Collect(conf)])
        for record in records:
            pipe.process(record)
            if collected:
                yield from out(source)
        pipe.finish()
        yield from out(source)


def _miner(conf):
    from logrca.parsing import base as parsing_base
    return parsing_base.load_miner(conf)


def _progress(disabled):
    if disabled:
        return None, None
    import tqdm
    bar = tqdm.tqdm(desc='train', unit=' epoch', file=sys.stderr)

    def progress(epoch, epochs, loss):
        bar.total = epochs
        bar.set_postfix(loss='%.4f' % loss)
        bar.update(epoch - bar.n)
        print('epoch %d/%d loss %.4f' % (epoch, epochs, loss),
              file=sys.stderr)
    return bar, progress


def _replay_maxima(conf, detector, miner, record_runs):
    maxima = []
    for records in record_runs:
        detector.reset_max()
        pipe = pipeline_mod.Pipeline(conf, miner, [detector])
        for record in records:
            pipe.process(record)
        pipe.finish()
        maxima.append(dict(detector.max_seen))
    return maxima


def run_train(conf, args):
    try:
        detector = pipeline_mod.load_detector(conf, args.driver)
        if not detector.trainable:
            raise detector_base.DetectorError(
                '%s is not a learned detector' % args.driver)
        miner = _miner(conf)
        started = time.monotonic()
        bar, progress = _progress(args.no_progress)
        validation = []
        datasets = [p for p in args.data if _is_dataset(p)]
        logs = [p for p in args.data if not _is_dataset(p)]
        record_runs = []
        if datasets:
            from logrca.evaluation import dataset as dataset_mod
            from logrca.evaluation import detection
            from logrca.evaluation import splits
            harness = detection.Harness(conf,
                                        progress=not args.no_progress)
            for path in datasets:
                data = dataset_mod.Dataset(path)
                tests = _dataset_tests(data, args.tests)
                fit_tests, val_tests = splits.split_validation(tests)
                harness.prepare(data, tests)
                record_runs.append(
                    r.records() for r in harness.normal_runs(
                        data, sorted(fit_tests)))
                validation.append((harness, data, val_tests))
        runs = [records for group in record_runs for records in group]
        if logs:
            runs = _chain(runs, _log_runs(conf, logs))
        losses = detector.fit(_sessions(conf, miner, runs),
                              progress=progress, epochs=args.epochs,
                              time_budget=args.time_budget)
        if bar is not None:
            bar.close()
        for harness, data, val_tests in validation:
            maxima = _replay_maxima(
                conf, detector, miner,
                (r.records() for r in harness.normal_runs(
                    data, sorted(val_tests))))
            detector.calibrate(maxima, args.target_far)
        detector.save(args.output)
    except (detector_base.DetectorError, FileNotFoundError) as exc:
        print('logrca-manage detector train: %s' % exc, file=sys.stderr)
        return 1
    print('trained %s in %.0f s; losses %s; thresholds %s; saved to %s'
          % (args.driver, time.monotonic() - started,
             ['%.4f' % x for x in (losses or [])],
             getattr(detector, 'thresholds', None), args.output))
    return 0


def _chain(*iterables):
    for items in iterables:
        yield from items


def run_calibrate(conf, args):
    try:
        meta = artifact.read_metadata(args.model)
        driver = meta.get('driver')
        detector = pipeline_mod.load_detector(conf, driver)
        detector.load(args.model)
        miner = _miner(conf)
        maxima = []
        for path in args.data:
            if _is_dataset(path):
                from logrca.evaluation import dataset as dataset_mod
                from logrca.evaluation import detection
                harness = detection.Harness(conf)
                data = dataset_mod.Dataset(path)
                tests = _dataset_tests(data, args.tests)
                harness.prepare(data, tests)
                runs = (r.records() for r in harness.normal_runs(
                    data, sorted(tests)))
            else:
                runs = _log_runs(conf, [path])
            maxima.extend(_replay_maxima(conf, detector, miner, runs))
        thresholds = detector.calibrate(maxima, args.target_far)
        detector.save(args.model)
    except (detector_base.DetectorError, FileNotFoundError) as exc:
        print('logrca-manage detector calibrate: %s' % exc, file=sys.stderr)
        return 1
    print('calibrated %s on %d run(s) for a false-alarm rate of %g: %s'
          % (driver, len(maxima), args.target_far,
             {k: (None if isinstance(v, float) and math.isinf(v) else v)
              for k, v in _flat(thresholds).items()}))
    return 0


def _flat(thresholds):
    out = {}
    for key, value in (thresholds or {}).items():
        if isinstance(value, dict):
            for sub, v in value.items():
                out['%s.%s' % (key, sub)] = v
        else:
            out[key] = value
    return out
