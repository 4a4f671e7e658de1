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

"""Sequence benchmark (PROTOCOL.md section 3): per-instance event ids.

The Loghub-derived set holds ``<instance>,<event ids>`` lines (no time, no
parameters) and a template file (event id k is line k). Each sequence is
handed to the agent's pipeline like a run: one anonymous ``nova-compute``
stream of records carrying the template text, one second apart, under a
fresh instance id; a sequence is flagged when the detector raises anything
on it. Drivers train on ``openstack_train`` and are scored on
``openstack_test_normal`` (negatives) and ``openstack_test_abnormal``
(positives).
"""

import collections
import os
import time
import uuid

from oslo_log import log

from logrca.evaluation import detection
from logrca.evaluation import metrics
from logrca.evaluation import streams
from logrca.parsing import records as records_mod

LOG = log.getLogger(__name__)

TRAIN = 'openstack_train'
TEST_NORMAL = 'openstack_test_normal'
TEST_ABNORMAL = 'openstack_test_abnormal'
TEMPLATES = os.path.join('..', 'templates', 'OpenStack_templates.csv')
STREAM = 'nova-compute'
# Synthetic clock: one event per second from an arbitrary start.
START = 1500000000.0


class SequenceError(Exception):
    """The sequence folder or template file is missing or unusable."""


def read_templates(path):
    """Templates by event id (line k of the file is event k)."""
    try:
        with open(path, encoding='utf-8') as f:
            lines = [x.rstrip('\n') for x in f]
    except OSError as exc:
        raise SequenceError('cannot read templates %s: %s'
                            % (path, exc)) from exc
    return {k: text for k, text in enumerate(lines, 1)}


def read_sequences(path, stats):
    """``[(event ids)]`` of one file; malformed lines counted and skipped.
    """
    found = []
    try:
        handle = open(path, encoding='utf-8')
    except OSError as exc:
        raise SequenceError('cannot read %s: %s' % (path, exc)) from exc
    with handle:
        for lineno, line in enumerate(handle, 1):
            _ident, sep, body = line.strip().partition(',')
            try:
                ids = [int(x) for x in body.split()]
            except ValueError:
                ids = None
            if not sep or not ids:
                if line.strip():
                    LOG.warning('%s line %d: malformed sequence skipped',
                                path, lineno)
                    stats['bad_lines'] += 1
                continue
            found.append(ids)
    return found


def to_run(ids, templates, stats):
    """One sequence as an anonymous run of records."""
    instance = str(uuid.uuid4())
    recs = []
    for i, event in enumerate(ids):
        text = templates.get(event)
        if text is None:
            stats['unknown_event_ids'] += 1
            text = 'event %d' % event
        recs.append(records_mod.LogRecord(
            stream=STREAM, timestamp=START + i, level='INFO',
            message=text, template=text, template_id=event,
            instance_id=instance, lineno=i + 1))
    return streams.AnonymousRun({STREAM: recs})


def evaluate(conf, driver, data_path, templates_path=None, model=None,
             target_far=0.02, progress=None):
    """Train (or load) ``driver``, score the test sequences, return JSON."""
    started = time.monotonic()
    stats = collections.Counter()
    templates = read_templates(templates_path or os.path.join(
        data_path, TEMPLATES))
    sets = {name: read_sequences(os.path.join(data_path, name), stats)
            for name in (TRAIN, TEST_NORMAL, TEST_ABNORMAL)}
    harness = detection.Harness(conf, progress=False)
    if model:
        detector = detection.build_detector(conf, driver, model)
    else:
        detector = detection.pipeline_mod.load_detector(conf, driver)
        if detector.trainable:
            runs = [to_run(ids, templates, stats) for ids in sets[TRAIN]]
            detector.fit(harness.iter_sessions(runs, None), progress)
            if hasattr(detector, 'reset_max'):
                maxima = []
                for run in runs:
                    detector.reset_max()
                    detection.replay(conf, run, None, [detector])
                    maxima.append(dict(detector.max_seen))
                detector.calibrate(maxima, target_far)
    outcomes = []
    for name, label in ((TEST_NORMAL, 'negative'),
                        (TEST_ABNORMAL, 'positive')):
        for i, ids in enumerate(sets[name]):
            got = detection.replay(conf, to_run(ids, templates, stats),
                                   None, [detector])
            raised = [t for t in got.raised.get(detector.name, [])
                      if t is not None]
            outcomes.append(metrics.Outcome(
                group='%s/%d' % (name, i), campaign='loghub', label=label,
                silent=False, activation=None, raised=raised))
    figures = metrics.figures(outcomes)
    doc = {'protocol': detection.PROTOCOL, 'benchmark': 'sequences',
           'driver': driver,
           **{k: figures[k] for k in ('precision', 'recall', 'f1',
                                      'false_alarm_rate')},
           'runs': {'train': len(sets[TRAIN]),
                    'test_normal': len(sets[TEST_NORMAL]),
                    'test_abnormal': len(sets[TEST_ABNORMAL]),
                    'flagged_normal': figures['runs']['false_positive'],
                    'flagged_abnormal': figures['runs']['true_positive']},
           'data': os.path.abspath(data_path),
           'models': {'train': detection._model_info(detector)},
           'settings': {'model': model, 'target_far': target_far,
                        'calibrated_on': None if model else TRAIN,
                        'clock': 'synthetic, one event per second'},
           'stats': dict(stats), 'machine': detection.machine(),
           'seconds': round(time.monotonic() - started, 1)}
    return doc
