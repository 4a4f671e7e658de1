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

"""Accuracy of question answering over replayed shared runs.

The runs a question set names are replayed (round 1, anonymous streams,
the configured detector) into a fresh database through the conductor, as
a live deployment would store them; each anomaly is explained by the RCA
driver from the run's records. Then every question is asked, conversation
by conversation, at its own ``now``, and both the structured query (the
fields the set gives) and the answer anomaly are compared with what the
set expects.
"""

import datetime
import json
import os
import tempfile
import time

from oslo_log import log

from logrca.conductor import manager as conductor_manager
from logrca.db import api as db_api
from logrca.db import migration
from logrca.evaluation import cache as cache_mod
from logrca.evaluation import dataset as dataset_mod
from logrca.evaluation import detection
from logrca.evaluation import rca as rca_eval
from logrca.rca import base as rca_base
from logrca.rca import questions

LOG = log.getLogger(__name__)

#: Seconds looked back when a question names no time.
DEFAULT_WINDOW = 3600.0
_TIME_FIELDS = ('since', 'until')


def _epoch(text):
    return datetime.datetime.strptime(text, '%Y-%m-%d %H:%M:%S').replace(
        tzinfo=datetime.UTC).timestamp()


def load(path):
    with open(path, encoding='utf-8') as f:
        doc = json.load(f)
    if not doc.get('questions'):
        raise ValueError('%s holds no questions' % path)
    return doc


def build_history(conf, data, tests, dbapi, driver, detector='baseline',
                  max_anomalies=rca_eval.MAX_ANOMALIES):
    """Replay and store the runs; return {test: [uuid in raise order]}."""
    harness = detection.Harness(conf, cache_mod.RecordCache(
        max_line_length=conf.agent.max_line_length), progress=False)
    harness.prepare(data, tests)
    manager = conductor_manager.ConductorManager(conf, dbapi)
    miner = detection.load_miner(conf)
    found = {}
    for key in sorted(tests):
        run = harness.anonymous_run(data, dataset_mod.RunKey(key, 1))
        det = detection.build_detector(conf, detector)
        exps, info = rca_eval.explain_run(conf, run, miner, [det], driver,
                                          max_anomalies)
        anomalies = info['anomalies_list']
        manager.store_anomalies({}, [a.to_dict() for a in anomalies])
        for anomaly, exp in zip(anomalies, exps):
            if exp is not None:
                dbapi.explanation_save(anomaly.uuid, exp.driver,
                                       exp.to_dict())
        found[str(key)] = [a.uuid for a in anomalies]
    return found


def _query_ok(expected, got):
    for key, want in expected.items():
        have = got.get(key)
        if key in _TIME_FIELDS:
            if have is None or abs(have - _epoch(want)) > 1.0:
                return False
        elif key in ('instance_ids', 'request_ids', 'volume_ids'):
            if sorted(have or []) != sorted(want):
                return False
        elif have != want:
            return False
    return True


def evaluate(conf, data_path, questions_path, driver_name='grounded',
             detector='baseline', kb=None, connection=None):
    """Ask every question; return the JSON document of the figures."""
    started = time.monotonic()
    doc = load(questions_path)
    data = dataset_mod.Dataset(data_path)
    tests = {dataset_mod.TestKey.parse(t) for t in doc['runs']}
    tmp = None
    if connection is None:
        tmp = tempfile.mkdtemp(prefix='logrca-questions-')
        connection = 'sqlite:///%s' % os.path.join(tmp, 'q.sqlite')
    dbapi = db_api.get_instance(conf, connection=connection)
    migration.upgrade(conf, engine=dbapi.get_engine())
    driver = rca_base.load_driver(conf, driver_name, kb=kb)
    history = build_history(conf, data, tests, dbapi, driver, detector)
    processor = questions.QueryProcessor(
        conf, dbapi, driver=driver,
        parser=questions.QueryParser(default_window=DEFAULT_WINDOW))
    conversations = {}
    results = []
    for item in doc['questions']:
        conv = conversations.get(item['conversation']) \
            if item['conversation'] else None
        reply = processor.ask(item['question'], conv,
                              now=_epoch(item['now']))
        if item['conversation']:
            conversations[item['conversation']] = reply['conversation']
        expected = item['expected_answer']
        want = None
        if expected is not None:
            uuids = history.get(expected['test']) or []
            want = uuids[expected['index']] \
                if expected['index'] < len(uuids) else 'missing'
        got = reply['anomalies'][0] if reply['anomalies'] else None
        results.append({
            'id': item['id'], 'question': item['question'],
            'query_ok': _query_ok(item['expected_query'], reply['query']),
            'answer_ok': got == want, 'expected': want, 'got': got,
            'query': reply['query']})
    n = len(results)
    out = {
        'protocol': detection.PROTOCOL, 'evaluation': 'questions',
        'questions': n,
        'query_accuracy': round(sum(r['query_ok'] for r in results) / n, 4),
        'answer_accuracy': round(sum(r['answer_ok'] for r in results) / n,
                                 4),
        'followups': sum(1 for i in doc['questions']
                         if i['conversation']),
        'runs': doc['runs'], 'anomalies': history,
        'driver': driver_name, 'detector': detector,
        'default_window_s': DEFAULT_WINDOW,
        'data': os.path.abspath(data_path),
        'questions_file': os.path.abspath(questions_path),
        'machine': detection.machine(),
        'seconds': round(time.monotonic() - started, 1),
        'per_question': results}
    dbapi.dispose()
    return out
