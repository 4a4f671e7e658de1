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

"""logrca-manage rca finetune / explain, and ``evaluate rca``.

``logrca-manage explain <id>`` renders the structured explanation of a
stored anomaly at a terminal (embedded use, no API): it computes and stores
the explanation when there is none yet (see
:func:`logrca.rca.service.get_explanation`).
"""

import json
import sys

from oslo_log import log

LOG = log.getLogger(__name__)


def add_parsers(subparsers):
    parser = subparsers.add_parser('rca', help='Root-cause analysis.')
    actions = parser.add_subparsers(title='RCA', dest='action')
    tune = actions.add_parser(
        'finetune', help='Fine-tune a local language model on (context -> '
                         'explanation) pairs of labelled training failures '
                         'and docs; reports held-apart loss before/after.')
    tune.add_argument('--model', required=True, metavar='DIR',
                      help='Local causal LM folder (never downloaded).')
    tune.add_argument('--train', required=True, metavar='PATH',
                      help='Fault-injection folder of TRAINING tests.')
    tune.add_argument('--output', required=True, metavar='DIR',
                      help='Where the fine-tuned model goes.')
    tune.add_argument('--epochs', type=int, default=1)
    tune.add_argument('--max-pairs', type=int, default=200)
    tune.add_argument('--lr', type=float, default=5e-5)
    tune.set_defaults(func=run_finetune)

    explain = subparsers.add_parser(
        'explain', help='Explain a stored anomaly (computed and stored when '
                        'missing) and render it for a terminal.')
    explain.add_argument('anomaly_id', metavar='ID')
    explain.add_argument('--driver', help='RCA driver; default [rca] '
                                          'driver.')
    explain.add_argument('--json', action='store_true',
                         help='Print the stored JSON document.')
    explain.add_argument('--refresh', action='store_true',
                         help='Compute it again even if stored.')
    explain.set_defaults(func=run_explain)


def add_evaluate_parser(actions):
    """``logrca-manage evaluate rca`` (added by logrca.manage.evaluate)."""
    parser = actions.add_parser(
        'rca', help='Root-cause analysis figures on fault-injection folders '
                    '(PROTOCOL.md section 1).')
    parser.add_argument('--driver', default='grounded',
                        help='RCA driver (logrca.rca); default grounded.')
    det = parser.add_mutually_exclusive_group(required=True)
    det.add_argument('--detector-model', metavar='DIR',
                     help='Trained detector artifact (with --detector '
                          'naming its driver).')
    det.add_argument('--detector', metavar='NAME',
                     help='Detector driver; trained on the training '
                          'split when trainable.')
    parser.add_argument('--detector-driver', metavar='NAME',
                        help='Driver of --detector-model (default: read '
                             'from the artifact, else "learned").')
    parser.add_argument('--detector-models', metavar='DIR',
                        help='With --detector: keep the detector trained '
                             'for each split under DIR/<split> (e.g. '
                             'fold-1), or reuse the one there; the folder '
                             'of "evaluate detection --models" serves.')
    parser.add_argument('--calibration', choices=['labelled', 'normal'],
                        default='labelled',
                        help='How the --detector\'s thresholds are picked '
                             '(as in "evaluate detection"; default '
                             'labelled).')
    parser.add_argument('--train', metavar='PATH',
                        help='Folder of training tests.')
    parser.add_argument('--test', metavar='PATH',
                        help='Folder of tests to score.')
    parser.add_argument('--cv', metavar='PATH',
                        help='3-fold cross-validation (fold = id mod 4).')
    parser.add_argument('--docs', metavar='DIR',
                        help='Troubleshooting docs; default [rca] '
                             'docs_path.')
    parser.add_argument('--queries', metavar='FILE',
                        help='elastic-recheck queries; default [rca] '
                             'queries_path.')
    parser.add_argument('--kb-cache', metavar='DIR',
                        help='Cache of the encoded docs and signatures.')
    parser.add_argument('--campaign', action='append', dest='campaigns',
                        choices=['Nova', 'Cinder', 'Neutron'])
    parser.add_argument('--limit', type=int,
                        help='Score at most N positive runs per split '
                             '(quick checks; recorded in the output).')
    parser.add_argument('--fold', type=int, action='append',
                        dest='folds', choices=[1, 2, 3],
                        help='With --cv, score only this fold (repeatable; '
                             'run folds as parallel processes and join '
                             'them with "evaluate rca-merge").')
    parser.add_argument('--cache-dir', metavar='DIR')
    parser.add_argument('--bootstrap', type=int, default=1000)
    parser.add_argument('--output', required=True, metavar='FILE.json')
    parser.add_argument('--no-progress', action='store_true')
    parser.set_defaults(func=run_evaluate)

    mparser = actions.add_parser(
        'rca-merge', help='Join "evaluate rca --fold N" documents into one '
                          '(figures recomputed from per_run).')
    mparser.add_argument('inputs', nargs='+', metavar='FOLD.json')
    mparser.add_argument('--bootstrap', type=int, default=1000)
    mparser.add_argument('--output', required=True, metavar='FILE.json')
    mparser.set_defaults(func=run_merge)

    qparser = actions.add_parser(
        'questions', help='Accuracy of question answering (structured '
                          'query and answer anomaly) over replayed runs.')
    qparser.add_argument('--data', required=True, metavar='PATH',
                         help='Fault-injection folder holding the runs the '
                              'question set names.')
    qparser.add_argument('--questions', required=True, metavar='FILE',
                         help='Question set (JSON), e.g. logrca/tests/'
                              'functional/rca/questions.json.')
    qparser.add_argument('--driver', default='grounded')
    qparser.add_argument('--detector', default='baseline')
    qparser.add_argument('--kb', metavar='DIR',
                         help='Knowledge base folder (default: none).')
    qparser.add_argument('--output', required=True, metavar='FILE.json')
    qparser.set_defaults(func=run_questions)


def run_questions(conf, args):
    from logrca.evaluation import dataset
    from logrca.evaluation import questions as questions_eval
    from logrca.manage import evaluate as evaluate_cmd
    from logrca.rca import kb as kb_mod
    try:
        kb = kb_mod.KnowledgeBase.load(args.kb) if args.kb else None
        doc = questions_eval.evaluate(conf, args.data, args.questions,
                                      driver_name=args.driver,
                                      detector=args.detector, kb=kb)
    except (OSError, ValueError, dataset.DatasetError) as exc:
        print('logrca-manage evaluate questions: %s' % exc,
              file=sys.stderr)
        return 1
    evaluate_cmd._write(doc, args.output)
    print('%d questions (%d follow-ups): structured query accuracy %.3f, '
          'answer accuracy %.3f' % (doc['questions'], doc['followups'],
                                    doc['query_accuracy'],
                                    doc['answer_accuracy']))
    return 0


def _driver_of_model(path):
    try:
        with open('%s/meta.json' % path) as f:
            return json.load(f).get('driver')
    except (OSError, ValueError):
        return None


def run_evaluate(conf, args):
    from logrca.detectors import base as detector_base
    from logrca.evaluation import dataset
    from logrca.evaluation import rca as rca_eval
    from logrca.evaluation import splits
    from logrca.manage import evaluate as evaluate_cmd
    from logrca.rca import base as rca_base
    if bool(args.cv) == bool(args.test) or (args.test and not args.train):
        print('logrca-manage evaluate rca: give --cv PATH, or --train PATH '
              'and --test PATH', file=sys.stderr)
        return 2
    if args.detector_models and not args.detector:
        print('logrca-manage evaluate rca: --detector-models needs '
              '--detector', file=sys.stderr)
        return 2
    detector = args.detector
    if args.detector_model:
        detector = (args.detector_driver
                    or _driver_of_model(args.detector_model) or 'learned')
    try:
        doc = rca_eval.evaluate(
            conf, args.driver, test_path=args.test, train_path=args.train,
            cv_path=args.cv, detector=detector,
            detector_model=args.detector_model,
            docs=args.docs or conf.rca.docs_path,
            queries=args.queries or conf.rca.queries_path,
            cache_dir=args.cache_dir, kb_dir=args.kb_cache,
            progress=not args.no_progress, resamples=args.bootstrap,
            campaigns=args.campaigns, limit=args.limit, folds=args.folds,
            detector_models=args.detector_models,
            calibration=args.calibration)
    except (dataset.DatasetError, splits.SplitError,
            detector_base.DetectorError, rca_base.RCAError) as exc:
        print('logrca-manage evaluate rca: %s' % exc, file=sys.stderr)
        return 1
    evaluate_cmd._write(doc, args.output)
    _print_rca(args.driver, doc)
    return 0


def run_merge(conf, args):
    from logrca.evaluation import rca as rca_eval
    from logrca.manage import evaluate as evaluate_cmd
    docs = []
    for path in args.inputs:
        with open(path, encoding='utf-8') as f:
            docs.append(json.load(f))
    doc = rca_eval.merge(docs, args.bootstrap)
    evaluate_cmd._write(doc, args.output)
    _print_rca(doc['driver'], doc)
    return 0


def _print_rca(driver, doc):
    from logrca.evaluation import rca as rca_eval
    print('%s on %d runs (%d detected): package top-1 %s, module top-1 %s '
          'top-3 %s, (module, function) top-3 %s, operation %s, evidence '
          'hit %s, reading effort %s lines, latency p95 %s s' % (
              driver, doc['runs'], doc['detected'],
              *(doc[k] for k in rca_eval.FIGURES),
              doc['reading_effort']['median'], doc['latency_s']['p95']))


def run_explain(conf, args):
    from logrca.rca import base as rca_base
    from logrca.rca import render
    from logrca.rca import service
    try:
        body = service.get_explanation(conf, args.anomaly_id,
                                       driver=args.driver,
                                       refresh=args.refresh)
    except service.NotFound as exc:
        print('logrca-manage explain: %s' % exc, file=sys.stderr)
        return 1
    except rca_base.RCAError as exc:
        print('logrca-manage explain: cannot explain: %s' % exc,
              file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(body, indent=1, sort_keys=True, default=str))
    else:
        print(render.terminal(body))
    return 0


def run_finetune(conf, args):
    from logrca.rca import finetune
    try:
        report = finetune.run(conf, args.model, args.train, args.output,
                              epochs=args.epochs, max_pairs=args.max_pairs,
                              lr=args.lr)
    except (OSError, ValueError) as exc:
        print('logrca-manage rca finetune: %s' % exc, file=sys.stderr)
        return 1
    print('Held-apart loss: %.4f before, %.4f after (%d train / %d held '
          'pairs); model written to %s' % (
              report['loss_before'], report['loss_after'],
              report['train_pairs'], report['held_pairs'], args.output))
    return 0 if report['loss_after'] < report['loss_before'] else 3
