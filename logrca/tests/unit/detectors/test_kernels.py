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

"""The compiled LSTM kernel gives torch's logits."""

import random

import numpy as np
import pytest
import torch

from logrca.detectors import deeplog
from logrca.detectors import kernels
from logrca.tests import services

torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def _built():
    # tools/setup.sh builds the kernel: under CI a missing build fails
    # these tests instead of skipping them.
    if not kernels.available():
        services.unavailable('logrca.detectors._kernels is not built '
                             '(no C compiler?)')


def _net(vocab=300, embed=16, hidden=24, seed=0):
    torch.manual_seed(seed)
    net = deeplog.KeyLSTM(vocab, embed, hidden)
    # Larger weights than the initialisation, so that the gates saturate
    # and the cell state grows as in a trained model.
    with torch.no_grad():
        for p in net.parameters():
            p.mul_(3.0)
    return net.eval()


def _torch_logits(net, windows):
    with torch.inference_mode():
        return net(torch.tensor(windows)).numpy()


@pytest.mark.parametrize('batch', [1, 2, 7])
def test_logits_equal_torch(batch):
    net = _net()
    fast = kernels.LSTMLogits(net, 'cpu')
    assert fast.compiled
    rng = random.Random(batch)
    for _ in range(20):
        # Windows of 10 keys, some starting with padding (key 0).
        windows = [tuple([0] * rng.randrange(4)
                         + [rng.randrange(300) for _ in range(10)])[:10]
                   for _ in range(batch)]
        got = fast(windows)
        assert got.shape == (batch, 300) and got.dtype == np.float32
        np.testing.assert_allclose(got, _torch_logits(net, windows),
                                   rtol=1e-4, atol=1e-4)


def test_torch_fallback_is_the_same_function():
    net = _net(hidden=8)
    windows = [(1, 2, 3, 4), (0, 0, 5, 6)]
    slow = kernels.LSTMLogits(net, 'cpu', compiled=False)
    assert not slow.compiled
    np.testing.assert_allclose(slow(windows), kernels.LSTMLogits(
        net, 'cpu')(windows), rtol=1e-4, atol=1e-4)


def test_key_outside_the_vocabulary_is_refused():
    fast = kernels.LSTMLogits(_net(vocab=50), 'cpu')
    with pytest.raises(ValueError, match='outside the vocabulary'):
        fast([(1, 2, 50)])
    with pytest.raises(ValueError, match='outside the vocabulary'):
        fast([(1, -1, 2)])


def test_buffers_of_the_wrong_size_are_refused():
    from logrca.detectors import _kernels
    fast = kernels.LSTMLogits(_net(vocab=50), 'cpu')
    keys = np.zeros((1, 3), dtype=np.int32)
    out = np.empty((1, 49), dtype=np.float32)
    with pytest.raises(ValueError, match='out has'):
        _kernels.lstm_logits(fast._xproj, fast._whh_t, fast._wout_t,
                             fast._bout, keys, out, 3, fast.hidden)
