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

"""Unit tests of the learned detectors on synthetic request sessions."""

import json
import math
import os
import random

import pytest
import torch

from logrca.agent import pipeline
from logrca.detectors import artifact
from logrca.detectors import autoencoder
from logrca.detectors import base
from logrca.detectors import deeplog
from logrca.detectors import kernels
from logrca.detectors import learned
from logrca.parsing import records
from logrca.parsing import speedups
from logrca.tests import services

torch.set_num_threads(1)

STEPS = [
    ('INFO', 'nova.api', 'POST /v2.1/servers accepted for %s'),
    ('DEBUG', 'nova.scheduler', 'Selected host node-%d for request'),
    ('DEBUG', 'nova.compute.manager', 'Starting instance build %s'),
    ('INFO', 'nova.virt.libvirt', 'Creating image for %s'),
    ('INFO', 'nova.compute.manager', 'Took %.1f seconds to spawn the '
                                     'instance on the hypervisor.'),
    ('INFO', 'nova.compute.manager', 'Took %.1f seconds to build instance.'),
]


@pytest.fixture
def conf(detector_conf):
    detector_conf.set_override('session_window', 30, 'agent')
    return detector_conf


def _request(rng, start, rid, broken=None):
    out = []
    t = start
    for i, (level, logger, text) in enumerate(STEPS):
        if broken == 'stop' and i == 4:
            break
        if broken == 'error' and i == 3:
            out.append(records.LogRecord(
                stream='nova-compute', timestamp=t, level='ERROR',
                logger='nova.compute.manager', request_id=rid,
                message='Instance failed to spawn: libvirtError %d' % i))
            break
        value = rng.uniform(5, 8) if 'Took' in text else rng.randint(1, 9)
        if broken == 'slow' and i == 4:
            value = 400.0
        out.append(records.LogRecord(
            stream='nova-compute', timestamp=t, level=level, logger=logger,
            request_id=rid, message=text % value))
        t += rng.uniform(0.5, 2.0)
    return out


def _stream(n, seed=0, broken=None, start=1000.0):
    rng = random.Random(seed)
    recs = []
    for i in range(n):
        kind = broken if (broken and i == n // 2) else None
        recs.extend(_request(rng, start + i * 10.0,
                             'req-%08d-%d' % (i, seed), kind))
    recs.sort(key=lambda r: r.timestamp)
    # A quiet heartbeat keeps log time moving (expiry of idle sessions).
    t = start
    last = recs[-1].timestamp + 120
    while t < last:
        recs.append(records.LogRecord(
            stream='nova-compute', timestamp=t, level='DEBUG',
            logger='oslo_service.periodic_task',
            message='Running periodic task ComputeManager._heartbeat'))
        t += 5.0
    recs.sort(key=lambda r: r.timestamp)
    return recs


def _sessions(conf, recs):
    closed = []

    class Collect(base.Detector):
        name = 'collect'

        def observe(self, record, sessions):
            return []

        def on_session_closed(self, session):
            closed.append(session)
            return []

    pipe = pipeline.Pipeline(conf, None, [Collect(conf)])
    for r in recs:
        pipe.process(r)
    pipe.finish()
    return closed


def _replay(conf, det, recs):
    det.reset_max()
    pipe = pipeline.Pipeline(conf, None, [det])
    found = []
    for r in recs:
        found.extend(pipe.process(r))
    found.extend(pipe.finish())
    return found, dict(det.max_seen)


def _trained(conf, cls, **kw):
    det = cls(conf, load=False)
    det.fit(_sessions(conf, _stream(60, seed=1)), **kw)
    maxima = [_replay(conf, det, _stream(20, seed=s))[1] for s in (2, 3, 4)]
    det.calibrate(maxima, 0.0)
    return det


def test_normalise_masks_variable_parts():
    a = learned.normalise('[instance: 1b2c3d4e-1111-2222-3333-444455556666]'
                          ' Took 12.3 seconds to spawn on 10.0.0.5')
    b = learned.normalise('[instance: 0b2c3d4e-1111-2222-3333-444455556667]'
                          ' Took 7 seconds to spawn on 10.0.0.77')
    assert a == b
    assert learned.numbers('req-0b2c3d4e-1111-2222-3333-444455556667 '
                           'Took 7.5 seconds') == [7.5]


def test_deeplog_flags_error_missing_step_and_slow_step(conf):
    # Timing and flow are off by default; this test is about them.
    conf.set_override('disabled_families', [], 'detectors')
    det = _trained(conf, deeplog.DeepLogDetector, epochs=15)
    normal, _ = _replay(conf, det, _stream(20, seed=9))
    assert normal == []
    err, _ = _replay(conf, det, _stream(20, seed=10, broken='error'))
    assert err and err[0].detector == 'deeplog'
    assert 'never seen' in err[0].reason
    stop, _ = _replay(conf, det, _stream(20, seed=11, broken='stop'))
    assert any('missing' in a.reason for a in stop), [a.reason for a in stop]
    # Raised in log time, before the session window closed the session.
    missing = [a for a in stop if 'missing' in a.reason][0]
    assert missing.raised_at - missing.end_time < 30
    slow, _ = _replay(conf, det, _stream(20, seed=12, broken='slow'))
    assert any(a.reason.startswith('unusual value') for a in slow)


def test_artifact_round_trip_keeps_scores(conf, tmp_path):
    det = _trained(conf, deeplog.DeepLogDetector, epochs=5)
    path = str(tmp_path / 'dl')
    det.save(path)
    meta = json.load(open(os.path.join(path, artifact.METADATA)))
    assert meta['driver'] == 'deeplog'
    assert meta['format_version'] == artifact.FORMAT_VERSION
    assert 'vocabulary' in meta and meta['training']['sessions'] > 0
    other = deeplog.DeepLogDetector(conf, load=False)
    other.load(path)
    assert other.thresholds == det.thresholds
    recs = _stream(10, seed=5, broken='error')
    a, ma = _replay(conf, det, recs)
    b, mb = _replay(conf, other, recs)
    assert [x.reason for x in a] == [x.reason for x in b]
    assert ma == pytest.approx(mb)


def _plain_score(det, window, kid):
    """DeepLog's sequence score from one plain LSTM run (no table)."""
    with torch.inference_mode():
        logp = torch.log_softmax(det.net(torch.tensor([window])), dim=-1)[0]
    top = set(torch.topk(logp, det.top_g).indices.tolist())
    nll = -float(logp[kid])
    return 0.0 if kid in top and nll < det.MAX_TOP_NLL else nll


@pytest.mark.parametrize('compiled', [True, False])
def test_deeplog_fast_scores_equal_plain_lstm(conf, compiled):
    det = _trained(conf, deeplog.DeepLogDetector, epochs=3)
    if compiled and not kernels.available():
        services.unavailable('logrca.detectors._kernels is not built')
    runs = []
    real = kernels.LSTMLogits(det.net, det.device, compiled=compiled)
    assert real.compiled == compiled
    det._logits = lambda x: runs.append(len(x)) or real(x)
    keys = list(range(len(learned.SPECIALS), len(det.vocab)))
    rng = random.Random(3)
    # Windows of the training table, with keys inside and outside their
    # top g: no LSTM run, same scores.
    table = list(det._table)
    assert table
    for window in table:
        for kid in keys:
            assert det.sequence_score(window, kid) == pytest.approx(
                _plain_score(det, window, kid), abs=1e-4)
    assert runs == []
    # New windows: one LSTM run predicts the next window of the session
    # too, used by the session's next score.
    state = {}
    window = tuple(rng.choice(keys) for _ in range(det.window))
    while window in det._table:
        window = tuple(rng.choice(keys) for _ in range(det.window))
    for _ in range(6):
        kid = rng.choice(keys)
        got = det.sequence_score(window, kid, state)
        assert got == pytest.approx(_plain_score(det, window, kid),
                                    abs=1e-4)
        window = window[1:] + (kid,)
    assert runs and max(runs) == 2 and len(runs) < 6


def test_deeplog_keeps_no_deadlines_with_flow_off(conf):
    conf.set_override('disabled_families', ['timing', 'flow'], 'detectors')
    det = _trained(conf, deeplog.DeepLogDetector, epochs=3)
    _replay(conf, det, _stream(10, seed=5, broken='stop'))
    assert det._deadlines == []
    conf.set_override('disabled_families', [], 'detectors')
    det = _trained(conf, deeplog.DeepLogDetector, epochs=3)
    pipe = pipeline.Pipeline(conf, None, [det])
    for r in _stream(10, seed=5)[:20]:
        pipe.process(r)
    assert det._deadlines


def test_artifact_version_and_driver_mismatch(conf, tmp_path):
    det = _trained(conf, autoencoder.AutoencoderDetector, epochs=3)
    path = str(tmp_path / 'ae')
    det.save(path)
    with pytest.raises(artifact.ArtifactError, match='not .deeplog'):
        deeplog.DeepLogDetector(conf, load=False).load(path)
    mpath = os.path.join(path, artifact.METADATA)
    meta = json.load(open(mpath))
    meta['format_version'] = 999
    json.dump(meta, open(mpath, 'w'))
    with pytest.raises(artifact.ArtifactError, match='format version 999'):
        autoencoder.AutoencoderDetector(conf, load=False).load(path)
    with pytest.raises(artifact.ArtifactError, match='no detector artifact'):
        autoencoder.AutoencoderDetector(conf, load=False).load(
            str(tmp_path / 'missing'))


def test_agent_loads_artifact_from_model_dir(conf):
    det = _trained(conf, deeplog.DeepLogDetector, epochs=3)
    det.save(os.path.join(conf.detectors.model_dir, 'deeplog'))
    live = pipeline.load_detector(conf, 'deeplog')
    assert live.trained and live.thresholds == det.thresholds


def test_untrained_and_tiny_training_set_are_clear_errors(conf):
    det = deeplog.DeepLogDetector(conf, load=False)
    with pytest.raises(base.DetectorError, match='at least 10 sessions'):
        det.fit([])
    with pytest.raises(base.DetectorError, match='at least 10 sessions'):
        det.fit(_sessions(conf, _stream(2))[:3])
    rec = _stream(1)[0]
    with pytest.raises(base.DetectorError, match='detector train'):
        det.observe(rec, [])


def test_autoencoder_flags_odd_session(conf):
    det = _trained(conf, autoencoder.AutoencoderDetector, epochs=40)
    normal, _ = _replay(conf, det, _stream(20, seed=9))
    odd, maxima = _replay(conf, det, _stream(20, seed=10, broken='error'))
    assert normal == []
    assert odd and odd[0].detector == 'autoencoder'
    assert not math.isinf(det.thresholds['reconstruction'])


def test_logbert_trains_and_maps_unseen_templates(conf, tmp_path):
    from logrca.detectors import logbert
    det = _trained(conf, logbert.LogBERTDetector, epochs=4)
    err, _ = _replay(conf, det, _stream(20, seed=10, broken='error'))
    assert err and err[0].detector == 'logbert'
    # An unseen wording of a known step maps to that step's key; an
    # unseen error maps to the unknown error key.
    known = det.vocab.index[learned.key_text(_stream(1)[1])]
    variant = records.LogRecord(
        stream='nova-compute', timestamp=1.0, level='INFO',
        logger='nova.compute.manager',
        message='Took 5.0 seconds to spawn the instance on hypervisor.')
    text = learned.key_text(variant)
    assert text not in det.vocab.index
    mapped = det.lookup(text)
    assert det.vocab.keys[mapped].endswith('on the hypervisor.')
    assert det.lookup('ERROR nova.compute.manager Disk quota gone') == \
        learned.UNK_ERR
    assert known != learned.UNK
    path = str(tmp_path / 'lb')
    det.save(path)
    other = logbert.LogBERTDetector(conf, load=False)
    other.load(path)
    recs = _stream(10, seed=5, broken='error')
    assert _replay(conf, det, recs)[1] == pytest.approx(
        _replay(conf, other, recs)[1], rel=1e-4)


def test_logbert_head_at_chosen_positions_matches_full_head():
    from logrca.detectors import logbert
    torch.manual_seed(0)
    net = logbert.LogBERTNet(40, 8).eval()
    ids = torch.randint(learned.DIST + 1, 40, (5, 9))
    ids[:, 0] = learned.DIST
    ids[1, 6:] = learned.PAD
    at = torch.rand(ids.shape) < 0.3
    at[:, 1] = True
    with torch.inference_mode():
        full, dist = net(ids)
        part, dist2 = net(ids, at)
    assert part.shape == (int(at.sum()), 40)
    assert torch.allclose(part, full[at], atol=1e-5)
    assert torch.allclose(dist, dist2)


def test_rarity_counts_periods_not_lines():
    def seq(t, keys):
        return learned.Sequence('request', list(keys), [t] * len(keys),
                                [None] * len(keys), ['INFO'] * len(keys))
    model = learned.KeyRarity(gap=60.0, length=900.0)
    noisy = 'ERROR nova.compute.manager Error updating resources'
    # Three periods (runs) far apart; the noisy error is logged 50 times
    # in one of them, a common step in all three.
    model.fit([seq(0.0, ['INFO a step'] + [noisy] * 50),
               seq(10.0, ['INFO a step']),
               seq(5000.0, ['INFO a step']),
               seq(9000.0, ['INFO a step'])])
    assert model.periods == 3
    assert model.counts[noisy] == 1 and model.counts['INFO a step'] == 3
    unseen = model.score('ERROR nova.compute.manager Boom', 'ERROR')
    assert unseen > model.score(noisy, 'ERROR') > model.score(
        'INFO a step', 'INFO')
    assert model.score('DEBUG x', 'DEBUG') == 0.0
    # An error seen once outranks an unseen INFO line (level bonus).
    assert model.score(noisy, 'ERROR') > model.score('INFO new', 'INFO')


def test_calibration_shares_the_allowance_between_families(conf):
    det = deeplog.DeepLogDetector(conf, load=False)
    maxima = [{'rarity': 1.0, 'sequence': 1.0, 'timing': 0.0, 'flow': 0.0}
              for _ in range(98)]
    # One run stands out on two families, another on one.
    maxima.append({'rarity': 9.0, 'sequence': 8.0, 'timing': 0.0,
                   'flow': 0.0})
    maxima.append({'rarity': 5.0, 'sequence': 1.0, 'timing': 0.0,
                   'flow': 0.0})
    thresholds = det.calibrate(maxima, 0.02)
    raised = [m for m in maxima
              if any(m.get(f, -math.inf) > thresholds[f]
                     for f in thresholds)]
    assert len(raised) == 2
    assert thresholds['rarity'] < 5.0 and thresholds['sequence'] < 8.0
    # No allowance: nothing of the validation runs raises.
    thresholds = det.calibrate(maxima, 0.0)
    assert not [m for m in maxima
                if any(m.get(f, -math.inf) > thresholds[f]
                       for f in thresholds)]
    # A family switched off never raises.
    conf.set_override('disabled_families', ['sequence'], 'detectors')
    det = deeplog.DeepLogDetector(conf, load=False)
    assert math.isinf(det.calibrate(maxima, 0.02)['sequence'])


def test_ablation_switches(conf):
    conf.set_override('deeplog_parameters', False, 'detectors')
    det = _trained(conf, deeplog.DeepLogDetector, epochs=3)
    assert det.timing.stats == {}
    slow, _ = _replay(conf, det, _stream(20, seed=12, broken='slow'))
    assert not any(a.reason.startswith('unusual value') for a in slow)
    conf.set_override('disabled_families', ['rarity'], 'detectors')
    det = _trained(conf, deeplog.DeepLogDetector, epochs=3)
    assert math.isinf(det.thresholds['rarity'])
    err, _ = _replay(conf, det, _stream(20, seed=10, broken='error'))
    assert not any('never seen' in a.reason for a in err)


def test_a_key_is_the_shape_of_its_message_not_the_miners_template():
    spec = ("Volume %s: being created as image with specification: "
            "{'status': u'%s', 'volume_size': %d}")

    def record(uuid, status, size, template):
        return records.LogRecord(
            stream='cinder-volume', timestamp=1.0, level='INFO',
            logger='cinder.volume.flows.manager.create_volume',
            message=spec % (uuid, status, size), template=template)

    early = spec.replace('%s', '<*>', 1).replace("u'%s'", "u'creating'") \
        .replace('%d', '<*>')
    # The miner widened the template after a faulty run's other status.
    widened = early.replace("u'creating',", '<*>')
    one = record('0f5d8d4c-1a4e-4c63-9a53-2f4c1c0a7b21', 'creating', 1,
                 early)
    two = record('5a2e3c44-7d1b-4e0f-8a9c-1b2c3d4e5f60', 'creating', 20,
                 widened)
    assert learned.key_text(one) == learned.key_text(two)
    assert '<*>' in learned.key_text(one)
    # Another status is another event, whatever the template says.
    assert learned.key_text(record(
        '5a2e3c44-7d1b-4e0f-8a9c-1b2c3d4e5f60', 'error', 1, widened)) != \
        learned.key_text(one)


def test_shape_of_is_the_same_with_and_without_the_accelerator():
    if not speedups.available():
        services.unavailable('logrca.parsing._speedups is not built')
    messages = [line for r in _stream(4, seed=2, broken='error')
                for line in [r.message]] + [
        'Took 12.31 seconds to spawn the instance on the hypervisor.',
        'GET /v2.1/6f1c/servers/detail?all_tenants=1 HTTP/1.1 status: 200',
        'réseau 10.0.0.5:8775 0x7f3a ÿ '
        'req-1b2c3d4e-1111-2222-3333-444455556666',
        '']
    try:
        speedups.use(False)
        learned.clear_caches()
        python = [learned.shape_of(m) for m in messages]
        speedups.use(True)
        learned.clear_caches()
        assert [learned.shape_of(m) for m in messages] == python
    finally:
        speedups.use(True)
        learned.clear_caches()


def test_learned_detectors_set_their_cpu_threads(detector_conf):
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        detector_conf.set_override('cpu_threads', 0, 'detectors')
        deeplog.DeepLogDetector(detector_conf, load=False)
        assert torch.get_num_threads() == 2        # torch's own choice
        detector_conf.set_override('cpu_threads', 1, 'detectors')
        deeplog.DeepLogDetector(detector_conf, load=False)
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)


def test_ensemble_calibrates_its_members_as_one_union(conf):
    from logrca.detectors import ensemble

    members = [_trained(conf, deeplog.DeepLogDetector, epochs=3),
               _trained(conf, autoencoder.AutoencoderDetector, epochs=20)]
    ens = ensemble.EnsembleDetector(conf, ['deeplog', 'autoencoder'])
    # The trained members in place of the untrained ones it loaded.
    ens.members = members
    # 100 validation runs; runs 0-3 stand out on one member's own family
    # each (sequence for DeepLog, reconstruction for the autoencoder).
    runs = []
    for i in range(100):
        dl = {'rarity': 0.0, 'response': 0.0, 'expectation': 0.0,
              'sequence': 1.0, 'timing': 0.0, 'flow': 0.0}
        ae = {'rarity': 0.0, 'response': 0.0, 'expectation': 0.0,
              'reconstruction': 1.0}
        if i in (0, 1):
            dl['sequence'] = 10.0 + i
        if i in (2, 3):
            ae['reconstruction'] = 10.0 + i
        runs.append({'deeplog': dl, 'autoencoder': ae})
    got = ens.calibrate(runs, 0.02)

    def raising(per_member):
        return {i for i, r in enumerate(runs)
                if any(r[m][f] > t for m, ts in per_member.items()
                       for f, t in ts.items())}

    # Together, not each member at the full budget: 2 of 100 runs.
    assert len(raising(got)) == 2
    # The shared cross-fitted families are kept once (by DeepLog).
    shared = members[0].crossfit_scores()
    assert 'rarity' in shared
    for family in shared:
        assert not math.isinf(got['deeplog'][family])
        assert math.isinf(got['autoencoder'][family])
    # Each member calibrated alone would take the budget for itself.
    alone = {'autoencoder': members[1].calibrate(
        [r['autoencoder'] for r in runs], 0.02)}
    assert len(raising(alone)) == 2
    both = dict(alone, deeplog=members[0].calibrate(
        [r['deeplog'] for r in runs], 0.02))
    assert len(raising(both)) == 4


def test_false_alarm_rate_counts_the_next_normal_run():
    normals = [float(i) for i in range(99)]
    # Above every one of 99 normal scores: a new one exceeds it 1 time
    # in 100, not never.
    assert learned.false_alarm_rate(normals, 1000.0) == pytest.approx(0.01)
    assert learned.false_alarm_rate(normals, 96.5) == pytest.approx(0.03)
    assert learned.false_alarm_rate(normals, math.inf) == 0.0


def test_budget_goes_to_families_that_detect_failures():
    normals = {'a': [0.0] * 199 + [5.0], 'b': [0.0] * 199 + [5.0],
               'c': [0.0] * 199}
    # 'a' detects failures 0-9, 'b' only what 'a' detects, 'c' 10-11.
    failures = ([{'a': 9.0, 'b': 9.0, 'c': 0.0}] * 10
                + [{'a': 0.0, 'b': 0.0, 'c': 3.0}] * 2)
    got = learned.allocate_budget(normals, failures, 0.02)
    assert got['a'] < 9.0 and got['c'] < 3.0
    # 'b' adds no detection: its false alarms are not worth paying for.
    assert math.isinf(got['b'])
    spent = sum(learned.false_alarm_rate(normals[f], t)
                for f, t in got.items())
    assert spent <= 0.02
    # A budget below one family's price leaves it off.
    got = learned.allocate_budget(normals, failures, 0.006)
    assert math.isinf(got['c']) or math.isinf(got['a'])
    assert learned.allocate_budget(normals, failures, 0.0) == dict.fromkeys(
        normals, math.inf)


def test_labelled_calibration_of_a_detector(conf):
    det = _trained(conf, deeplog.DeepLogDetector, epochs=3)
    runs = [_replay(conf, det, _stream(20, seed=s))[1] for s in range(5, 9)]
    fails = [_replay(conf, det, _stream(20, seed=s, broken='error'))[1]
             for s in (40, 41)]
    normals = det.normal_scores(runs)
    # One training period (the rarity model's normal units), four runs.
    assert len(normals['rarity']) == 1 and len(normals['sequence']) == 4
    # Rarity costs at least 1/2: over this budget, nothing is detected.
    got = det.calibrate(runs, 0.4, failure_maxima=fails)
    assert math.isinf(got['rarity'])
    assert det.training_summary['calibration']['failures_detected'] == 0
    got = det.calibrate(runs, 0.6, failure_maxima=fails)
    summary = det.training_summary['calibration']
    assert summary['labelled_failures'] == 2
    assert summary['expected_false_alarm_rate'] == pytest.approx(0.5)
    caught = [f for f in fails
              if any(f.get(k, -math.inf) > t for k, t in got.items())]
    assert len(caught) == summary['failures_detected'] == 2
    assert got['rarity'] < min(f['rarity'] for f in fails)


def _with_responses(recs, failing=None):
    """Each request answered by nova-api, and a name lookup (404) before
    it; ``failing`` request ids are refused with 400 instead."""
    out = list(recs)
    for r in recs:
        if r.logger != 'nova.api':
            continue
        status = 400 if r.request_id in (failing or ()) else 202
        out.append(records.LogRecord(
            stream='nova-api', timestamp=r.timestamp - 0.2, level='INFO',
            logger='nova.osapi_compute.wsgi.server', request_id=r.request_id,
            message='10.0.0.1 "GET /v2.0/networks/net-%s HTTP/1.1" status: '
                    '404 len: 10 time: 0.01' % r.request_id[-6:]))
        out.append(records.LogRecord(
            stream='nova-api', timestamp=r.timestamp + 0.1, level='INFO',
            logger='nova.osapi_compute.wsgi.server', request_id=r.request_id,
            message='10.0.0.1 "POST /v2.1/0a1b2c3d4e5f60718293a4b5c6d7e8f9/'
                    'servers HTTP/1.1" status: %d len: 10 time: 0.2'
                    % status))
    out.sort(key=lambda x: x.timestamp)
    return out


def test_response_key_masks_ids_names_and_queries():
    def key(path, status, method='GET'):
        return learned.response_key(records.LogRecord(
            stream='nova-api', timestamp=0.0, level='INFO', logger='x.wsgi',
            message='1.2.3.4 "%s %s HTTP/1.1" status: %d len: 1'
                    % (method, path, status)))

    assert key('/v2.0/networks/public', 404) == \
        key('/v2.0/networks/tempest-private-1536?x=1', 404) == \
        'WARNING x.wsgi GET /<*>/networks/<*> 4xx'
    assert key('/v2.1/0a1b2c3d4e5f60718293a4b5c6d7e8f9/os-keypairs', 500,
               'POST') == 'ERROR x.wsgi POST /<*>/<*>/os-keypairs 5xx'
    assert key('/2009-04-04/meta-data/instance-id', 404) == \
        'WARNING x.wsgi GET /<*>/meta-data/instance-id 4xx'
    assert key('/v2.0/networks', 201, 'POST') is None


def test_deeplog_raises_an_error_response_never_seen_in_normal_logs(
        conf, tmp_path):
    det = deeplog.DeepLogDetector(conf, load=False)
    # Eight workload runs, apart in log time: eight periods.
    train = [r for n in range(8) for r in _with_responses(
        _stream(10, seed=10 + n, start=1000.0 + 2000.0 * n))]
    det.fit(_sessions(conf, train), epochs=3)
    assert det.responses.periods == 8
    # Every training period looked up a (new) network name: 404s there.
    assert det.responses.counts == {
        'WARNING nova.osapi_compute.wsgi.server GET /<*>/networks/<*> 4xx':
            det.responses.periods}
    normal = [_replay(conf, det, _with_responses(_stream(20, seed=s)))[1]
              for s in (2, 3, 4)]
    det.calibrate(normal, 0.0)
    assert det.thresholds['response'] < math.inf

    refused = _with_responses(_stream(20, seed=5), failing={'req-00000010-5'})
    found, _ = _replay(conf, det, refused)
    hits = [a for a in found if 'answered with an error status' in a.reason]
    assert [a.session_key for a in hits] == [('request', 'req-00000010-5')]
    assert 'POST /<*>/<*>/servers 4xx' in hits[0].reason
    assert hits[0].threshold == det.thresholds['response']
    # New names looked up and not found are not new responses.
    assert not _replay(conf, det, _with_responses(
        _stream(20, seed=6)))[0]

    det.save(str(tmp_path / 'm'))
    again = deeplog.DeepLogDetector(conf, load=False)
    again.load(str(tmp_path / 'm'))
    assert again.responses.counts == det.responses.counts
    assert again.thresholds['response'] == det.thresholds['response']


@pytest.mark.parametrize('message, expected', [
    ('1.2.3.4 "GET /v2.0/ports HTTP/1.1" status: 200 len: 1', None),
    ('1.2.3.4 "GET /v2.0/ports HTTP/1.1" 302 0 0.01', None),
    ('1.2.3.4 "GET /v2.0/ports HTTP/1.1" status: 404 len: 1',
     ('GET', '/v2.0/ports', 404)),
    ('1.2.3.4 "DELETE /v2.0/ports/x HTTP/1.1" 503 10 0.2',
     ('DELETE', '/v2.0/ports/x', 503)),
    ('"GET /x HTTP/1.1" and then nothing', None), ('no request', None),
    ('', None)])
def test_error_responses_are_read_from_access_lines(message, expected):
    from logrca.parsing import access
    got = access.error_response(message)
    assert (tuple(got) if got else None) == expected
