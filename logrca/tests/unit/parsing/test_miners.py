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

"""Unit tests of the template miners (shape and Drain3)."""

import pytest

from logrca import conf as logrca_conf
from logrca.evaluation import parsing as evaluation
from logrca.parsing import base
from logrca.parsing import drain
from logrca.parsing import shape
from logrca.tests.unit.parsing import data

DRIVERS = ('shape', 'drain3')
UUID1 = 'c656c2cc-e830-4b90-b82d-ed702722de4e'
UUID2 = '0a4e5a0c-7d4c-4d4a-9a45-1c1f9b0d9e11'


def _conf(**parsing):
    conf = logrca_conf.new_conf()
    conf([], project='logrca', default_config_files=[])
    for key, value in parsing.items():
        conf.set_override(key, value, 'parsing')
    return conf


@pytest.mark.parametrize('name,cls', [('shape', shape.ShapeParser),
                                      ('drain3', drain.Drain3Parser)])
def test_load_miner_through_stevedore(name, cls):
    conf = _conf(driver=name)
    miner = base.load_miner(conf)
    assert isinstance(miner, cls) and isinstance(miner, base.TemplateMiner)


@pytest.mark.parametrize('name', DRIVERS)
def test_variables_are_masked_and_returned(name):
    miner = base.load_miner(_conf(), name)
    first = miner.add('[instance: %s] Took 1.52 seconds to build '
                      'instance.' % UUID1)
    second = miner.add('[instance: %s] Took 20.1 seconds to build '
                       'instance.' % UUID2)
    assert first[0] == second[0]
    assert second[1] == '[instance: <*>] Took <*> seconds to build instance.'
    assert any(UUID2 in p for p in second[2]) and '20.1' in second[2]
    other = miner.add('Lock "compute_resources" acquired by "a.b" :: '
                      'waited 0.000s')
    assert other[0] != first[0]


@pytest.mark.parametrize('name', DRIVERS)
def test_match_does_not_learn(name):
    miner = base.load_miner(_conf(), name)
    assert miner.match('Claim successful on node cp-1') is None
    assert miner.templates == {}
    tid = miner.add('Claim successful on node cp-1')[0]
    assert miner.match('Claim successful on node cp-22')[0] == tid


@pytest.mark.parametrize('name', DRIVERS)
def test_state_round_trip_keeps_template_ids(name, tmp_path):
    raw = (data.loghub_dir() / 'OpenStack_2k.log').read_text()
    contents = [line.split('] ', 1)[-1] for line in raw.splitlines()]
    conf = _conf()
    miner = base.load_miner(conf, name)
    half = len(contents) // 2
    ids = [miner.add(c)[0] for c in contents[:half]]
    path = tmp_path / 'state'
    miner.save_state(str(path))
    restored = base.load_miner(conf, name)
    restored.load_state(str(path))
    assert restored.templates == miner.templates
    # Known messages match the same ids, learning goes on from the state.
    assert [restored.match(c)[0] for c in contents[:half]] == ids
    rest_a = [miner.add(c)[0] for c in contents[half:]]
    rest_b = [restored.add(c)[0] for c in contents[half:]]
    assert rest_a == rest_b
    assert max(rest_b) >= max(ids)


def test_shape_state_file_is_checked(tmp_path):
    path = tmp_path / 'bad.json'
    path.write_text('{"driver": "other"}')
    miner = base.load_miner(_conf(), 'shape')
    with pytest.raises(ValueError):
        miner.load_state(str(path))


def test_shape_word_differences_are_different_events():
    miner = base.load_miner(_conf(), 'shape')
    paused = miner.add('[instance: %s] VM Paused (Lifecycle Event)' % UUID1)
    started = miner.add('[instance: %s] VM Started (Lifecycle Event)'
                        % UUID1)
    assert paused[0] != started[0]
    # Quoted names without digits are merged as variables.
    a = miner.add('Lock "compute_resources" released by "a.b" :: held')
    b = miner.add('Lock "refresh_cache" released by "a.b" :: held')
    assert a[0] == b[0] and b[1] == 'Lock <*> released by "a.b" :: held'
    assert b[2] == ['"refresh_cache"']


@pytest.mark.parametrize('token,masked', [
    ('cp-1.slowvm1.tcloud-pg0.utah.cloudlab.us', '<*>'),
    ('network-vif-plugged:%s' % UUID1, 'network-vif-plugged:<*>'),
    ('req-75a12c6d-df58-46c2-b64a-5b4bc1516aea', '<*>'),
    ('/var/lib/nova/instances/_base/a489c8', '<*>'),
    ('phys_ram=64172MB', 'phys_ram=<*>'),
    ('pci_stats=[]', 'pci_stats=[]'),
    ('10.11.10.1:8774,', '<*>,'),
    ('successfully.', 'successfully.'),
])
def test_shape_token_masking(token, masked):
    assert shape.mask_token(token) == masked


def test_shape_token_shortcuts_agree_with_full_masking():
    raw = (data.loghub_dir() / 'OpenStack_2k.log').read_text()
    tokens = set(raw.split())
    tokens.update(['1abc', "u'12'", '<12>', '0x1f>>,', '12:30:01.5]',
                   '2018-07-02T15:51:52Z,', '1.5.', '+5MB', 'a1', '(3)',
                   'instance-0000000a', 'qvoad233e86-d7', '10.0.0.1:80/x'])
    differ = [t for t in tokens
              if shape.mask_token(t) != shape.mask_token_full(t)]
    assert len(tokens) > 4000 and differ == []


def _generated_tokens(count, seed):
    """Tokens glued from the pieces the masks are about, and near misses."""
    import random
    rnd = random.Random(seed)
    pieces = [UUID1, 'req-' + UUID2, 'req-' + UUID1[:-1], UUID1 + 'a',
              'fa:16:3e:d5:7e:5b', 'fa:16:3e:d5:7e', '10.0.0.1',
              '192.168.1.20:8774', '10.1.2.3/24', '300.1.2.3.4',
              '0x7f455dc29c10', '64b4ca488ba64e13b1722e3e51f531f8',
              'c872c05a3d428d8f0192c88ffcfb2d00afdd0abd', 'deadbeef',
              'HTTP/1.1', 'HTTP/2', 'HTTPS/1', '/var/lib/nova', '/v2.1/x?y=1',
              '-12', '+3.5', '42', '7.', '1e5', 'a1', 'Ab', 'xyz', 'é²',
              '_', '-', '.', ':', '=', '(', ')', '"', "'", ',', ';', '[', ']',
              '{', '}', '<*>', '<', '>', '*', 'r', 'H', 'req-']
    return [''.join(rnd.choice(pieces) for _i in range(rnd.randint(1, 6)))
            for _n in range(count)]


def test_shape_fast_variable_regex_equals_the_plain_masks():
    # The factored regex the shape miner uses must mask exactly what the
    # plain alternation of logrca.parsing.masks (Drain3's masks) masks.
    raw = (data.loghub_dir() / 'OpenStack_2k.log').read_text()
    texts = list(set(raw.split())) + raw.splitlines()
    texts += _generated_tokens(30000, seed=2)
    differ = [t for t in texts
              if shape._VARIABLE.sub('<*>', t)
              != shape._VARIABLE_PLAIN.sub('<*>', t)]
    assert len(texts) > 30000 and differ == []


def test_shape_grouping_accuracy_not_below_drain3_on_loghub():
    conf = _conf()
    folder = data.loghub_dir()
    got = {name: evaluation.evaluate(conf, folder, name)
           for name in DRIVERS}
    assert got['shape']['lines'] == 2000
    assert (got['shape']['grouping_accuracy']
            >= got['drain3']['grouping_accuracy'])
    assert got['shape']['grouping_accuracy'] >= 0.95
    assert got['shape']['parsing_accuracy'] >= 0.95
