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

"""Log parsing accuracy (GA, PA) and speed on Loghub ground truth (§2)."""

import collections
import csv
import os
import pathlib
import re
import time

from oslo_log import log

from logrca.parsing import base

LOG = log.getLogger(__name__)

PROTOCOL = 'logrca-eval-1'

# Label files, best first, for each published version of the labels.
_STRUCTURED = ('OpenStack_2k.log_structured_corrected.csv',
               'OpenStack_2k.log_structured.csv')

# Runs of wildcards joined by punctuation or spaces are one variable.
_RUNS = re.compile(r'<\*>(?:[^A-Za-z0-9<]*<\*>)+')
_SPACES = re.compile(r'\s+')

NORMALISATION = ('whitespace collapsed; <*> runs joined only by spaces or '
                 'punctuation (<*>-<*>, <*>:<*>, <*> <*>) made one <*>; '
                 'applied to ground truth and prediction alike')


def normalise(template):
    """A template with placeholders normalised for PA (see NORMALISATION)."""
    template = _SPACES.sub(' ', template.strip())
    return _RUNS.sub('<*>', template)


def load_ground_truth(folder):
    """``(contents, event_ids, templates, label_file)`` of a Loghub folder."""
    folder = pathlib.Path(folder)
    for name in _STRUCTURED:
        path = folder / name
        if path.exists():
            break
    else:
        raise FileNotFoundError('no %s in %s' % (' or '.join(_STRUCTURED),
                                                 folder))
    contents, events, templates = [], [], []
    with open(path, newline='', encoding='utf-8') as src:
        for row in csv.DictReader(src):
            contents.append(row['Content'])
            events.append(row['EventId'])
            templates.append(row['EventTemplate'])
    return contents, events, templates, path


def grouping_accuracy(truth, predicted):
    """Share of lines whose predicted group is exactly their true group.

    A line counts when the set of lines given its predicted group id equals
    the set of lines given its ground-truth event id (Zhu et al., 2019).
    """
    by_truth = collections.defaultdict(list)
    by_pred = collections.defaultdict(list)
    for i, (t, p) in enumerate(zip(truth, predicted)):
        by_truth[t].append(i)
        by_pred[p].append(i)
    correct = 0
    for lines in by_pred.values():
        truths = {truth[i] for i in lines}
        if len(truths) == 1 and len(by_truth[truth[lines[0]]]) == len(lines):
            correct += len(lines)
    return correct / len(truth) if truth else 0.0


def parsing_accuracy(truth_templates, predicted_templates):
    """Share of lines whose normalised template equals the ground truth."""
    if not truth_templates:
        return 0.0
    correct = sum(1 for t, p in zip(truth_templates, predicted_templates)
                  if normalise(t) == normalise(p))
    return correct / len(truth_templates)


def evaluate(conf, folder, driver=None):
    """Parse a Loghub folder's contents with a miner; return the figures.

    Every line is learnt first (as a live agent would, in order); the
    template of each line is the template of its group after all lines,
    as in the Loghub benchmark. Speed is the learning pass alone.
    """
    driver = driver or conf.parsing.driver
    contents, events, templates, label_file = load_ground_truth(folder)
    miner = base.load_miner(conf, driver)
    add = miner.add
    start = time.perf_counter()
    ids = [add(content)[0] for content in contents]
    elapsed = time.perf_counter() - start
    final = miner.templates
    predicted = [final[i] for i in ids]
    folder = pathlib.Path(folder)
    return {
        'protocol': PROTOCOL,
        'benchmark': 'loghub-openstack-2k',
        'dataset_version': folder.name,
        'data': str(folder.resolve()),
        'labels': label_file.name,
        'driver': driver,
        'settings': {'similarity_threshold':
                     conf.parsing.similarity_threshold,
                     'depth': conf.parsing.depth},
        'lines': len(contents),
        'true_templates': len(set(events)),
        'templates': len(set(ids)),
        'grouping_accuracy': grouping_accuracy(events, ids),
        'parsing_accuracy': parsing_accuracy(templates, predicted),
        'pa_normalisation': NORMALISATION,
        'lines_per_second': len(contents) / elapsed if elapsed else None,
        'machine': {'cpu_count': os.cpu_count()},
    }
