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


"""Unit tests of the database API's conversions, validation and sorting."""

import datetime

import pytest

from logrca.db import api as db_api
from logrca.db import exceptions
from logrca.detectors import anomaly as anomaly_mod

UTC = datetime.UTC


def _anomaly(**kwargs):
    values = dict(detector='baseline', score=2.5, reason='r',
                  session_key=('request', 'req-1'), start_time=10.0,
                  end_time=11.0, raised_at=11.5)
    values.update(kwargs)
    return anomaly_mod.Anomaly(**values)


@pytest.mark.parametrize('value,expected', [
    (0, datetime.datetime(1970, 1, 1)),
    (1.000001, datetime.datetime(1970, 1, 1, 0, 0, 1, 1)),
    (datetime.datetime(2026, 1, 1, 12, tzinfo=datetime.timezone(
        datetime.timedelta(hours=2))), datetime.datetime(2026, 1, 1, 10)),
    (datetime.datetime(2026, 1, 1, 12), datetime.datetime(2026, 1, 1, 12)),
    ('2026-01-01T12:00:00Z', datetime.datetime(2026, 1, 1, 12)),
    (None, None),
])
def test_to_datetime(value, expected):
    assert db_api.to_datetime(value) == expected


@pytest.mark.parametrize('value', [
    'yesterday', float('inf'), float('nan'), 1e300, True, object()])
def test_to_datetime_rejects(value):
    with pytest.raises(ValueError):
        db_api.to_datetime(value)


def test_prepare_masks_clips_and_collects_refs():
    evidence = [anomaly_mod.Evidence(
        timestamp=10.0 + i, stream='s' * 300, level='ERROR', logger='l',
        message='token=abc%d secret' % i, request_id='req-%d' % (i % 2),
        instance_id='inst-1' if i else None) for i in range(5)]
    anomaly = _anomaly(evidence=evidence, service='x' * 400,
                       reason='password=Hunter2', request_ids=['req-9'],
                       instance_ids=['i' * 65])
    values, lines, refs = db_api.prepare_anomaly(anomaly, 3)
    assert len(lines) == 3 and [e['position'] for e in lines] == [0, 1, 2]
    assert all('abc' not in e['message'] for e in lines)
    assert 'Hunter2' not in values['reason']
    assert len(values['service']) == 255 and len(lines[0]['stream']) == 255
    assert values['raised_at'] == datetime.datetime(1970, 1, 1, 0, 0, 11,
                                                    500000)
    # Request ids of the anomaly and of its kept evidence; a 65-character
    # "instance id" cannot be one and is not indexed.
    assert refs == [('instance', 'inst-1'), ('request', 'req-0'),
                    ('request', 'req-1'), ('request', 'req-9')]


def test_prepare_cuts_long_messages():
    anomaly = _anomaly(evidence=[anomaly_mod.Evidence(
        timestamp=None, stream='s', level=None, logger=None,
        message='z' * 5000)])
    _values, lines, _refs = db_api.prepare_anomaly(anomaly, 10, 2000)
    assert lines[0]['message'] == 'z' * 2000 + ' [truncated]'


@pytest.mark.parametrize('change', [
    {'score': 'high'}, {'score': float('inf')}, {'threshold': 'x'},
    {'raised_at': 'soon'}, {'detector': ''}, {'uuid': 'x'},
])
def test_prepare_rejects_malformed(change):
    anomaly = _anomaly()
    for key, value in change.items():
        setattr(anomaly, key, value)
    with pytest.raises(ValueError):
        db_api.prepare_anomaly(anomaly, 10)


def test_prepare_rejects_malformed_dicts():
    with pytest.raises(ValueError):
        db_api.prepare_anomaly({'score': 1}, 10)
    with pytest.raises(ValueError):
        db_api.prepare_anomaly(['not', 'a', 'dict'], 10)


def test_sort_spec():
    spec = db_api.Connection._sort_spec
    assert spec(None, None) == (['raised_at', 'id'], ['desc', 'desc'])
    assert spec(['score'], ['asc']) == (['score', 'id'], ['asc', 'asc'])
    assert spec(['score', 'host'], ['asc']) == (
        ['score', 'host', 'id'], ['asc', 'asc', 'asc'])
    assert spec(['id'], None) == (['id'], ['desc'])
    for keys, dirs in ((['reason'], None), (['score', 'score'], None),
                       (['score'], ['asc', 'desc']), (['score'], ['up'])):
        with pytest.raises(exceptions.InvalidSortKey):
            spec(keys, dirs)
