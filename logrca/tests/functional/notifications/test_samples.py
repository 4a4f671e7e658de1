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

"""The payload samples in doc/notification_samples match the code.

Run with ``LOGRCA_REGENERATE_SAMPLES=1`` to rewrite them after changing a
payload (and bump its version).
"""

import json
import os
import pathlib

import pytest

from logrca.conductor import notifier
from logrca.detectors import anomaly as anomaly_mod

ROOT = pathlib.Path(__file__).resolve().parents[4]
SAMPLES = ROOT / 'doc' / 'notification_samples'
REQ = 'req-8c4cf5a7-3b8e-4f59-9d2b-0e5d77c1a2f4'
INSTANCE = 'a4e2c9b0-5d1f-4c3e-8a7b-6f9e0d1c2b3a'


def sample_anomaly():
    """A fixed anomaly, as the baseline detector raises them."""
    evidence = [
        anomaly_mod.Evidence(
            timestamp=1767225600.123, stream='nova-compute', level='ERROR',
            logger='nova.compute.manager',
            message='[instance: %s] Instance failed to spawn: '
                    'PortBindingFailed: Binding failed for port '
                    '3d7e1b2a-9c4f-4e8d-b6a5-1f0e2d3c4b5a' % INSTANCE,
            request_id=REQ, project_id='6f70656e737461636b20697320636f6f',
            instance_id=INSTANCE, template_id=42, lineno=1031),
        anomaly_mod.Evidence(
            timestamp=1767225600.456, stream='nova-compute', level='ERROR',
            logger='nova.compute.manager',
            message='Connecting to http://admin:s3cret@10.0.0.5:9696/v2.0 '
                    'failed', request_id=REQ,
            project_id='6f70656e737461636b20697320636f6f',
            instance_id=INSTANCE, template_id=57, lineno=1032),
    ]
    return anomaly_mod.Anomaly(
        detector='baseline', score=2.0, threshold=1.0,
        reason='2 ERROR records in request session',
        session_key=('request', REQ), start_time=1767225600.123,
        end_time=1767225600.456, raised_at=1767225600.456,
        service='nova-compute', host='compute-1',
        project_id='6f70656e737461636b20697320636f6f',
        user_id='fd2f2b3f9d6e4c0b8a1e7c5d4b3a2f10', request_ids=[REQ],
        instance_ids=[INSTANCE], evidence=evidence)


def _message(event_type, payload):
    return {'priority': notifier.PRIORITY, 'event_type': event_type,
            'publisher_id': 'logrca-conductor.controller-1',
            'payload': payload}


def generated():
    anomaly = sample_anomaly()
    explanation = {
        'driver': 'grounded', 'created_at': '2026-01-01T00:00:05+00:00',
        'body': {'summary': 'neutron-server could not bind port '
                            '3d7e1b2a-9c4f-4e8d-b6a5-1f0e2d3c4b5a on '
                            'compute-1: the OVN agent of the host is down.',
                 'operation': 'instance boot', 'confidence': 0.8,
                 'suspects': [{'service': 'neutron-server'}]}}
    return {
        'anomaly-create.json': _message(
            notifier.EVENT_ANOMALY_CREATE,
            notifier.anomaly_payload(anomaly, evidence_lines=3)),
        'anomaly-explanation-ready.json': _message(
            notifier.EVENT_EXPLANATION_READY,
            notifier.explanation_payload(anomaly, explanation)),
    }


@pytest.mark.parametrize('name', sorted(generated()))
def test_sample_is_current(name):
    text = json.dumps(generated()[name], indent=4, sort_keys=True) + '\n'
    path = SAMPLES / name
    if os.environ.get('LOGRCA_REGENERATE_SAMPLES'):
        path.write_text(text)
    assert path.read_text() == text, (
        '%s is stale: rerun with LOGRCA_REGENERATE_SAMPLES=1' % path)


def test_samples_are_masked():
    for name in generated():
        assert 's3cret' not in (SAMPLES / name).read_text()
