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

"""logrca-manage kb build: index the RCA knowledge base."""

import sys

from oslo_log import log

LOG = log.getLogger(__name__)


def add_parsers(subparsers):
    parser = subparsers.add_parser(
        'kb', help='The RCA knowledge base.')
    actions = parser.add_subparsers(title='Knowledge base', dest='action')
    build = actions.add_parser(
        'build', help='Index docs, gate signatures, past failures of '
                      'TRAINING tests and operator feedback.')
    build.add_argument('--docs', metavar='DIR',
                       help='Troubleshooting docs (RST); default [rca] '
                            'docs_path.')
    build.add_argument('--queries', metavar='FILE',
                       help='elastic-recheck queries (JSON lines); default '
                            '[rca] queries_path.')
    build.add_argument('--train', metavar='PATH',
                       help='Fault-injection folder whose labelled failure '
                            'runs become past failures (training ids '
                            'only: pass the training folder).')
    build.add_argument('--no-feedback', action='store_true',
                       help='Do not add operator feedback from the '
                            'database.')
    build.add_argument('--output', metavar='DIR',
                       help='Where the index goes; default [rca] kb_path.')
    build.set_defaults(func=run_build)


def _feedback_entries(conf):
    """Entries of operator feedback stored in the database, if any.

    One entry per anomaly, from its latest feedback naming a module: the
    cause confirmed or corrected, the cause in words and the comment, and
    the signature of the anomaly's evidence lines (so that the same failure
    seen again retrieves it).
    """
    from logrca.db import api as db_api
    from logrca.rca import kb as kb_mod
    from logrca.rca import service
    dbapi = db_api.get_instance(conf)
    getter = getattr(dbapi, 'feedback_get_all', None)
    if getter is None:
        return []
    latest = {}
    for item in getter():  # oldest first: the latest one wins
        if item.get('module'):
            latest[item.get('anomaly_id')] = item
    entries = []
    for anomaly_id, item in latest.items():
        row = dbapi.anomaly_get(anomaly_id)
        records = service.evidence_records(
            service.anomaly_from_db(row)) if row else ()
        comment = '\n'.join(t for t in (item.get('cause'),
                                        item.get('comment')) if t)
        entries.append(kb_mod.feedback_entry(
            anomaly_id, item.get('module'), item.get('function'),
            item.get('operation'), comment, records=records))
    return entries


def run_build(conf, args):
    from logrca.evaluation import cache as cache_mod
    from logrca.evaluation import dataset as dataset_mod
    from logrca.evaluation import detection
    from logrca.evaluation import rca as rca_eval
    from logrca.rca import kb as kb_mod

    docs = args.docs or conf.rca.docs_path
    queries = args.queries or conf.rca.queries_path
    failures = []
    if args.train:
        try:
            data = dataset_mod.Dataset(args.train)
        except dataset_mod.DatasetError as exc:
            print('logrca-manage kb build: %s' % exc, file=sys.stderr)
            return 1
        harness = detection.Harness(conf, cache_mod.RecordCache(
            max_line_length=conf.agent.max_line_length), progress=False)
        tests = data.test_keys()
        harness.prepare(data, tests)
        failures = rca_eval.failure_entries(harness, data, tests)
    feedback = []
    if not args.no_feedback:
        try:
            feedback = _feedback_entries(conf)
        except Exception as exc:  # no database is fine for a build
            LOG.warning('No operator feedback added: %s', exc)
    kb = kb_mod.build(docs, queries, failures, feedback,
                      encoder=kb_mod.load_encoder())
    output = args.output or conf.rca.kb_path
    kb.save(output)
    counts = {}
    for entry in kb.entries:
        counts[entry.kind] = counts.get(entry.kind, 0) + 1
    print('Knowledge base: %d entries (%s) written to %s; retrieval: %s'
          % (len(kb), ', '.join('%s %d' % kv for kv in sorted(
              counts.items())), output,
             'MiniLM + BM25' if kb.vectors is not None else 'BM25'))
    return 0
