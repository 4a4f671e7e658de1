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

"""Common parts of the learned detectors: keys, timing, streaming, limits."""

import collections
import math
import os
import re

from oslo_log import log

from logrca.agent import sessions as sessions_mod
from logrca.detectors import anomaly
from logrca.detectors import artifact
from logrca.detectors import base
from logrca.detectors import expectation as expectation_mod
from logrca.detectors import periods as periods_mod
from logrca.parsing import access
from logrca.parsing import shape as shape_mod
from logrca.parsing import speedups

LOG = log.getLogger(__name__)

# Special key ids shared by every driver: padding, an unknown key of level
# DEBUG/INFO, an unknown key of level WARNING or worse, LogBERT's mask and
# its hypersphere (DIST) token.
PAD, UNK, UNK_ERR, MASK, DIST = 0, 1, 2, 3, 4
SPECIALS = ('<pad>', '<unk>', '<unk-err>', '<mask>', '<dist>')
ALARM_LEVELS = frozenset(('WARNING', 'ERROR', 'CRITICAL'))


def unknown_id(key):
    """The unknown-key id for a key text (its level comes first)."""
    return UNK_ERR if key.split(' ', 1)[0] in ALARM_LEVELS else UNK

# Variable parts left in a message's shape: ids, addresses, numbers and
# quoted values are masked so that one event gets one key. Hand-written
# because shapes (token by token) still carry some of these.
_MASKS = [
    re.compile(r'req-[0-9a-f-]{36}'),
    re.compile(r'[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-'
               r'[0-9a-fA-F]{4}-[0-9a-fA-F]{12}'),
    re.compile(r'\b[0-9a-f]{32,64}\b'),
    re.compile(r'\b\d{1,3}(?:\.\d{1,3}){3}(?::\d+)?(?:/\d+)?\b'),
    re.compile(r'\b(?:[0-9a-f]{1,4}:){2,7}[0-9a-f]{1,4}\b'),
    re.compile(r'\b0x[0-9a-fA-F]+\b'),
    re.compile(r'(?<![A-Za-z])[-+]?\d+(?:\.\d+)?(?:e[-+]?\d+)?'),
    re.compile(r"'[^'\s]{12,}'"),
]
_SPACES = re.compile(r'\s+')
_STARS = re.compile(r'(?:<\*>[\s,.:/_-]*){2,}')
# Numbers kept as parameter values (durations, sizes, counts).
_NUMBER = re.compile(r'(?<![\w.-])(\d+(?:\.\d+)?)(?![\w-])')
_IDS = re.compile(_MASKS[0].pattern + '|' + _MASKS[1].pattern + '|'
                  + _MASKS[2].pattern + '|' + _MASKS[3].pattern)
# Key texts whose numbers are timings worth modelling.
TIMING_WORDS = re.compile(r'\b(?:seconds?|secs?|took|elapsed|duration)\b',
                           re.IGNORECASE)
_MAX_KEY_LENGTH = 300


def normalise(text):
    """The key text of a template or message: variable parts masked."""
    text = text[:_MAX_KEY_LENGTH * 2]
    for pattern in _MASKS:
        text = pattern.sub('<*>', text)
    text = _STARS.sub('<*> ', text)
    return _SPACES.sub(' ', text).strip()[:_MAX_KEY_LENGTH]


# Masked tokens and normalised shapes (pure functions' caches, shared by
# all detectors; shapes repeat far more often than messages).
_TOKENS = {}
_SHAPES = {}
_CACHE_MAX = 65536


def _shape_of(message):
    out = []
    cache = _TOKENS
    for token in message.split():
        masked = cache.get(token)
        if masked is None:
            if len(cache) >= _CACHE_MAX:
                cache.clear()
            masked = cache[token] = shape_mod.mask_token(token)
        out.append(masked)
    return ' '.join(out)


# shape_of's implementation: the parsing accelerator's when it is loaded
# (the same results, compared by the unit tests), else _shape_of.
_shape_impl = _shape_of


def _install(module):
    global _shape_impl
    if module is None:
        _shape_impl = _shape_of
    else:
        compiled = module.shape_of

        def _shape_impl(message):
            return compiled(message, _TOKENS, _CACHE_MAX)


speedups.register(_install)


def clear_caches():
    """Empty the key caches shared by all detectors (benchmarks start
    cold)."""
    _TOKENS.clear()
    _SHAPES.clear()


def shape_of(message):
    """``message`` with each variable token masked (ids, numbers, paths).

    The first stage of the shape miner (:func:`~logrca.parsing.shape.
    mask_token` on every token), without its merging: a pure function of
    the message.
    """
    return _shape_impl(message)


def key_text(record):
    """The key of a record: level, logger and its message's shape.

    Not the miner's template: a template widens as the miner merges new
    variants into it (``'status': u'creating'`` becomes ``'status': <*>``
    once a faulty run logs another status), so the key of one event would
    change between training and scoring, and with it every count, rule and
    vocabulary entry learned for it. The shape depends on the message
    alone.
    """
    shape = shape_of((record.message or '')[:_MAX_KEY_LENGTH * 2])
    text = _SHAPES.get(shape)
    if text is None:
        if len(_SHAPES) >= _CACHE_MAX:
            _SHAPES.clear()
        text = _SHAPES[shape] = normalise(shape)
    return '%s %s %s' % (record.level or '-', record.logger or '-', text)


def response_key(record):
    """The key of an API request answered with an error status, or None.

    ``LEVEL logger METHOD path Nxx``: the level is ERROR for a 5xx status
    and WARNING for a 4xx one (the access line itself is logged at INFO
    whatever the status), the path shaped by :func:`path_shape`. A
    keypair or server create refused with 400, or the metadata service
    answering an instance with 404, is a failure the user saw without any
    ERROR line.
    """
    response = access.error_response(record.message)
    if response is None:
        return None
    return '%s %s %s %s %dxx' % (
        'ERROR' if response.status >= 500 else 'WARNING',
        record.logger or '-', response.method,
        path_shape(response.path), response.status // 100)


_COLLECTION = re.compile(r'^[A-Za-z][\w-]*s$')


def path_shape(path):
    """A request path with its variable segments masked.

    The query is dropped; versions, ids and numbers are masked as in
    messages, and the segment after a collection (``servers``,
    ``networks``, ``os-keypairs``) is masked as its member's id or name:
    ``/v2.0/networks/public`` is ``/<*>/networks/<*>``, so the names a
    cloud's users give do not make new keys.
    """
    out = []
    after_collection = False
    for segment in path.split('?', 1)[0][:_MAX_KEY_LENGTH].split('/'):
        if not segment:
            out.append(segment)
            continue
        masked = '<*>' if after_collection else \
            shape_mod.mask_token(segment)
        after_collection = masked == segment and \
            bool(_COLLECTION.match(segment))
        out.append(masked)
    return '/'.join(out)


def numbers(message):
    """Numeric parameter values of a message (ids removed first)."""
    return [float(x) for x in _NUMBER.findall(_IDS.sub(' ', message))]


def release_memory():
    """Give the heap freed by loading a model back to the system.

    Loading builds large temporaries (tensor copies, lists of the training
    windows) that glibc's allocator keeps after they are freed: 300 MB of
    a DeepLog artifact of 110,000 windows stayed resident. ``malloc_trim``
    returns it; elsewhere (another C library) this only collects garbage.
    """
    import ctypes
    import gc
    gc.collect()
    try:
        ctypes.CDLL(None).malloc_trim(0)
    except (AttributeError, OSError):
        pass


def pick_device(conf):
    """The torch device from ``[detectors] device``.

    Also applies ``[detectors] cpu_threads`` to torch (process-wide).
    """
    import torch
    threads = conf.detectors.cpu_threads
    if threads and torch.get_num_threads() != threads:
        torch.set_num_threads(threads)
    choice = conf.detectors.device
    if choice == 'cuda' or (choice == 'auto' and torch.cuda.is_available()):
        if not torch.cuda.is_available():
            raise base.DetectorError('[detectors] device = cuda but no CUDA '
                                     'device is available')
        return torch.device('cuda')
    return torch.device('cpu')


class Vocabulary:
    """Template key text to id; ids 0-3 are :data:`SPECIALS`.

    Artifacts store the key texts, so a model trained with one miner state
    maps the templates of another by text, not by miner id.
    """

    def __init__(self, keys=()):
        self.keys = list(SPECIALS)
        self.index = {k: i for i, k in enumerate(self.keys)}
        for key in keys:
            self.add(key)

    def add(self, key):
        idx = self.index.get(key)
        if idx is None:
            idx = self.index[key] = len(self.keys)
            self.keys.append(key)
        return idx

    def get(self, key):
        idx = self.index.get(key)
        return unknown_id(key) if idx is None else idx

    def __len__(self):
        return len(self.keys)

    def to_json(self):
        return {k: i for i, k in enumerate(self.keys)}

    @classmethod
    def from_json(cls, data):
        vocab = cls()
        vocab.keys = [None] * len(data)
        for key, idx in data.items():
            vocab.keys[int(idx)] = key
        if vocab.keys[:len(SPECIALS)] != list(SPECIALS) or None in vocab.keys:
            raise artifact.ArtifactError('malformed template vocabulary')
        vocab.index = {k: i for i, k in enumerate(vocab.keys)}
        return vocab


class Sequence:
    """A compact closed session used for training: keys, times, values."""

    __slots__ = ('kind', 'keys', 'times', 'values', 'levels', 'source',
                 'responses')

    def __init__(self, kind, keys, times, values, levels, source=None,
                 responses=()):
        self.kind = kind
        self.keys = keys
        self.times = times
        self.values = values
        self.levels = levels
        #: Which log source (a replayed run, an agent) it came from, when
        #: known: sequences of different sources never share a period.
        self.source = source
        #: :func:`response_key` of its requests answered with an error.
        self.responses = list(responses)

    @classmethod
    def from_session(cls, session, source=None):
        keys, times, values, levels, responses = [], [], [], [], []
        window = session.kind == sessions_mod.WINDOW
        for record in session.records:
            if window and (record.request_id or record.global_request_id
                           or record.instance_id):
                # Scored in its request or instance session instead.
                continue
            key = key_text(record)
            keys.append(key)
            times.append(record.timestamp)
            values.append(numbers(record.message)
                          if TIMING_WORDS.search(key) else None)
            levels.append(record.level)
            if 'HTTP/' in record.message:
                response = response_key(record)
                if response is not None:
                    responses.append(response)
        return cls(session.kind, keys, times, values, levels, source,
                   responses)


def as_sequences(sessions):
    """Closed sessions (or :class:`Sequence` objects) to sequences."""
    out = []
    for session in sessions:
        if isinstance(session, Sequence):
            out.append(session)
        elif session.records:
            out.append(Sequence.from_session(session))
    return out


class TimingModel:
    """Normal values of timing parameters and gaps, per key.

    DeepLog models parameter vectors with an LSTM; with the few timing
    values OpenStack logs carry per template, a robust log-normal per
    (key, position) is as good and costs nothing to score. Scores are
    one-sided z-scores of log values: only *slower* than normal counts.
    """

    MIN_SAMPLES = 20

    def __init__(self):
        self.stats = {}

    @staticmethod
    def _fit_one(values):
        logs = sorted(math.log1p(max(v, 0.0)) for v in values)
        n = len(logs)
        mean = sum(logs) / n
        var = sum((x - mean) ** 2 for x in logs) / max(n - 1, 1)
        hi = logs[min(n - 1, int(0.99 * n))]
        return [mean, max(math.sqrt(var), 0.25), hi, n]

    def fit(self, samples):
        """``samples``: dict key -> list of values."""
        self.stats = {k: self._fit_one(v) for k, v in samples.items()
                      if len(v) >= self.MIN_SAMPLES}

    def score(self, key, value):
        stat = self.stats.get(key)
        if stat is None:
            return 0.0
        mean, std, hi, _n = stat
        x = math.log1p(max(value, 0.0))
        if x <= hi:
            return 0.0
        return (x - mean) / std

    def to_json(self):
        return {'|'.join(map(str, k)) if isinstance(k, tuple) else str(k): v
                for k, v in self.stats.items()}

    @classmethod
    def from_json(cls, data, tuple_keys=True):
        model = cls()
        for k, v in data.items():
            key = tuple(int(p) for p in k.split('|')) if tuple_keys else k
            model.stats[key] = list(v)
        return model


class FlowModel:
    """What normally follows a key within a session, in log time.

    Learned from training sessions: how often a session ends right after a
    key, and how long the next step of the session takes after it. A live
    session idle after a key that is normally followed by more steps, for
    longer than the next step ever took in training (with a margin), is
    "a step that should have followed is missing". Decided in log time.
    """

    def __init__(self, min_count=20, max_end_rate=0.002, margin=3.0,
                 min_timeout=20.0, max_timeout=280.0):
        self.min_count = min_count
        self.max_end_rate = max_end_rate
        self.margin = margin
        self.min_timeout = min_timeout
        self.max_timeout = max_timeout
        # key id -> [count, ends, p100 gap]
        self.stats = {}

    def fit(self, id_sequences, time_sequences):
        counts = collections.Counter()
        ends = collections.Counter()
        gaps = collections.defaultdict(list)
        for ids, times in zip(id_sequences, time_sequences):
            for i, key in enumerate(ids):
                counts[key] += 1
                if i + 1 == len(ids):
                    ends[key] += 1
                elif times[i] is not None and times[i + 1] is not None:
                    gaps[key].append(times[i + 1] - times[i])
        self.stats = {}
        for key, count in counts.items():
            gap = max(gaps[key]) if gaps[key] else 0.0
            self.stats[key] = [count, ends[key], gap]

    def timeout(self, key):
        """Seconds after ``key`` after which silence is anomalous, or None."""
        stat = self.stats.get(key)
        if stat is None:
            return None
        count, ends, gap = stat
        if count < self.min_count or ends > self.max_end_rate * count:
            return None
        return min(max(gap * self.margin, self.min_timeout), self.max_timeout)

    def end_score(self, key):
        """How unusual it is for a session to end after ``key`` (0..)."""
        stat = self.stats.get(key)
        if stat is None or stat[0] < self.min_count:
            return 0.0
        count, ends, _gap = stat
        return -math.log((ends + 0.5) / (count + 1.0))

    def to_json(self):
        return {'params': [self.min_count, self.max_end_rate, self.margin,
                           self.min_timeout, self.max_timeout],
                'stats': {str(k): v for k, v in self.stats.items()}}

    @classmethod
    def from_json(cls, data):
        model = cls(*data['params'])
        model.stats = {int(k): v for k, v in data['stats'].items()}
        return model


class KeyRarity:
    """In how many periods of normal logs each key occurred.

    Normal runs of a cloud are regular: a WARNING or ERROR template that
    shows up now and then in normal logs is noise, one that never or
    hardly ever does is a symptom. What matters is in how many *periods*
    of normal operation a key occurred, not how many lines it has (one
    noisy run can log an error a thousand times). A period is a burst of
    activity: a new one starts after ``gap`` seconds of log-time silence
    or after ``length`` seconds; a workload run of the fault-injection
    data is one or two periods, a busy cloud one period per ``length``.

    The score of a key is ``-log`` of its smoothed period frequency plus a
    bonus by level, so that at equal rarity an ERROR outranks an INFO;
    DEBUG records are not scored (too many of their keys are new in
    normal logs).
    """

    LEVEL_BONUS = {'INFO': 0.0, 'WARNING': 1.0, 'ERROR': 2.0,
                   'CRITICAL': 2.0}

    def __init__(self, gap=60.0, length=900.0):
        self.gap = gap
        self.length = length
        self.periods = 0
        # key text -> number of periods it occurred in
        self.counts = {}
        #: Cross-fitted (leave-one-period-out) largest score per period.
        self.loo_scores = []

    def fit(self, seqs, keys_of=None):
        """Learn from :class:`Sequence` objects (keys and times).

        :param keys_of: the keys counted in a sequence (default: its
            ``keys``; the response model counts its ``responses``).
        """
        seen = collections.defaultdict(set)
        period = -1
        for period, members in enumerate(
                periods_mod.split(seqs, self.gap, self.length)):
            for seq in members:
                for key in (seq.keys if keys_of is None else keys_of(seq)):
                    seen[key].add(period)
        self.periods = period + 1
        self.counts = {k: len(v) for k, v in seen.items()}
        # Cross-fitted scores: the largest score of each period's records
        # under the counts of the other periods (its own occurrence taken
        # out), on the scale of the full model.
        best = [0.0] * self.periods
        for key, where in seen.items():
            score = self.score_count(key, len(where) - 1)
            if score > 0.0:
                for p in where:
                    if score > best[p]:
                        best[p] = score
        self.loo_scores = best

    def score(self, text, level):
        """Rarity of a key at a level (0.0 for levels not scored)."""
        bonus = self.LEVEL_BONUS.get(level)
        if bonus is None or not self.periods:
            return 0.0
        count = self.counts.get(text, 0)
        return math.log((self.periods + 1.0) / (count + 0.5)) + bonus

    def score_count(self, text, count):
        """Score of a key text (level first) seen in ``count`` periods."""
        bonus = self.LEVEL_BONUS.get(text.split(' ', 1)[0])
        if bonus is None or not self.periods:
            return 0.0
        return math.log((self.periods + 1.0) / (count + 0.5)) + bonus

    def to_json(self):
        return {'gap': self.gap, 'length': self.length,
                'periods': self.periods,
                # Only keys of scored levels are needed live.
                'counts': {k: v for k, v in self.counts.items()
                           if k.split(' ', 1)[0] in self.LEVEL_BONUS},
                'loo_scores': [round(x, 4) for x in self.loo_scores]}

    @classmethod
    def from_json(cls, data):
        model = cls(float(data['gap']), float(data['length']))
        model.periods = int(data['periods'])
        model.counts = {k: int(v) for k, v in data['counts'].items()}
        model.loo_scores = [float(x) for x in data.get('loo_scores', [])]
        return model


def make_anomaly(detector, session, record, cited, reason, score,
                 threshold):
    """Build an :class:`Anomaly` citing ``cited`` records (at most 20)."""
    cited = list(cited)[-20:]
    evidence = [anomaly.Evidence.from_record(r) for r in cited]
    stamps = [r.timestamp for r in cited if r.timestamp is not None]
    projects = [r.project_id for r in cited if r.project_id]
    users = [r.user_id for r in cited if r.user_id]
    return anomaly.Anomaly(
        detector=detector, score=float(score), reason=reason,
        session_key=session.key,
        start_time=min(stamps) if stamps else None,
        end_time=max(stamps) if stamps else None,
        raised_at=record.timestamp if record is not None else session.last_ts,
        service=record.stream if record is not None else None,
        host=record.host if record is not None else None,
        project_id=projects[0] if projects else None,
        user_id=users[0] if users else None,
        request_ids=sorted({r.request_id for r in cited if r.request_id}),
        instance_ids=sorted({r.instance_id for r in cited
                             if r.instance_id}),
        evidence=evidence, threshold=float(threshold))


def home_sessions(sessions):
    """The sessions a record's sequence is modelled in.

    Request and instance sessions carry the steps of one operation; the
    service window is only used for records that have neither.
    """
    homes = [s for s in sessions if s.kind != sessions_mod.WINDOW]
    return homes or [s for s in sessions if s.kind == sessions_mod.WINDOW]


def above(value):
    """A threshold just above ``value`` (a score equal to it stays below)."""
    return value + max(abs(value) * 0.01, 1e-3)


def calibrate_union(runs, active, fixed, target_far):
    """Thresholds of score families calibrated together on validation runs.

    :param runs: one dict per normal validation run, family -> the largest
        score the run reached (``-inf`` when none).
    :param active: the families to calibrate, in tie-break order.
    :param fixed: family -> threshold of the families already set (the
        cross-fitted ones); the runs they raise count against the budget.
    :param target_far: share of the runs allowed to raise, all families
        together.
    :returns: ``(thresholds of the active families, raising run indexes)``.

    Each active family starts just above its largest validation score (no
    run raises); then, while no more than ``floor(target_far * runs)``
    runs would raise (those of ``fixed`` included), the family whose next
    lower score adds the fewest raising runs is lowered to it (ties: the
    first of ``active``). A family may be any hashable name, so an
    ensemble calibrates its members' families as one union.
    """
    flagged = {i for i, r in enumerate(runs)
               if any(r.get(f, -math.inf) > t for f, t in fixed.items())}
    levels = {f: sorted({r[f] for r in runs if not math.isinf(r[f])},
                        reverse=True) for f in active}
    # Index into levels[f]: thresholds sit just above levels[f][pos].
    pos = dict.fromkeys(active, 0)
    allowed = int(target_far * len(runs) + 1e-9)
    base_flagged = set(flagged)

    def raising(positions):
        out = set(base_flagged)
        for f in active:
            k = positions[f]
            if k > 0:
                cut = levels[f][k - 1]
                out.update(i for i, r in enumerate(runs) if r[f] >= cut)
        return out

    while True:
        best = None
        for f in active:
            if pos[f] >= len(levels[f]) - 1:
                continue
            trial = dict(pos)
            trial[f] += 1
            got = raising(trial)
            if len(got) <= allowed and (
                    best is None or len(got) < len(best[1])):
                best = (f, got)
        if best is None:
            break
        pos[best[0]] += 1
        flagged = best[1]
    picked = {}
    for family in active:
        values = levels[family]
        picked[family] = above(values[pos[family]] if values else 0.0)
    return picked, flagged


def false_alarm_rate(normals, threshold):
    """Expected share of new normal units raising at ``threshold``.

    ``normals`` are the scores of ``n`` normal units (validation runs, or
    cross-fitted training periods); ``k`` of them are above the threshold.
    A new unit exchangeable with them is above it with probability about
    ``(k + 1) / (n + 1)``: a threshold just above the largest of 90
    validation runs still raises on about 1 % of new runs, which counting
    ``k / n`` (0 here) forgets. An infinite threshold never raises.
    """
    if math.isinf(threshold):
        return 0.0
    k = sum(1 for s in normals if s > threshold)
    return (k + 1.0) / (len(normals) + 1.0)


def allocate_budget(normals, failures, target_far):
    """Thresholds that detect the most labelled failures within a budget.

    :param normals: family -> normal scores (cross-fitted training periods
        for the families that have them, else the validation runs'
        maxima).
    :param failures: one dict per labelled failure run of TRAINING tests
        (never of the tests being scored), family -> the run's largest
        score.
    :param target_far: the false-alarm budget: the families' expected
        rates (:func:`false_alarm_rate`) add up to at most this (their sum
        bounds the rate of the union).
    :returns: family -> threshold (infinity: the family never raises).

    Every family starts switched off. Each step lowers one family's
    threshold to the candidate (just above one of its normal levels) with
    the most newly detected failures per unit of added false-alarm rate,
    among the moves that keep the sum within the budget; it stops when no
    move detects more. A family that detects nothing the others miss at a
    price the budget allows stays off.
    """
    families = list(normals)
    cands = {}
    for f in families:
        levels = sorted({s for s in normals[f] if not math.isinf(s)},
                        reverse=True)
        cands[f] = [above(v) for v in levels]
        if not levels:
            # Never scored on normal logs: any score of a failure is
            # news (at the price of one normal unit in n + 1).
            scored = [r.get(f, -math.inf) for r in failures]
            low = min((v for v in scored if not math.isinf(v)),
                      default=None)
            if low is not None:
                cands[f] = [low - max(abs(low) * 0.01, 1e-3)]
    hits = {f: {t: frozenset(i for i, r in enumerate(failures)
                             if r.get(f, -math.inf) > t)
                for t in cands[f]} for f in families}
    rates = {f: {t: false_alarm_rate(normals[f], t) for t in cands[f]}
             for f in families}
    thresholds = dict.fromkeys(families, math.inf)
    spent = dict.fromkeys(families, 0.0)
    caught = set()
    while True:
        total = sum(spent.values())
        best = None
        for f in families:
            for t in cands[f]:
                if t >= thresholds[f]:
                    continue
                cost = rates[f][t] - spent[f]
                if total + cost > target_far + 1e-12:
                    continue
                gain = len(hits[f][t] - caught)
                if gain <= 0:
                    continue
                value = gain / max(cost, 1e-9)
                if best is None or value > best[0]:
                    best = (value, f, t)
        if best is None:
            break
        _value, f, t = best
        thresholds[f] = t
        spent[f] = rates[f][t]
        caught |= hits[f][t]
    return thresholds


class LearnedDetector(base.Detector):
    """Shared behaviour of the learned drivers.

    Subclasses implement :meth:`_fit`, :meth:`_tensors`, :meth:`_metadata`,
    :meth:`_restore` and the scoring hooks. A score above ``threshold``
    raises one anomaly per session; ``max_seen`` keeps the largest score
    seen since :meth:`reset_max` (used by calibration).
    """

    trainable = True
    #: Score families, each with its own threshold (calibrated so that
    #: together they meet the target false-alarm rate).
    FAMILIES = ('score',)
    #: Fewer training sequences than this is refused.
    MIN_SEQUENCES = 10
    #: Keys seen fewer times in training are learned as unknown keys.
    MIN_KEY_COUNT = 2
    #: Entries of the key cache (template or message -> key).
    KEY_CACHE = 100000

    def __init__(self, conf, load=True):
        super().__init__(conf)
        self.device = pick_device(conf)
        self.vocab = None
        # Score family -> threshold; a score above it raises an anomaly.
        self.thresholds = dict.fromkeys(self.FAMILIES, math.inf)
        self.training_summary = {}
        self.max_seen = dict.fromkeys(self.FAMILIES, -math.inf)
        self.stats = collections.Counter()
        self._key_cache = {}
        self.rarity = KeyRarity()
        # The same model over the requests answered with an error status
        # (:func:`response_key`): the ``response`` family.
        self.responses = KeyRarity()
        self.expectation = expectation_mod.ExpectationModel()
        # Score families switched off (ablations): never raise.
        self.disabled = frozenset(
            getattr(conf.detectors, 'disabled_families', None) or ())
        path = self.artifact_path()
        if load and path and os.path.exists(
                os.path.join(path, artifact.METADATA)):
            self.load(path)

    def artifact_path(self):
        model_dir = self.conf.detectors.model_dir
        return os.path.join(model_dir, self.name) if model_dir else None

    @property
    def trained(self):
        return self.vocab is not None

    def _require_trained(self):
        if not self.trained:
            raise base.DetectorError(
                'detector %s has no model: train one with "logrca-manage '
                'detector train --driver %s" into %s'
                % (self.name, self.name, self.artifact_path()))

    def record_key(self, record):
        """``(key text, key id)`` of a live record, cached."""
        cache_key = (record.level, record.logger, record.message)
        hit = self._key_cache.get(cache_key)
        if hit is None:
            if len(self._key_cache) >= self.KEY_CACHE:
                self._key_cache.clear()
            text = key_text(record)
            hit = self._key_cache[cache_key] = (text, self.lookup(text))
        return hit

    def lookup(self, text):
        """Key id of a key text (drivers may map unseen keys smarter)."""
        return self.vocab.get(text)

    def reset_max(self):
        """Forget the largest scores seen (before each calibration run)."""
        self.max_seen = dict.fromkeys(self.FAMILIES, -math.inf)

    def reset_stream(self):
        # The expectation model's period (keys seen, pending deadlines).
        self.expectation.reset()

    def _note(self, family, score):
        """Record a score; True when it is above its threshold."""
        if score > self.max_seen[family]:
            self.max_seen[family] = score
        return score > self.thresholds[family] and family not in self.disabled

    def rarity_hit(self, text, record):
        """The rarity score of a record when it raises, else None."""
        score = self.rarity.score(text, record.level)
        if score > 0.0 and self._note('rarity', score):
            return score
        return None

    def response_hit(self, record):
        """``(score, key)`` of an error response when it raises, else None.
        """
        if not self.responses.periods or 'response' not in self.FAMILIES:
            return None
        key = response_key(record)
        if key is None:
            return None
        score = self.responses.score(key, key.split(' ', 1)[0])
        if score > 0.0 and self._note('response', score):
            return score, key
        return None

    def key_hit(self, text, record):
        """``(family, score, reason)`` when the record alone raises.

        A key (``rarity``) or an error response (``response``) too rare in
        normal logs; None otherwise.
        """
        rare = self.rarity_hit(text, record)
        if rare is not None:
            return 'rarity', rare, self.rarity_reason(text, record)
        if 'HTTP/' not in record.message:
            return None
        hit = self.response_hit(record)
        if hit is None:
            return None
        score, key = hit
        count = self.responses.counts.get(key, 0)
        return 'response', score, (
            'API request %s answered with an error status %s in normal '
            'logs (%d of %d periods)' % (
                key.split(' ', 2)[2], 'never seen' if not count else 'rare',
                count, self.responses.periods))

    def expectation_hit(self, text, record):
        """``(score, reason, cited records)`` when missing steps raise.

        Keys that normally follow others within the period (see
        :mod:`~logrca.detectors.expectation`) and whose deadline passed
        in log time; raised at most once per period.
        """
        model = self.expectation
        if 'expectation' not in self.FAMILIES or model.empty:
            return None
        missing, causes = model.observe(text, record.level,
                                        record.timestamp, record)
        return self._expectation_raise(missing, causes)

    def _expectation_raise(self, missing, causes):
        model = self.expectation
        if not missing or model.raised:
            return None
        if not self._note('expectation', float(missing)):
            return None
        model.raised = True
        keys = model.missing_keys()
        reason = ('%d step(s) that normally follow in the same period are '
                  'missing, e.g. "%s"' % (missing, keys[0][:120]))
        return float(missing), reason, causes

    def on_stream_end(self, sessions_of):
        """Missing steps whose deadline the end of the stream passes.

        Filed under a home session of the last record they should have
        followed.
        """
        model = self.expectation
        if 'expectation' not in self.FAMILIES or model.empty:
            return []
        hit = self._expectation_raise(*model.end())
        if hit is None:
            return []
        score, reason, causes = hit
        homes = home_sessions(sessions_of(causes[-1])) if causes else []
        if not homes:
            return []
        return [make_anomaly(self.name, homes[0], causes[-1], causes,
                             reason, score, self.thresholds['expectation'])]

    def expectation_anomalies(self, text, record, sessions):
        """The missing-steps anomaly this record's log time raises, if any.

        Filed under the record's first home session; its evidence is the
        records the missing steps should have followed.
        """
        hit = self.expectation_hit(text, record)
        if hit is None:
            return []
        score, reason, causes = hit
        homes = home_sessions(sessions)
        if not homes:
            return []
        cited = [r for r in causes if r is not None] or [record]
        found = make_anomaly(self.name, homes[0], record, cited, reason,
                             score, self.thresholds['expectation'])
        return [found]

    def rarity_reason(self, text, record):
        count = self.rarity.counts.get(text, 0)
        return ('%s template %s in normal logs (%d of %d periods)'
                % (record.level, 'never seen' if not count else 'rare',
                   count, self.rarity.periods))

    def crossfit_scores(self):
        """Family -> cross-fitted scores of the training periods.

        The rarity and expectation models score each training period
        with what the *other* periods taught them (leave one period out),
        so their thresholds are calibrated on hundreds of periods instead
        of the few validation runs.
        """
        out = {}
        if 'rarity' in self.FAMILIES and self.rarity.loo_scores:
            out['rarity'] = self.rarity.loo_scores
        if 'response' in self.FAMILIES and self.responses.loo_scores:
            out['response'] = self.responses.loo_scores
        if ('expectation' in self.FAMILIES
                and self.expectation.loo_scores):
            out['expectation'] = self.expectation.loo_scores
        return {f: v for f, v in out.items() if f not in self.disabled}

    def calibrate_crossfit(self, share, split=False):
        """Thresholds of the cross-fitted families, ``share`` each.

        Each family of :meth:`crossfit_scores` gets the threshold just
        above the score of the training period at the ``share`` quantile
        (with ``split``, ``share`` is divided evenly between them).
        Returns the families set (family -> scores).
        """
        crossfit = self.crossfit_scores()
        if split:
            share /= max(len(crossfit), 1)
        for family, scores in crossfit.items():
            ranked = sorted(scores, reverse=True)
            allowed = int(share * len(ranked) + 1e-9)
            if allowed >= len(ranked):
                pick = 0.0
            else:
                pick = ranked[allowed]
            self.thresholds[family] = above(max(pick, 0.0))
        if 'rarity' in crossfit:
            # Scores come in rungs; when more periods than the share hold
            # an ERROR key of their own, the quantile lands on the top
            # rung and rarity would never raise: an ERROR or CRITICAL key
            # never seen in training always raises.
            top = self.rarity.score_count('ERROR', 0)
            self.thresholds['rarity'] = min(self.thresholds['rarity'],
                                            top - 1e-3)
        return crossfit

    def calibrate(self, run_maxima, target_far, failure_maxima=None):
        """Set thresholds for a target false-alarm rate.

        :param run_maxima: one ``max_seen`` dict per normal validation run
            (runs not used to fit the models).
        :param target_far: the share of normal runs allowed to raise an
            anomaly, all families together.
        :param failure_maxima: optional ``max_seen`` dicts of labelled
            failure runs of training tests (scores after the fault's
            activation); with them the budget goes to the families that
            detect the most (see :meth:`calibrate_labelled`).
        :returns: the new thresholds.

        Without labelled failures: families with cross-fitted training
        scores (see :meth:`crossfit_scores`) get an equal share of
        ``target_far`` each (:meth:`calibrate_crossfit`). The other
        families are calibrated on the validation runs with what is left
        of the budget (see :func:`calibrate_union`). Families switched
        off are left at infinity.
        """
        if failure_maxima is not None:
            return self.calibrate_labelled(run_maxima, failure_maxima,
                                           target_far)
        if not run_maxima:
            raise base.DetectorError('calibration needs at least one run '
                                     'of normal logs')
        crossfit = self.calibrate_crossfit(target_far, split=True)
        active = [f for f in self.FAMILIES
                  if f not in self.disabled and f not in crossfit]
        runs = [{f: m.get(f, -math.inf) for f in self.FAMILIES}
                for m in run_maxima]
        fixed = {f: self.thresholds[f] for f in crossfit}
        picked, flagged = calibrate_union(runs, active, fixed, target_far)
        for family in self.FAMILIES:
            if family not in crossfit:
                self.thresholds[family] = picked.get(family, math.inf)
        self.training_summary['calibration'] = {
            'runs': len(run_maxima), 'target_far': target_far,
            'runs_above': len(flagged),
            'crossfit': {f: len(v) for f, v in crossfit.items()}}
        LOG.info('Calibrated %s on %d runs (%d above) and cross-fitted '
                 '%s: %s', self.name, len(run_maxima), len(flagged),
                 {f: len(v) for f, v in crossfit.items()}, self.thresholds)
        return dict(self.thresholds)

    def normal_scores(self, run_maxima):
        """Family -> the normal scores its false-alarm rate is read from.

        Cross-fitted training periods for the families that have them
        (hundreds of periods), else the validation runs' maxima.
        """
        crossfit = self.crossfit_scores()
        return {f: (list(crossfit[f]) if f in crossfit
                    else [m.get(f, -math.inf) for m in run_maxima])
                for f in self.FAMILIES if f not in self.disabled}

    def calibrate_labelled(self, run_maxima, failure_maxima, target_far):
        """Spend the false-alarm budget where it detects failures.

        :func:`allocate_budget` over this detector's families: their
        expected false-alarm rates (read from :meth:`normal_scores`) add
        up to at most ``target_far``, and the thresholds detect as many of
        the labelled failure runs (of training tests only) as that
        allows. A family that adds no detection worth its rate stays off.
        """
        if not run_maxima:
            raise base.DetectorError('calibration needs at least one run '
                                     'of normal logs')
        normals = self.normal_scores(run_maxima)
        picked = allocate_budget(normals, failure_maxima, target_far)
        for family in self.FAMILIES:
            self.thresholds[family] = picked.get(family, math.inf)
        expected = sum(false_alarm_rate(normals[f], t)
                       for f, t in picked.items())
        caught = sum(1 for r in failure_maxima
                     if any(r.get(f, -math.inf) > t
                            for f, t in picked.items()))
        self.training_summary['calibration'] = {
            'runs': len(run_maxima), 'target_far': target_far,
            'labelled_failures': len(failure_maxima),
            'failures_detected': caught,
            'expected_false_alarm_rate': round(expected, 5)}
        LOG.info('Calibrated %s with %d labelled failures (%d detected, '
                 'expected false-alarm rate %.4f): %s', self.name,
                 len(failure_maxima), caught, expected, self.thresholds)
        return dict(self.thresholds)

    @property
    def threshold(self):
        return min(self.thresholds.values())

    # -- training ---------------------------------------------------------

    def fit(self, sessions, progress=None, epochs=None, time_budget=None):
        """Learn from closed sessions (or :class:`Sequence` objects)."""
        seqs = [s for s in as_sequences(sessions) if s.keys]
        if len(seqs) < self.MIN_SEQUENCES:
            raise base.DetectorError(
                'cannot train %s on %d session(s): at least %d sessions of '
                'normal logs are needed' % (self.name, len(seqs),
                                            self.MIN_SEQUENCES))
        counts = collections.Counter(k for s in seqs for k in s.keys)
        self.vocab = Vocabulary(k for k, c in counts.most_common()
                                if c >= self.MIN_KEY_COUNT)
        self.training_summary = {
            'sessions': len(seqs),
            'events': sum(len(s.keys) for s in seqs),
            'templates': len(counts),
            'session_kinds': dict(collections.Counter(s.kind for s in seqs)),
        }
        self.thresholds = dict.fromkeys(self.FAMILIES, math.inf)
        if 'rarity' in self.FAMILIES:
            self.rarity = KeyRarity()
            self.rarity.fit(seqs)
            self.training_summary['periods'] = self.rarity.periods
        if 'response' in self.FAMILIES:
            self.responses = KeyRarity()
            self.responses.fit(seqs, keys_of=lambda seq: seq.responses)
            self.training_summary['error_responses'] = len(
                self.responses.counts)
        if 'expectation' in self.FAMILIES:
            self.expectation = expectation_mod.ExpectationModel()
            self.expectation.fit(seqs)
            self.training_summary['expectation'] = {
                'periods': self.expectation.periods,
                'keys': len(self.expectation.keys),
                'rules': sum(len(r) for r in
                             self.expectation.rules.values())}
        import torch
        torch.manual_seed(0)
        return self._fit(seqs, progress=progress, epochs=epochs,
                         time_budget=time_budget)

    def _fit(self, seqs, progress=None, epochs=None, time_budget=None):
        raise NotImplementedError

    # -- artifacts --------------------------------------------------------

    def save(self, path):
        self._require_trained()
        meta = {
            'vocabulary': self.vocab.to_json(),
            'thresholds': {k: (None if math.isinf(v) else v)
                           for k, v in self.thresholds.items()},
            'training': self.training_summary,
            'rarity': self.rarity.to_json(),
            'responses': self.responses.to_json(),
            'expectation': self.expectation.to_json(),
            'model': self._metadata(),
        }
        artifact.save(path, self.name, self._tensors(), meta)

    def load(self, path):
        tensors, meta = artifact.load(path, self.name, device='cpu')
        try:
            self.vocab = Vocabulary.from_json(meta['vocabulary'])
            saved = meta.get('thresholds') or {}
            self.thresholds = {
                k: (math.inf if saved.get(k) is None else float(saved[k]))
                for k in self.FAMILIES}
            self.training_summary = meta.get('training', {})
            self.rarity = KeyRarity.from_json(meta['rarity'])
            # Artifacts of before the response family score no response.
            self.responses = (KeyRarity.from_json(meta['responses'])
                              if meta.get('responses') else KeyRarity())
            self.expectation = (
                expectation_mod.ExpectationModel.from_json(
                    meta['expectation']) if meta.get('expectation')
                else expectation_mod.ExpectationModel())
            self._restore(tensors, meta['model'])
        except (KeyError, TypeError, ValueError,
                base.DetectorError) as exc:
            self.vocab = None
            raise artifact.ArtifactError(
                'artifact %s is incomplete for %s: %s'
                % (path, self.name, exc)) from exc
        release_memory()
        LOG.info('Loaded %s model from %s (%d keys, thresholds %s)',
                 self.name, path, len(self.vocab), self.thresholds)

    def _tensors(self):
        raise NotImplementedError

    def _metadata(self):
        raise NotImplementedError

    def _restore(self, tensors, model_meta):
        raise NotImplementedError
