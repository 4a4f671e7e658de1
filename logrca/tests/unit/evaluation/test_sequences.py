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

"""Tests of the sequence benchmark harness (PROTOCOL.md section 3)."""

import json

from logrca import conf as logrca_conf
from logrca.cmd import manage
from logrca.detectors import anomaly
from logrca.detectors import base
from logrca.detectors import learned
from logrca.evaluation import sequences


class NewTemplate(base.Detector):
    """Fake learned detector: a template unseen in training is anomalous."""

    name = 'fake'
    trainable = True

    def __init__(self, conf):
        super().__init__(conf)
        self.known = None
        self.calibrated = None

    def fit(self, sessions, progress=None):
        # Key texts are "LEVEL logger template".
        self.known = {k.split(' ', 2)[2] for s in sessions for k in s.keys}

    def reset_max(self):
        self.max_seen = {'score': 0.0}

    def calibrate(self, run_maxima, target_far):
        self.calibrated = (len(run_maxima), target_far)

    def observe(self, record, sessions):
        assert record.stream == 'nova-compute'
        if learned.key_text(record).split(' ', 2)[2] in self.known:
            return []
        return [anomaly.Anomaly(detector=self.name, score=1.0, reason='new',
                                session_key=sessions[0].key,
                                start_time=record.timestamp,
                                end_time=record.timestamp,
                                raised_at=record.timestamp)]


def _folder(tmp_path):
    data = tmp_path / 'openstack_loghub'
    data.mkdir()
    (tmp_path / 'templates').mkdir()
    (tmp_path / 'templates' / 'OpenStack_templates.csv').write_text(
        'Claim successful\nCreating image\nDeleting instance files <*>\n'
        'Instance spawned\n')
    (data / 'openstack_train').write_text(
        'a,1 2 4\nb,1 2 4 3\n')
    (data / 'openstack_test_normal').write_text(
        'c,1 2 4 3\nd,1 2\ne,1 3 3\nbroken line\n')
    (data / 'openstack_test_abnormal').write_text(
        'f,1 2 9\ng,1 2 4\n')
    return str(data)


def test_sequences_are_trained_scored_and_counted(tmp_path, monkeypatch):
    data = _folder(tmp_path)
    made = []

    def load(conf, name):
        made.append(NewTemplate(conf))
        return made[-1]

    monkeypatch.setattr(sequences.detection.pipeline_mod, 'load_detector',
                        load)
    conf = logrca_conf.new_conf()
    conf([], project='logrca', default_config_files=[])
    out = tmp_path / 'seq.json'
    assert manage.main(['evaluate', 'sequences', '--driver', 'fake',
                        '--data', data, '--output', str(out)]) == 0
    doc = json.loads(out.read_text())
    detector = made[-1]
    assert detector.known == {'Claim successful', 'Creating image',
                              'Instance spawned',
                              'Deleting instance files <*>'}
    assert detector.calibrated == (2, 0.02)
    # Only f (event 9, not in the template file) is new.
    assert doc['runs']['test_normal'] == 3
    assert doc['runs']['flagged_abnormal'] == 1
    assert doc['recall'] == 0.5 and doc['precision'] == 1.0
    assert doc['false_alarm_rate'] == 0.0
    assert doc['stats'] == {'bad_lines': 1, 'unknown_event_ids': 1}


def test_missing_folder_is_a_clear_error(tmp_path, capsys):
    assert manage.main(['evaluate', 'sequences', '--driver', 'baseline',
                        '--data', str(tmp_path / 'none'), '--output',
                        str(tmp_path / 'o.json')]) == 1
    assert 'cannot read' in capsys.readouterr().err
