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

"""Autoencoder: reconstruction error of session feature vectors."""

import collections
import random
import time

import torch
from oslo_log import log
from torch import nn

from logrca.detectors import base
from logrca.detectors import learned

LOG = log.getLogger(__name__)

LEVELS = ('DEBUG', 'INFO', 'WARNING', 'ERROR', 'CRITICAL')


class _AE(nn.Module):
    def __init__(self, size, hidden=64, code=16):
        super().__init__()
        self.encode = nn.Sequential(nn.Linear(size, hidden), nn.ReLU(),
                                    nn.Linear(hidden, code), nn.ReLU())
        self.decode = nn.Sequential(nn.Linear(code, hidden), nn.ReLU(),
                                    nn.Linear(hidden, size))

    def forward(self, x):
        return self.decode(self.encode(x))


class AutoencoderDetector(learned.LearnedDetector):
    """Flags sessions whose feature vector reconstructs badly.

    Features of a closed session: log counts of its template keys (the
    ``max_keys`` most frequent keys, plus the two unknown keys), of its
    levels, its length, its duration and its largest gap between events.
    Features are standardised with training statistics; the score is the
    mean squared reconstruction error, raised when the session closes.
    """

    name = 'autoencoder'
    FAMILIES = ('rarity', 'response', 'expectation', 'reconstruction')

    def __init__(self, conf, load=True):
        self.max_keys = 512
        self.net = None
        self.mean = None
        self.std = None
        super().__init__(conf, load=load)

    def _size(self):
        return min(len(self.vocab), self.max_keys) + len(LEVELS) + 3

    def features(self, counts, levels, times):
        """The feature vector of one session (a float tensor).

        :param counts: key id -> how often it occurred in the session.
        """
        nkeys = min(len(self.vocab), self.max_keys)
        vec = torch.zeros(self._size())
        total = 0
        for kid, count in counts.items():
            vec[kid if kid < nkeys else learned.UNK] += count
            total += count
        for level in levels:
            if level in LEVELS:
                vec[nkeys + LEVELS.index(level)] += 1.0
        stamps = [t for t in times if t is not None]
        vec[-3] = total
        if len(stamps) > 1:
            vec[-2] = stamps[-1] - stamps[0]
            vec[-1] = max(b - a for a, b in zip(stamps, stamps[1:]))
        return torch.log1p(vec.clamp(min=0.0))

    def _fit(self, seqs, progress=None, epochs=None, time_budget=None):
        epochs = epochs or 30
        started = time.monotonic()
        rows = [self.features(collections.Counter(
            self.vocab.get(k) for k in s.keys), s.levels, s.times)
            for s in seqs]
        data = torch.stack(rows)
        self.mean = data.mean(0)
        self.std = data.std(0).clamp(min=0.1)
        data = (data - self.mean) / self.std
        self.net = _AE(data.shape[1]).to(self.device)
        optim = torch.optim.Adam(self.net.parameters(), lr=1e-3)
        losses = []
        order = list(range(len(data)))
        rng = random.Random(0)
        for epoch in range(epochs):
            rng.shuffle(order)
            total = 0.0
            self.net.train()
            for start in range(0, len(order), 256):
                x = data[order[start:start + 256]].to(self.device)
                loss = ((self.net(x) - x) ** 2).mean()
                optim.zero_grad()
                loss.backward()
                optim.step()
                total += loss.item() * len(x)
            losses.append(total / len(data))
            if progress is not None:
                progress(epoch + 1, epochs, losses[-1])
            if time_budget and time.monotonic() - started > time_budget:
                LOG.warning('autoencoder: time budget reached after %d '
                            'epochs', epoch + 1)
                break
        self.net.eval()
        self.net.cpu()
        self.training_summary.update(epochs=len(losses), loss=losses)
        return losses

    def _tensors(self):
        tensors = {'net.' + k: v for k, v in self.net.state_dict().items()}
        tensors['mean'] = self.mean
        tensors['std'] = self.std
        return tensors

    def _metadata(self):
        return {'max_keys': self.max_keys}

    def _restore(self, tensors, meta):
        self.max_keys = int(meta['max_keys'])
        self.mean = tensors['mean']
        self.std = tensors['std']
        if self.mean.shape[0] != self._size():
            raise base.DetectorError('autoencoder artifact features do not '
                                     'match its vocabulary')
        self.net = _AE(self._size())
        self.net.load_state_dict({k[4:]: v for k, v in tensors.items()
                                  if k.startswith('net.')})
        self.net.eval()

    def score(self, counts, levels, times):
        """Reconstruction error of one session's features."""
        x = (self.features(counts, levels, times) - self.mean) / self.std
        with torch.inference_mode():
            return float(((self.net(x.unsqueeze(0))[0] - x) ** 2).mean())

    def observe(self, record, sessions):
        if self.net is None:
            self._require_trained()
        text, kid = self.record_key(record)
        found = self.expectation_anomalies(text, record, sessions)
        rare = self.key_hit(text, record)
        for session in learned.home_sessions(sessions):
            counts = session.state.setdefault(self.name, {})
            counts[kid] = counts.get(kid, 0) + 1
            if rare is not None and not counts.get('raised'):
                counts['raised'] = True
                family, score, reason = rare
                found.append(learned.make_anomaly(
                    self.name, session, record, list(session.records)[-20:],
                    reason, score, self.thresholds[family]))
        return found

    def on_session_closed(self, session):
        counts = session.state.get(self.name)
        if not counts or counts.pop('raised', False):
            return []
        records = list(session.records)
        score = self.score(counts, [r.level for r in records],
                           [r.timestamp for r in records])
        if not self._note('reconstruction', score):
            return []
        last = records[-1] if records else None
        return [learned.make_anomaly(
            self.name, session, last, records[-20:],
            'session unlike normal ones (reconstruction error %.2f)' % score,
            score, self.thresholds['reconstruction'])]
