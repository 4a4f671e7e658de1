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

"""A fast template miner that caches templates by message shape."""

import json
import os
import re
import tempfile

from oslo_log import log

from logrca.parsing import base
from logrca.parsing import masks
from logrca.parsing import speedups

LOG = log.getLogger(__name__)

WILDCARD = base.WILDCARD

# Caches are cleared when they grow past these sizes (memory stays bounded;
# what they hold is re-derived from the templates).
MAX_TOKENS = 65536
MAX_SHAPES = 65536
MAX_MESSAGES = 32768


def _variables():
    """One regex that masks what :data:`masks.MASKS` mask, in one pass.

    The plain alternation of the masks tries every mask with its own
    look-behind at every position. Here all masks but PATH share the
    look-behind and look-ahead (factored out), PATH (the only mask that
    starts with ``/``) comes first, and a look-ahead for the first
    characters any mask can start with skips the other positions at once.
    It matches what the plain alternation matches (a unit test compares
    the two), about five times faster on long tokens.
    """
    cores = []
    path = None
    for name, pattern in masks.MASKS:
        if name == 'PATH':
            path = pattern
            continue
        if not (pattern.startswith(masks._L) and pattern.endswith(masks._R)):
            raise ValueError('mask %s is not bounded like the others' % name)
        cores.append(pattern[len(masks._L):-len(masks._R)])
    bounded = r'(?:(?<=[^A-Za-z0-9])|^)(?:%s)(?:(?=[^A-Za-z0-9])|$)' % (
        '|'.join(cores))
    return re.compile(r'(?=[-+/0-9A-Fa-fHr])(?:%s|%s)' % (path, bounded))


_VARIABLE = _variables()
# The same, as the plain alternation (the reference the tests compare with).
_VARIABLE_PLAIN = re.compile('|'.join('(?:%s)' % pattern
                                      for _name, pattern in masks.MASKS))
# A token that still holds a digit once the known variables are masked
# (host names like cp-1.slowvm1, tap devices, key=value pairs with numbers)
# is variable: every run of word-ish characters (wildcards included) with
# a digit in it becomes one wildcard.
_RUN = re.compile(r'''(?:<\*>|[^\s<>=:,;()\[\]{}"'])+''')
_WILDCARDS = re.compile(r'<\*>(?:[^\sA-Za-z0-9<]*<\*>)+')
# A plain word, maybe followed by punctuation: constant text.
_WORD = re.compile(r'[A-Za-z]+[.,:;!?]?$')


# Most new tokens are one id or number, maybe quoted or followed by
# punctuation: those are told apart by one anchored match of the core.
_SIMPLE = re.compile(
    r'(?:req-)?[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-'
    r'[0-9a-fA-F]{12}|[-+]?\d+(?:\.\d+)?[A-Za-z%]*|[0-9a-fA-F]{32}|'
    r'0x[0-9a-fA-F]+|\d\d:\d\d:\d\d(?:\.\d+)?|'
    r'\d{4}-\d\d-\d\d(?:[T ]\d\d:\d\d:\d\d(?:\.\d+)?Z?)?|'
    r'\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}(?::\d+)?')
_PUNCT = '\'"()[]{},;:.<>'
_HAS_VARIABLE = re.compile(r'[\d/]')
_DIGIT = re.compile(r'[0-9]')


def mask_token(token):
    """The token with its variable parts replaced by ``<*>``."""
    if _HAS_VARIABLE.search(token) is None:
        # No digit and no path: only an all-letter hex id or MAC could be
        # variable, and those are too rare to pay the regexes for.
        return token
    core = token.strip(_PUNCT)
    if core and _SIMPLE.fullmatch(core) is not None:
        start = token.find(core)
        return token[:start] + WILDCARD + token[start + len(core):]
    return mask_token_full(token)


def mask_token_full(token):
    """:func:`mask_token` without its shortcuts (same result, slower)."""
    masked = _VARIABLE.sub(WILDCARD, token)
    if _has_digit(masked):
        masked = _RUN.sub(_digit_run, masked)
    if masked.count(WILDCARD) > 1:
        # <*>-<*>-<*> and the like are one variable.
        masked = _WILDCARDS.sub(WILDCARD, masked)
    return masked


def _has_digit(text):
    # str.isdigit() is the rule; \d (ASCII digits here) is the fast way
    # to apply it to ASCII text.
    if text.isascii():
        return _DIGIT.search(text) is not None
    for ch in text:
        if ch.isdigit():
            return True
    return False


def _digit_run(match):
    text = match.group(0)
    return WILDCARD if _has_digit(text) else text


class _Cluster:
    __slots__ = ('id', 'tokens', 'template', 'variables', 'size')

    def __init__(self, cluster_id, tokens, size=0):
        self.id = cluster_id
        self.tokens = list(tokens)
        self.size = size
        self._update()

    def _update(self):
        self.template = ' '.join(self.tokens)
        self.variables = tuple(i for i, tok in enumerate(self.tokens)
                               if WILDCARD in tok)

    def similarity(self, tokens):
        """Share of positions whose constant token equals ``tokens``'.

        0 when a position differs by a plain word on both sides (``Paused``
        and ``Started``): masking already caught the variables that hold
        digits or ids, so two different words mean two different events.
        """
        same = 0
        for mine, theirs in zip(self.tokens, tokens):
            if mine == theirs:
                if mine != WILDCARD:
                    same += 1
            elif (mine != WILDCARD and _WORD.match(mine) is not None
                  and _WORD.match(theirs) is not None):
                return 0.0
        return same / len(tokens)

    def merge(self, tokens):
        changed = False
        for i, (mine, theirs) in enumerate(zip(self.tokens, tokens)):
            if mine != theirs and mine != WILDCARD:
                self.tokens[i] = WILDCARD
                changed = True
        if changed:
            self._update()


class ShapeParser(base.TemplateMiner):
    """Templates from token masking plus a cache keyed by message shape.

    Each whitespace token is masked once (UUIDs, request ids, IPs, hex ids,
    paths and numbers, the variables of :mod:`logrca.parsing.masks`, plus
    any token still holding a digit) and the result cached by token. The
    masked message (its *shape*) is looked up in a dict of known shapes;
    only a shape never seen goes through Drain-like merging: it joins the
    most similar template with as many tokens and the same first token when
    the share of equal constant tokens reaches ``[parsing]
    similarity_threshold``, else it starts a new template. Repeated
    messages cost a few dict look-ups, which is what makes this miner fast.
    """

    def __init__(self, conf):
        super().__init__(conf)
        self.sim_th = conf.parsing.similarity_threshold
        self._tokens = {}
        self._shapes = {}
        self._messages = {}
        self._clusters = {}
        self._groups = {}

    # -- learning --------------------------------------------------------

    def _mask(self, tokens):
        cache = self._tokens
        masked = list(map(cache.get, tokens))
        if None in masked:
            for i, value in enumerate(masked):
                if value is None:
                    token = tokens[i]
                    if len(cache) >= MAX_TOKENS:
                        cache.clear()
                    masked[i] = cache[token] = mask_token(token)
        return masked

    def add(self, message):
        hit = self._messages.get(message)
        if hit is not None:
            cluster, variables, params = hit
            cluster.size += 1
            if variables is not cluster.variables:
                # The template widened since: take the parameters anew.
                tokens = message.split()
                params = [tokens[i] for i in cluster.variables]
                self._messages[message] = (cluster, cluster.variables,
                                           params)
            return cluster.id, cluster.template, list(params)
        tokens = message.split()
        masked = self._mask(tokens)
        key = ' '.join(masked)
        cluster = self._shapes.get(key)
        if cluster is None:
            cluster = self._learn(masked, key)
        cluster.size += 1
        params = [tokens[i] for i in cluster.variables]
        # Many messages repeat verbatim (about two in three on the
        # fault-injection logs): the next time, skip even the masking.
        if len(self._messages) >= MAX_MESSAGES:
            self._messages.clear()
        self._messages[message] = (cluster, cluster.variables, params)
        return cluster.id, cluster.template, params

    def _best(self, masked):
        group = self._groups.get((len(masked), masked[0] if masked else ''))
        best = None
        best_sim = -1.0
        for cluster in group or ():
            sim = cluster.similarity(masked)
            if sim > best_sim or (sim == best_sim and len(
                    cluster.variables) > len(best.variables)):
                best, best_sim = cluster, sim
        return best, best_sim

    def _learn(self, masked, key):
        cluster, sim = self._best(masked)
        if cluster is not None and masked and sim >= self.sim_th:
            cluster.merge(masked)
        else:
            cluster = _Cluster(len(self._clusters) + 1, masked)
            self._clusters[cluster.id] = cluster
            self._groups.setdefault(
                (len(masked), masked[0] if masked else ''), []).append(cluster)
        if len(self._shapes) >= MAX_SHAPES:
            self._shapes.clear()
        self._shapes[key] = cluster
        return cluster

    # -- no learning -----------------------------------------------------

    def match(self, message):
        tokens = message.split()
        masked = self._mask(tokens)
        cluster = self._shapes.get(' '.join(masked))
        if cluster is None:
            cluster, _sim = self._best(masked)
            if cluster is None or any(
                    mine != WILDCARD and mine != theirs
                    for mine, theirs in zip(cluster.tokens, masked)):
                return None
        return (cluster.id, cluster.template,
                [tokens[i] for i in cluster.variables])

    @property
    def templates(self):
        return {cid: c.template for cid, c in self._clusters.items()}

    # -- state -----------------------------------------------------------

    def save_state(self, path):
        state = {
            'version': 1,
            'driver': 'shape',
            'clusters': [[c.id, c.tokens, c.size]
                         for c in self._clusters.values()],
            'shapes': {key: c.id for key, c in self._shapes.items()},
        }
        folder = os.path.dirname(os.path.abspath(path))
        fd, tmp = tempfile.mkstemp(dir=folder, prefix='.shape-')
        try:
            with os.fdopen(fd, 'w', encoding='utf-8') as out:
                json.dump(state, out)
            os.replace(tmp, path)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)

    def load_state(self, path):
        with open(path, encoding='utf-8') as src:
            state = json.load(src)
        if state.get('driver') != 'shape' or state.get('version') != 1:
            raise ValueError('%s holds no shape miner state' % path)
        clusters = {}
        groups = {}
        for cid, tokens, size in state['clusters']:
            cluster = _Cluster(cid, tokens, size)
            clusters[cid] = cluster
            groups.setdefault((len(tokens), tokens[0] if tokens else ''),
                              []).append(cluster)
        self._clusters = clusters
        self._groups = groups
        self._shapes = {key: clusters[cid]
                        for key, cid in state['shapes'].items()}
        self._messages = {}
        LOG.info('Loaded %d shape templates from %s', len(clusters), path)


# The pure-Python ShapeParser.add (the accelerator's reference; its C
# code looks it up by this name).
_PYTHON_ADD = ShapeParser.add

# The compiled ShapeParser.add when the accelerator is in use.
speedups.register_method(ShapeParser, 'add', 'setup_shape',
                         'shape_add_method', globals())
