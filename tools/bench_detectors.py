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

"""Scoring speed of the learned detectors on real records, on one core.

Takes normal runs of one campaign of the shared fault-injection folder
(through the evaluation harness's parsed-run cache, so anonymous streams
only), trains every driver on ``--train`` runs (or loads artifacts from
``--model-dir``), then replays ``--score`` other runs through the agent's
pipeline and measures the time spent *inside the detector* (``observe``
and ``on_session_closed``) per record: parsing, templates and sessions are
timed apart (``pipeline``). For LogBERT the batched path
(``score_windows`` on batches of real session windows) is measured too.
Each driver is scored twice over the same runs: ``cold`` (fresh caches)
and ``warm``; events/s are given per wall-clock second and per CPU second
of the scoring thread (the fair figure on a shared machine). Memory: the
peak RSS of the process (training included unless ``--model-dir``).

Usage::

    .venv/bin/python tools/bench_detectors.py [--data DIR]
        [--campaign Nova] [--train 30] [--score 10] [--model-dir DIR]
        [--score-fold N]
        [--drivers deeplog logbert autoencoder] [--output FILE.json]
"""

import argparse
import collections
import json
import os
import pathlib
import resource
import sys
import time

import torch

from logrca import conf as logrca_conf
from logrca.agent import pipeline
from logrca.detectors import base
from logrca.detectors import learned
from logrca.evaluation import dataset
from logrca.evaluation import detection
from logrca.evaluation import splits

ROOT = pathlib.Path(__file__).resolve().parents[1]


class Timed(base.Detector):
    """Wraps a detector and adds up the time spent in it."""

    def __init__(self, conf, inner):
        super().__init__(conf)
        self.inner = inner
        self.name = inner.name
        self.seconds = 0.0
        self.cpu_seconds = 0.0
        self.events = 0

    def observe(self, record, sessions):
        start = time.perf_counter()
        cpu = time.thread_time()
        found = self.inner.observe(record, sessions)
        self.cpu_seconds += time.thread_time() - cpu
        self.seconds += time.perf_counter() - start
        self.events += 1
        return found

    def on_session_closed(self, session):
        start = time.perf_counter()
        cpu = time.thread_time()
        found = self.inner.on_session_closed(session)
        self.cpu_seconds += time.thread_time() - cpu
        self.seconds += time.perf_counter() - start
        return found


def rss_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def score(conf, detector, runs, miner):
    timed = Timed(conf, detector)
    start = time.perf_counter()
    records = 0
    for run in runs:
        pipe = pipeline.Pipeline(conf, miner, [timed])
        for record in run.records():
            pipe.process(record)
            records += 1
        pipe.finish()
    total = time.perf_counter() - start
    return {'records': records, 'detector_s': round(timed.seconds, 3),
            'events_per_s': round(records / max(timed.seconds, 1e-9)),
            # CPU time of this thread: fair when other processes share
            # the core (wall-clock figures are then too low).
            'events_per_cpu_s': round(records
                                      / max(timed.cpu_seconds, 1e-9)),
            'pipeline_events_per_s': round(records / total)}


def logbert_batched(detector, runs, batch=256, limit=20000):
    """Events/s of LogBERT's batched scoring on real session windows."""
    items = []
    for run in runs:
        ctx = {}
        for record in run.records():
            rid = record.global_request_id or record.request_id
            key = rid or record.instance_id
            if not key:
                continue
            _text, kid = detector.record_key(record)
            prev = ctx.get(key, ())
            items.append((prev, kid))
            ctx[key] = (prev + (kid,))[-(detector.window - 1):]
            if len(items) >= limit:
                break
    start = time.perf_counter()
    cpu = time.thread_time()
    for i in range(0, len(items), batch):
        detector.score_windows(items[i:i + batch])
    took = time.perf_counter() - start
    cpu = time.thread_time() - cpu
    return {'windows': len(items), 'batch': batch,
            'events_per_s': round(len(items) / max(took, 1e-9)),
            'events_per_cpu_s': round(len(items) / max(cpu, 1e-9))}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--data', default=str(
        ROOT / '..' / 'shared' / 'data'
        / 'dessertlab-openstack-fault-injection'))
    parser.add_argument('--campaign', default='Nova')
    parser.add_argument('--train', type=int, default=30,
                        help='Normal runs to train on (default 30).')
    parser.add_argument('--score', type=int, default=10,
                        help='Other normal runs to score (default 10).')
    parser.add_argument('--epochs', type=int, default=2)
    parser.add_argument('--model-dir', default=None,
                        help='Load artifacts DIR/<driver> instead of '
                             'training.')
    parser.add_argument('--score-fold', type=int, choices=[1, 2, 3],
                        help='Score normal runs of this CV fold only (with '
                             '--model-dir holding that fold\'s models from '
                             '"evaluate detection --models": runs their '
                             'training never saw).')
    parser.add_argument('--drivers', nargs='+',
                        default=['deeplog', 'logbert', 'autoencoder'])
    parser.add_argument('--output', default=None)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    if hasattr(os, 'sched_setaffinity'):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})
    conf = logrca_conf.new_conf()
    conf([], project='logrca')
    conf.set_override('model_dir', '', 'detectors')
    conf.set_override('device', 'cpu', 'detectors')
    data = dataset.Dataset(args.data, [args.campaign])
    harness = detection.Harness(conf, progress=False)
    tests = sorted(data.test_keys())
    harness.prepare(data, tests)
    normal = [k for k, _ in data.runs(tests, [dataset.NEGATIVE])]
    train_keys = normal[:args.train]
    score_keys = normal[args.train:args.train + args.score]
    if args.score_fold:
        score_keys = [k for k in normal
                      if splits.fold_of(k.test) == args.score_fold
                      ][:args.score]
    miner = detection.load_miner(conf)
    doc = {'machine': detection.machine(), 'campaign': args.campaign,
           'train_runs': len(train_keys), 'score_runs': len(score_keys),
           'torch_threads': torch.get_num_threads(), 'drivers': {},
           'rss_mb_start': round(rss_mb(), 1)}
    loaded = []
    for name in args.drivers:
        det = pipeline.load_detector(conf, name)
        if args.model_dir:
            det.load(os.path.join(args.model_dir, name))
            fit_s = None
        else:
            runs = [harness.anonymous_run(data, k) for k in train_keys]
            start = time.perf_counter()
            det.fit(harness.iter_sessions(runs, miner), epochs=args.epochs)
            fit_s = round(time.perf_counter() - start, 1)
        loaded.append(det)
        result = {'fit_s': fit_s, 'keys': len(det.vocab)}
        for label in ('cold', 'warm'):
            if label == 'cold':
                for attr in ('_pred_cache', '_cache'):
                    if hasattr(det, attr):
                        setattr(det, attr, {})
                det._key_cache = {}
                learned.clear_caches()
            runs = [harness.anonymous_run(data, k) for k in score_keys]
            result[label] = score(conf, det, runs, miner)
        if name == 'logbert':
            runs = [harness.anonymous_run(data, k) for k in score_keys]
            result['batched'] = logbert_batched(det, runs)
        doc['drivers'][name] = result
        print(name, json.dumps(result), file=sys.stderr)
    doc['rss_mb_all_loaded'] = round(rss_mb(), 1)
    stats = collections.Counter()
    for det in loaded:
        if isinstance(det, learned.LearnedDetector):
            stats.update(det.stats)
    doc['unseen_keys'] = dict(stats)
    text = json.dumps(doc, indent=1, sort_keys=True)
    if args.output:
        with open(args.output, 'w') as f:
            f.write(text + '\n')
    print(text)
    return 0


if __name__ == '__main__':
    sys.exit(main())
