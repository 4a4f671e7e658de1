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

"""Next-key logits of a few windows, on the CPU, without torch's overhead.

The deeplog detector runs its LSTM live on one or two windows at a time
(windows never seen in training). For so little arithmetic, torch's
per-call overhead (tensors, dispatch, ten small matrix products) costs
several times the work itself. :class:`LSTMLogits` computes the same
logits with the optional compiled kernel ``logrca.detectors._kernels``
(``_kernels.c``, built with the parsing accelerator) from weights laid
out once, and falls back to torch where the kernel is not built, the
environment sets ``LOGRCA_NO_SPEEDUPS=1`` (as for
:mod:`logrca.parsing.speedups`), or the model is not a one-layer LSTM on
the CPU.
"""

import numpy as np
import torch
from torch import nn

from logrca.parsing import speedups


def _import():
    try:
        from logrca.detectors import _kernels
    except ImportError:
        return None
    return _kernels


_kernels = _import() if speedups.wanted() else None


def available():
    """Whether the compiled kernel is built and may be used."""
    return _kernels is not None


class LSTMLogits:
    """Logits of the next key after windows of keys, for a ``KeyLSTM``.

    :param net: a trained ``logrca.detectors.deeplog.KeyLSTM``.
    :param device: the torch device the net lives on.
    :param compiled: use the compiled kernel when it can (False: torch).
    """

    def __init__(self, net, device, compiled=True):
        self.net = net
        self.device = device
        lstm = net.lstm
        self.compiled = bool(
            compiled and _kernels is not None and lstm.num_layers == 1
            and not lstm.bidirectional and torch.device(device).type == 'cpu')
        if not self.compiled:
            return
        with torch.no_grad():
            embed = net.embed.weight.detach().double()
            w_ih = lstm.weight_ih_l0.detach().double()
            bias = (lstm.bias_ih_l0 + lstm.bias_hh_l0).detach().double()
            self._xproj = self._f32(embed @ w_ih.T + bias)
            self._whh_t = self._f32(lstm.weight_hh_l0.detach().T)
            self._wout_t = self._f32(net.out.weight.detach().T)
            self._bout = self._f32(net.out.bias.detach())
        self.hidden = lstm.hidden_size
        self.vocab = self._bout.shape[0]

    @staticmethod
    def _f32(tensor):
        return np.ascontiguousarray(tensor.cpu().numpy(), dtype=np.float32)

    def __call__(self, windows):
        """Logits after each window: a float32 array of B x V.

        :param windows: equal-length sequences of key ids.
        """
        if not self.compiled:
            with torch.inference_mode():
                x = torch.tensor(windows, dtype=torch.long,
                                 device=self.device)
                net = self.net
                return nn.functional.linear(
                    net.hidden(x), net.out.weight,
                    net.out.bias).float().cpu().numpy()
        keys = np.asarray(windows, dtype=np.int32)
        out = np.empty((keys.shape[0], self.vocab), dtype=np.float32)
        _kernels.lstm_logits(self._xproj, self._whh_t, self._wout_t,
                             self._bout, keys, out, keys.shape[1],
                             self.hidden)
        return out
