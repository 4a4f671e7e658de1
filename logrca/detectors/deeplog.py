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

"""DeepLog: an LSTM over template keys plus timing and flow models."""

import collections
import heapq
import math
import random
import time

import numpy as np
import torch
from oslo_log import log
from torch import nn

from logrca.agent import sessions as sessions_mod
from logrca.detectors import kernels
from logrca.detectors import learned

LOG = log.getLogger(__name__)


def tail_nll(z):
    """-log of the normal upper tail probability at ``z`` (z > 0)."""
    if z <= 1.0:
        return 0.0
    return z * z / 2.0 + math.log(z * math.sqrt(2.0 * math.pi))


class KeyLSTM(nn.Module):
    """Next-key model: embedding, LSTM, linear over the vocabulary."""

    def __init__(self, vocab_size, embed=32, hidden=64, layers=1):
        super().__init__()
        self.embed = nn.Embedding(vocab_size, embed,
                                  padding_idx=learned.PAD)
        self.lstm = nn.LSTM(embed, hidden, layers, batch_first=True)
        self.out = nn.Linear(hidden, vocab_size)

    def forward(self, windows):
        output, _ = self.lstm(self.embed(windows))
        return self.out(output[:, -1])

    def hidden(self, windows):
        """The LSTM's last output for each window (B x hidden).

        The computation of :meth:`forward` (the same kernels, on the same
        weights) without the module-call overhead, which dominates for
        the one or two windows the live scoring path asks for.
        """
        lstm = self.lstm
        size = (lstm.num_layers, windows.shape[0], lstm.hidden_size)
        zeros = torch.zeros(size, dtype=self.out.weight.dtype,
                            device=windows.device)
        output = torch.lstm(
            nn.functional.embedding(windows, self.embed.weight),
            (zeros, zeros), lstm._flat_weights, lstm.bias, lstm.num_layers,
            0.0, False, lstm.bidirectional, True)[0]
        return output[:, -1]


class DeepLogDetector(learned.LearnedDetector):
    """DeepLog (Du et al., CCS 2017) for OpenStack request sessions.

    * Key model: an LSTM predicts the next template key of a request or
      instance session from the previous ``window`` keys; a key outside
      the top ``g`` predictions scores its negative log-likelihood.
      Templates rare or unseen in training map to an "unknown" key (one
      for DEBUG/INFO, one for WARNING or worse), which the model learns to
      expect where normal sessions had rare keys.
    * Parameter model: timing values ("Took 12.3 seconds to spawn") per
      key and the gap between consecutive steps of a session, scored as
      the log tail probability of a log-normal (slower only).
    * Flow model: a session left idle after a key that normal sessions
      never end on, for longer than its next step ever took, raises "a
      step that should have followed is missing", decided in log time.

    * Rarity (shared, :class:`~logrca.detectors.learned.KeyRarity`): an
      INFO-or-worse record whose key occurred in few or no periods of the
      normal training logs.

    The top-g keys of every training window are precomputed (and saved in
    the artifact), and so are, at load time, the LSTM outputs of those
    windows (a key outside a known window's top g is then scored with a
    dot product); other predictions are cached, so the LSTM runs only for
    windows not seen in training, one run covering two of them, in the
    compiled kernel of :mod:`logrca.detectors.kernels` when it is built.
    """

    name = 'deeplog'
    FAMILIES = ('rarity', 'response', 'expectation', 'sequence', 'timing',
                'flow')
    PREDICTION_CACHE = 200000
    MAX_TOP_NLL = math.log(20.0)

    def __init__(self, conf, load=True):
        self.window = 10
        self.top_g = 9
        self.embed = 32
        self.hidden = 64
        self.net = None
        self.timing = learned.TimingModel()
        self.flow = learned.FlowModel()
        self.use_parameters = conf.detectors.deeplog_parameters
        self._pred_cache = {}
        self._table = {}
        self._logits = None
        self.table_windows = self.table_top = None
        self._deadlines = []
        self._seq = 0
        self._now = None
        super().__init__(conf, load=load)
        # Missing-step deadlines are only kept when the flow family can
        # raise (they hold their sessions until they pass).
        self._flow_on = 'flow' not in self.disabled

    # -- training ---------------------------------------------------------

    def _windows(self, ids):
        pad = [learned.PAD] * self.window
        padded = pad + ids
        for i, target in enumerate(ids):
            yield tuple(padded[i:i + self.window]), target

    def _fit(self, seqs, progress=None, epochs=None, time_budget=None):
        epochs = epochs or 5
        started = time.monotonic()
        id_seqs, time_seqs = [], []
        pairs = collections.Counter()
        samples = collections.defaultdict(list)
        for seq in seqs:
            ids = [self.vocab.get(k) for k in seq.keys]
            if seq.kind == sessions_mod.WINDOW:
                # Interleaved periodic tasks: scored by rarity only.
                continue
            id_seqs.append(ids)
            time_seqs.append(seq.times)
            pairs.update(self._windows(ids))
            if not self.use_parameters:
                continue
            prev = None
            for i, kid in enumerate(ids):
                values = seq.values[i]
                if values:
                    for pos, value in enumerate(values[:4]):
                        samples[(kid, pos)].append(value)
                t = seq.times[i]
                if prev is not None and t is not None:
                    samples[(ids[i - 1], kid, -1)].append(t - prev)
                prev = t
        self.timing.fit(samples)
        self.flow.fit(id_seqs, time_seqs)
        self.net = KeyLSTM(len(self.vocab), self.embed, self.hidden)
        self.net.to(self.device)
        items = list(pairs.items())
        windows = torch.tensor([w for (w, _), _ in items], dtype=torch.long)
        targets = torch.tensor([t for (_, t), _ in items], dtype=torch.long)
        # Unique (window, next) pairs weighted by how often they occurred:
        # the same maximum-likelihood objective at a fraction of the cost.
        weights = torch.tensor([c for _, c in items], dtype=torch.float)
        weights = weights / weights.mean()
        optim = torch.optim.Adam(self.net.parameters(), lr=3e-3)
        losses = []
        batch = 512
        n = len(items)
        order = list(range(n))
        rng = random.Random(0)
        LOG.info('deeplog: %d keys, %d unique windows from %d events',
                 len(self.vocab), n, self.training_summary['events'])
        for epoch in range(epochs):
            rng.shuffle(order)
            total = 0.0
            self.net.train()
            for start in range(0, n, batch):
                idx = torch.tensor(order[start:start + batch])
                x = windows[idx].to(self.device)
                y = targets[idx].to(self.device)
                w = weights[idx].to(self.device)
                loss = (nn.functional.cross_entropy(
                    self.net(x), y, reduction='none') * w).mean()
                optim.zero_grad()
                loss.backward()
                optim.step()
                total += loss.item() * len(idx)
            losses.append(total / n)
            if progress is not None:
                progress(epoch + 1, epochs, losses[-1])
            if time_budget and time.monotonic() - started > time_budget:
                LOG.warning('deeplog: time budget reached after %d epochs',
                            epoch + 1)
                break
        self.net.eval()
        self.net.cpu()
        self._pred_cache = {}
        self._build_table([w for (w, _), _ in items])
        self.training_summary['unique_windows'] = n
        self.training_summary['epochs'] = len(losses)
        self.training_summary['loss'] = losses
        return losses

    # -- artifacts --------------------------------------------------------

    def _build_table(self, windows):
        """Precompute the top-g next keys of the training windows.

        Live sessions mostly repeat windows seen in training: for those a
        key in the table scores 0 without running the LSTM, which is what
        makes scoring fast from the first record.
        """
        unique = sorted(set(windows))
        tops = []
        with torch.inference_mode():
            for start in range(0, len(unique), 4096):
                x = torch.tensor(unique[start:start + 4096],
                                 dtype=torch.long)
                logp = torch.log_softmax(self.net(x), dim=-1)
                val, idx = torch.topk(logp, min(self.top_g, logp.shape[1]))
                idx = idx.masked_fill(-val >= self.MAX_TOP_NLL, -1)
                tops.append(idx)
        width = min(self.top_g, len(self.vocab))
        self.table_windows = torch.tensor(unique or [[0] * self.window],
                                          dtype=torch.int32)
        self.table_top = (torch.cat(tops).to(torch.int32) if tops else
                          torch.full((1, width), -1, dtype=torch.int32))
        self._load_table()

    def _load_table(self):
        """Index the table and precompute its windows' LSTM outputs.

        The top g of a window is a tuple (at most ``top_g`` keys: a scan
        is as fast as a set look-up, and a small set costs five times the
        memory over 100,000 windows). Besides the top-g keys of each
        training window, the LSTM's last
        output and the log-sum-exp of its logits are computed here, in
        batches, so that a key *outside* a known window's top g (most of
        the scoring work on new logs) gets its negative log-likelihood
        from one dot product instead of an LSTM run.
        """
        self._table = {
            tuple(w): (tuple(k for k in top if k >= 0), row)
            for row, (w, top) in enumerate(zip(self.table_windows.tolist(),
                                               self.table_top.tolist()))}
        weight = self.net.out.weight.detach().cpu()
        bias = self.net.out.bias.detach().cpu()
        hidden, lse = [], []
        with torch.inference_mode():
            for start in range(0, len(self.table_windows), 4096):
                x = self.table_windows[start:start + 4096].long()
                h = self.net.hidden(x.to(self.device)).cpu()
                hidden.append(h)
                lse.append(torch.logsumexp(
                    nn.functional.linear(h, weight, bias), dim=-1))
        self._table_hidden = torch.cat(hidden).numpy()
        self._table_lse = torch.cat(lse).double().numpy()
        self._out_weight = weight.numpy()
        self._out_bias = bias.double().numpy()
        self._logits = kernels.LSTMLogits(self.net, self.device)

    def _tensors(self):
        tensors = dict(self.net.state_dict())
        tensors['table.windows'] = self.table_windows
        tensors['table.top'] = self.table_top
        return tensors

    def _metadata(self):
        return {'window': self.window, 'top_g': self.top_g,
                'embed': self.embed, 'hidden': self.hidden,
                'use_parameters': self.use_parameters,
                'timing': self.timing.to_json(),
                'flow': self.flow.to_json()}

    def _restore(self, tensors, meta):
        self.window = int(meta['window'])
        self.top_g = int(meta['top_g'])
        self.embed = int(meta['embed'])
        self.hidden = int(meta['hidden'])
        self.use_parameters = bool(meta.get('use_parameters', True))
        self.timing = learned.TimingModel.from_json(meta['timing'])
        self.flow = learned.FlowModel.from_json(meta['flow'])
        self.table_windows = tensors.pop('table.windows')
        self.table_top = tensors.pop('table.top')
        net = KeyLSTM(len(self.vocab), self.embed, self.hidden)
        net.load_state_dict(tensors)
        net.eval()
        self.net = net.to(self.device)
        self._load_table()
        self._pred_cache = {}

    # -- scoring ----------------------------------------------------------

    def _predict(self, window):
        """Logits of the next key after ``window`` (a float32 array)."""
        return self._logits([window])[0]

    def next_template(self, records):
        """The key text that normally follows ``records`` (RCA context).

        The key model's most likely next key after the last ``window``
        records (special keys skipped), or None when untrained. This is
        the "missing step" an RCA context reports for a silent failure.
        """
        if self.net is None or not records:
            return None
        ids = [self.record_key(r)[1] for r in records[-self.window:]]
        window = tuple([learned.PAD] * (self.window - len(ids)) + ids)
        for kid in np.argsort(-self._predict(window),
                              kind='stable')[:5].tolist():
            if kid >= len(learned.SPECIALS):
                return self.vocab.keys[kid]
        return None

    def sequence_score(self, window, kid, state=None):
        """Negative log-likelihood of ``kid`` after ``window`` (0 in top g).

        A window of the training table needs no LSTM run (see
        :meth:`_load_table`); the score of other (window, key) pairs is
        cached, so the LSTM runs only for pairs not seen before. With a
        session's ``state``, a window missing from the table is
        predicted together with the window the session's next record
        will be scored after (``window[1:] + (kid,)``, when that one is
        not in the table either): windows never seen in training come in
        runs, and two windows cost little more than one, so the LSTM
        runs about half as often. The look-ahead is kept in ``state``
        until the next scored record.
        """
        entry = self._table.get(window)
        if entry is not None:
            top, row = entry
            if kid in top:
                return 0.0
            # Outside the top g of a training window: its likelihood from
            # the precomputed LSTM output (see _load_table).
            return float(self._table_lse[row] - (
                float(self._table_hidden[row] @ self._out_weight[kid])
                + self._out_bias[kid]))
        pair = (window, kid)
        score = self._pred_cache.get(pair)
        if score is None:
            if len(self._pred_cache) >= self.PREDICTION_CACHE:
                self._pred_cache.clear()
            ahead = state.pop('ahead', None) if state is not None else None
            if ahead is not None and ahead[0] == window:
                logits = ahead[1]
            else:
                batch = [window]
                following = window[1:] + (kid,)
                if state is not None and following not in self._table:
                    batch.append(following)
                rows = self._logits(batch)
                logits = rows[0]
                if len(batch) > 1:
                    state['ahead'] = (following, rows[1])
            score = self._nll(logits, kid)
            self._pred_cache[pair] = score
        return score

    def _nll(self, logits, kid):
        """Negative log-likelihood of ``kid``, 0 when in the top g.

        In the top g (fewer than g keys more likely) and not negligible:
        a small vocabulary puts every key in the top g.
        """
        target = float(logits[kid])
        high = float(logits.max())
        nll = high + math.log(float(np.exp(
            logits.astype(np.float64) - high).sum())) - target
        if nll < self.MAX_TOP_NLL and \
                int(np.count_nonzero(logits > target)) < self.top_g:
            return 0.0
        return nll

    def _state(self, session):
        st = session.state.get(self.name)
        if st is None:
            st = session.state[self.name] = {
                'win': (learned.PAD,) * self.window, 'last_id': None,
                'last_ts': None, 'raised': False, 'count': 0}
        return st

    def observe(self, record, sessions):
        if self.net is None:
            self._require_trained()
        text, kid = self.record_key(record)
        now = record.timestamp
        found = []
        if now is not None:
            self._now = now
            if self._deadlines and self._deadlines[0][0] <= now:
                found.extend(self._expire(now))
        found.extend(self.expectation_anomalies(text, record, sessions))
        rare = self.key_hit(text, record)
        for session in learned.home_sessions(sessions):
            st = self._state(session)
            if rare is not None:
                hit = rare
            elif session.kind == sessions_mod.WINDOW:
                hit = None
            else:
                hit = self._score(st, kid, text, record)
            st['win'] = st['win'][1:] + (kid,)
            st['last_id'] = kid
            st['count'] += 1
            if now is not None:
                st['last_ts'] = now
            if hit is not None and not st['raised']:
                st['raised'] = True
                family, score, reason = hit
                found.append(learned.make_anomaly(
                    self.name, session, record, list(session.records)[-20:],
                    reason, score, self.thresholds[family]))
            if (now is not None and not st['raised'] and self._flow_on
                    and session.kind != sessions_mod.WINDOW):
                timeout = self.flow.timeout(kid)
                if timeout is not None:
                    self._seq += 1
                    heapq.heappush(self._deadlines, (
                        now + timeout, self._seq, session, st['count']))
        return found

    def _score(self, st, kid, text, record):
        """The family, score and reason of a record that raises, or None.
        """
        if kid > learned.UNK_ERR:
            # Keys rare in training map to the unknown keys: those are
            # the rarity model's to judge, not the LSTM's.
            score = self.sequence_score(st['win'], kid, st)
            if score > 0.0 and self._note('sequence', score):
                return ('sequence', score, 'unexpected next template')
        if not self.use_parameters or 'timing' in self.disabled:
            # A switched-off family never raises: skip its work.
            return None
        now = record.timestamp
        if st['last_ts'] is not None and now is not None:
            gap = now - st['last_ts']
            nll = tail_nll(self.timing.score((st['last_id'], kid, -1), gap))
            if nll > 0.0 and self._note('timing', nll):
                return ('timing', nll,
                        'step took %.1f s, unusually long' % gap)
        if learned.TIMING_WORDS.search(text):
            for pos, value in enumerate(learned.numbers(record.message)[:4]):
                nll = tail_nll(self.timing.score((kid, pos), value))
                if nll > 0.0 and self._note('timing', nll):
                    return ('timing', nll, 'unusual value %g' % value)
        return None

    def reset_stream(self):
        super().reset_stream()
        # Missing-step deadlines hold the last stream's sessions.
        self._deadlines = []
        self._now = None

    def _expire(self, now):
        """Raise missing steps whose deadline passed in log time."""
        found = []
        while self._deadlines and self._deadlines[0][0] <= now:
            _deadline, _seq, session, count = heapq.heappop(self._deadlines)
            st = session.state.get(self.name)
            if (st is None or st['raised'] or st.get('closed')
                    or st['count'] != count):
                continue
            found.extend(self._missing(session, st, None))
        return found

    def _missing(self, session, st, record):
        score = self.flow.end_score(st['last_id'])
        if score <= 0.0 or not self._note('flow', score):
            return []
        st['raised'] = True
        last = session.records[-1] if session.records else None
        key = self.vocab.keys[st['last_id']]
        reason = ('a step that should have followed is missing: nothing '
                  'after "%s" for %.0f s' % (key[:120], (self._now or 0)
                                             - (st['last_ts'] or 0)))
        anomaly = learned.make_anomaly(
            self.name, session, last, list(session.records)[-20:], reason,
            score, self.thresholds['flow'])
        anomaly.raised_at = self._now
        return [anomaly]

    def on_session_closed(self, session):
        st = session.state.get(self.name)
        if st is None:
            return []
        st['closed'] = True
        if (st['raised'] or session.kind == sessions_mod.WINDOW
                or st['last_id'] is None):
            return []
        # Only a session closed by its idle timeout in log time: one cut
        # by the end of the input (shutdown, end of a replay) is not
        # known to be finished.
        window = self.conf.agent.session_window
        if (self._now is None or st['last_ts'] is None
                or self._now - st['last_ts'] < window * 0.9):
            return []
        return self._missing(session, st, None)
