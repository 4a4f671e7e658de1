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

"""logrca-manage evaluate: quality figures of ../shared/eval/PROTOCOL.md."""

import json
import os
import sys

from oslo_log import log

LOG = log.getLogger(__name__)


def add_parsers(subparsers):
    """Add ``evaluate`` and its sub-commands, one function each."""
    parser = subparsers.add_parser(
        'evaluate', help='Measure quality figures as PROTOCOL.md says.')
    actions = parser.add_subparsers(title='Evaluations', dest='action')
    _add_detection(actions)
    _add_sequences(actions)
    _add_parsing(actions)
    # Root-cause analysis (section 1); the command lives with the RCA code.
    from logrca.manage import rca as rca_cmd
    rca_cmd.add_evaluate_parser(actions)


def _write(doc, output):
    """Write a JSON document atomically (or to stdout for ``-``)."""
    text = json.dumps(doc, indent=1, sort_keys=True, default=str)
    if output == '-':
        print(text)
        return
    folder = os.path.dirname(os.path.abspath(output))
    os.makedirs(folder, exist_ok=True)
    with open(output + '.tmp', 'w', encoding='utf-8') as f:
        f.write(text + '\n')
    os.replace(output + '.tmp', output)


# -- detection (section 1) --------------------------------------------------

def _add_detection(actions):
    parser = actions.add_parser(
        'detection',
        help='Detection figures on fault-injection folders (section 1).')
    parser.add_argument('--driver', required=True,
                        help='Detector driver (logrca.detectors), or '
                             '"error_rule" for the baseline alone.')
    source = parser.add_mutually_exclusive_group()
    source.add_argument('--model', metavar='DIR',
                        help='Trained artifact of the driver to score with.')
    source.add_argument('--train', metavar='PATH',
                        help='Folder whose normal runs train the driver.')
    parser.add_argument('--test', metavar='PATH',
                        help='Folder whose runs are scored.')
    parser.add_argument('--cv', metavar='PATH',
                        help='3-fold cross-validation over the test ids of '
                             'one folder (fold = id mod 4).')
    parser.add_argument('--fold', action='append', dest='folds',
                        type=int, choices=[1, 2, 3],
                        help='With --cv: run only this fold (repeatable), '
                             'e.g. one process per fold; join the '
                             'documents with --merge.')
    parser.add_argument('--models', metavar='DIR', dest='models_dir',
                        help='With --cv: keep each fold\'s trained model '
                             'under DIR/fold-N, or, where one is there '
                             'already (same driver and training options), '
                             'load it instead of training and calibrate it '
                             'again under the current options.')
    parser.add_argument('--time-budget', type=float, metavar='SECONDS',
                        help='Stop each training after the epoch that '
                             'passes this many seconds (drivers trained in '
                             'epochs).')
    parser.add_argument('--merge', nargs='+', metavar='FILE.json',
                        help='Join documents of disjoint folds of one '
                             'evaluation (same driver and settings) into '
                             'one, every figure computed again.')
    parser.add_argument('--output', required=True, metavar='FILE.json',
                        help='Where the JSON document goes ("-": stdout).')
    parser.add_argument('--campaign', action='append', dest='campaigns',
                        choices=['Nova', 'Cinder', 'Neutron'],
                        help='Score only this campaign (repeatable).')
    parser.add_argument('--limit', type=int, metavar='N',
                        help='Quick trial: only the N lowest test ids of '
                             'each campaign (not a protocol figure).')
    parser.add_argument('--cache-dir', metavar='DIR',
                        help='Cache of parsed runs (default: '
                             '$LOGRCA_EVAL_CACHE or <tmp>/logrca-eval-cache).')
    parser.add_argument('--jobs', type=int, default=1,
                        help='Archives parsed in parallel when the cache is '
                             'built (default 1).')
    parser.add_argument('--bootstrap', type=int, default=1000,
                        help='Bootstrap resamples of the 95%% intervals '
                             '(0: none).')
    parser.add_argument('--target-far', type=float, default=0.02,
                        help='False-alarm rate allowed on the validation '
                             'runs when thresholds are calibrated (with '
                             '--train or --cv; default 0.02).')
    parser.add_argument('--calibration', choices=['labelled', 'normal'],
                        default='labelled',
                        help='labelled (default): thresholds spend the '
                             'false-alarm budget on the score families '
                             'that detect the failure runs of the TRAINING '
                             'tests; normal: from normal runs alone, the '
                             'budget split evenly between families.')
    parser.add_argument('--no-progress', action='store_true',
                        help='Do not show progress bars.')
    parser.set_defaults(func=detection)


def detection(conf, args):
    """logrca-manage evaluate detection ..."""
    from logrca.detectors import base as detector_base
    from logrca.evaluation import dataset
    from logrca.evaluation import detection as detection_mod
    from logrca.evaluation import splits
    if args.merge:
        if args.cv or args.test or args.model or args.train:
            print('logrca-manage evaluate detection: --merge takes no '
                  '--cv, --test, --model or --train', file=sys.stderr)
            return 2
        try:
            docs = []
            for path in args.merge:
                with open(path, encoding='utf-8') as f:
                    docs.append(json.load(f))
            if any(d.get('driver') != args.driver for d in docs):
                raise splits.SplitError('documents of another driver than '
                                        '%s' % args.driver)
            doc = detection_mod.merge(docs, resamples=args.bootstrap)
        except (OSError, ValueError, KeyError, splits.SplitError) as exc:
            print('logrca-manage evaluate detection: cannot merge: %s'
                  % exc, file=sys.stderr)
            return 1
        _write(doc, args.output)
        _summary(args.driver, doc)
        return 0
    if bool(args.cv) == bool(args.test):
        print('logrca-manage evaluate detection: give either --cv PATH or '
              '--test PATH', file=sys.stderr)
        return 2
    if (args.folds or args.models_dir) and not args.cv:
        print('logrca-manage evaluate detection: --fold and --models need '
              '--cv', file=sys.stderr)
        return 2
    if args.cv and (args.model or args.train):
        print('logrca-manage evaluate detection: --cv trains on each fold; '
              'it takes no --model or --train', file=sys.stderr)
        return 2
    try:
        doc = detection_mod.evaluate(
            conf, args.driver, args.test, model=args.model,
            train_path=args.train, cv_path=args.cv,
            cache_dir=args.cache_dir, progress=not args.no_progress,
            jobs=args.jobs, resamples=args.bootstrap,
            campaigns=args.campaigns, target_far=args.target_far,
            limit=args.limit, folds=args.folds,
            models_dir=args.models_dir, time_budget=args.time_budget,
            calibration=args.calibration)
    except (dataset.DatasetError, splits.SplitError,
            detector_base.DetectorError) as exc:
        print('logrca-manage evaluate detection: %s' % exc, file=sys.stderr)
        return 1
    _write(doc, args.output)
    _summary(args.driver, doc)
    return 0


def _summary(driver, doc):
    from logrca.evaluation import detection as detection_mod
    base = doc['baselines'][detection_mod.ERROR_RULE]
    print('%s: P %s R %s F1 %s FAR %s silent R %s | error rule: P %s R %s '
          'F1 %s FAR %s (%d runs, %d records, %.0f s)' % (
              driver, *(_fmt(doc[k]) for k in (
                  'precision', 'recall', 'f1', 'false_alarm_rate',
                  'silent_recall')),
              *(_fmt(base[k]) for k in ('precision', 'recall', 'f1',
                                        'false_alarm_rate')),
              len(doc['per_run']), doc['records'], doc['seconds']))


def _fmt(value):
    return '-' if value is None else '%.3f' % value


# -- parsing (section 2) ----------------------------------------------------

def _add_parsing(actions):
    parser = actions.add_parser(
        'parsing',
        help='Parsing accuracy (GA, PA) and speed on Loghub OpenStack 2k '
             '(section 2).')
    parser.add_argument('--driver', default=None,
                        help='Template miner (logrca.parsers); default: '
                             '[parsing] driver.')
    parser.add_argument('--data', required=True, metavar='DIR',
                        help='A loghub-openstack-2k label folder, e.g. '
                             '../shared/data/loghub-openstack-2k/loghub-2.0.')
    parser.add_argument('--output', required=True, metavar='FILE.json',
                        help='Where the JSON document goes ("-": stdout).')
    parser.set_defaults(func=parsing)


def parsing(conf, args):
    """logrca-manage evaluate parsing ..."""
    from logrca.evaluation import parsing as parsing_mod
    try:
        doc = parsing_mod.evaluate(conf, args.data, driver=args.driver)
    except (OSError, KeyError) as exc:
        print('logrca-manage evaluate parsing: %s' % exc, file=sys.stderr)
        return 1
    _write(doc, args.output)
    print('%s on %s: GA %.3f PA %.3f, %d templates (%d true), %.0f lines/s'
          % (doc['driver'], doc['dataset_version'], doc['grouping_accuracy'],
             doc['parsing_accuracy'], doc['templates'],
             doc['true_templates'], doc['lines_per_second']))
    return 0


# -- sequences (section 3) --------------------------------------------------

def _add_sequences(actions):
    parser = actions.add_parser(
        'sequences',
        help='Sequence-level figures on per-instance event-id sequences '
             '(section 3).')
    parser.add_argument('--driver', required=True,
                        help='Detector driver (logrca.detectors).')
    parser.add_argument('--data', required=True, metavar='PATH',
                        help='Folder with openstack_train, '
                             'openstack_test_normal and '
                             'openstack_test_abnormal.')
    parser.add_argument('--templates', metavar='FILE',
                        help='Template file (default: '
                             'PATH/../templates/OpenStack_templates.csv).')
    parser.add_argument('--model', metavar='DIR',
                        help='Score with this artifact instead of training '
                             'on openstack_train.')
    parser.add_argument('--target-far', type=float, default=0.02,
                        help='False-alarm rate allowed on the training '
                             'sequences when calibrating (default 0.02).')
    parser.add_argument('--output', required=True, metavar='FILE.json',
                        help='Where the JSON document goes ("-": stdout).')
    parser.set_defaults(func=sequences)


def sequences(conf, args):
    """logrca-manage evaluate sequences ..."""
    from logrca.detectors import base as detector_base
    from logrca.evaluation import sequences as sequences_mod
    try:
        doc = sequences_mod.evaluate(
            conf, args.driver, args.data, templates_path=args.templates,
            model=args.model, target_far=args.target_far)
    except (sequences_mod.SequenceError,
            detector_base.DetectorError) as exc:
        print('logrca-manage evaluate sequences: %s' % exc, file=sys.stderr)
        return 1
    _write(doc, args.output)
    print('%s: P %s R %s F1 %s FAR %s (%d normal, %d abnormal, %.0f s)' % (
        args.driver, *(_fmt(doc[k]) for k in (
            'precision', 'recall', 'f1', 'false_alarm_rate')),
        doc['runs']['test_normal'], doc['runs']['test_abnormal'],
        doc['seconds']))
    return 0
