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

"""Tests of the parsing evaluation and logrca-manage evaluate parsing."""

import json

from logrca.cmd import manage
from logrca.evaluation import parsing as evaluation
from logrca.tests.unit.parsing import data


def test_grouping_accuracy_counts_exact_groups_only():
    truth = ['A', 'A', 'B', 'B', 'C']
    assert evaluation.grouping_accuracy(truth, [1, 1, 2, 2, 3]) == 1.0
    # B split in two: both B lines wrong; C merged with A: A and C wrong.
    assert evaluation.grouping_accuracy(truth, [1, 1, 2, 4, 1]) == 0.0
    assert evaluation.grouping_accuracy(truth, [1, 1, 2, 4, 3]) == 0.6


def test_normalise_joins_placeholder_runs():
    assert evaluation.normalise('a <*>-<*>-<*>  b') == 'a <*> b'
    assert evaluation.normalise('from <*> <*>:<*> to') == 'from <*> to'
    assert evaluation.normalise('"GET <*> <*>" x') == '"GET <*>" x'
    assert evaluation.normalise('HTTP/<*>') == 'HTTP/<*>'
    assert evaluation.parsing_accuracy(['a <*> b', 'c'], ['a <*> b', 'd']) \
        == 0.5


def test_manage_evaluate_parsing_end_to_end(tmp_path, capsys):
    folder = data.loghub_dir()
    out = tmp_path / 'parsing.json'
    rc = manage.main(['evaluate', 'parsing', '--driver', 'shape',
                      '--data', str(folder), '--output', str(out)])
    assert rc == 0
    doc = json.loads(out.read_text())
    assert doc['protocol'] == 'logrca-eval-1'
    assert doc['driver'] == 'shape' and doc['dataset_version'] == 'loghub-2.0'
    assert doc['lines'] == 2000 and doc['true_templates'] == 43
    assert 0.0 <= doc['parsing_accuracy'] <= 1.0
    assert doc['grouping_accuracy'] >= 0.95
    assert doc['lines_per_second'] > 0
    assert doc['machine']['cpu_count'] >= 1
    assert 'GA' in capsys.readouterr().out


def test_manage_evaluate_parsing_missing_labels(tmp_path, capsys):
    rc = manage.main(['evaluate', 'parsing', '--data', str(tmp_path),
                      '--output', str(tmp_path / 'x.json')])
    assert rc == 1
    assert 'no OpenStack_2k' in capsys.readouterr().err
    assert not (tmp_path / 'x.json').exists()
