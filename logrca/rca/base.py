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

"""Base class of RCA drivers (stevedore namespace logrca.rca) and schema.

An RCA driver turns an anomaly and its gathered context
(:class:`logrca.rca.context.Context`) into an :class:`Explanation`: a
summary, the failed operation, ranked suspects, the causal chain, at most
:data:`MAX_EVIDENCE` cited evidence lines, a confidence, next steps and
references. Every claim cites evidence lines (``E1``...) or knowledge-base
entries (``K1``...) that were given to the driver; :func:`check_citations`
enforces it for drivers whose text comes from a language model.
"""

import abc
import dataclasses
import re

from oslo_log import log
from stevedore import driver as stevedore_driver

LOG = log.getLogger(__name__)

NAMESPACE = 'logrca.rca'

#: At most this many evidence lines are cited (PROTOCOL.md section 1).
MAX_EVIDENCE = 20

#: Failed operations (PROTOCOL.md section 1, "Failed operation").
OPERATIONS = ('instance boot', 'volume create', 'volume attach',
              'network setup', 'instance connectivity',
              'identity and keys')
UNKNOWN_OPERATION = 'unknown'

_CITATION_RE = re.compile(r'\[([EK]\d+)\]')


class RCAError(Exception):
    """An explanation cannot be made (bad input, driver failure)."""


class CitationError(RCAError):
    """A generated answer cites evidence it was not given."""


@dataclasses.dataclass
class Suspect:
    """A place the fault may be: a module and function, and why."""

    module: str
    function: str | None = None
    service: str | None = None
    score: float = 0.0
    why: str = ''
    citations: list = dataclasses.field(default_factory=list)


@dataclasses.dataclass
class Explanation:
    """The structured explanation of an anomaly.

    :ivar evidence: cited lines, each a dict with ``id`` (``E1``...),
        ``stream``, ``lineno``, ``timestamp``, ``level``, ``logger``,
        ``request_id``, ``project_id`` and ``text`` (masked).
    :ivar knowledge: cited knowledge-base entries, each a dict with ``id``
        (``K1``...), ``kind``, ``title``, ``ref`` and ``score``.
    :ivar chain: causal chain, a list of dicts ``{'service', 'step',
        'citations'}`` in time order.
    :ivar next_steps: list of dicts ``{'text', 'citations'}``.
    :ivar references: doc pages and bug ids (strings).
    """

    anomaly_id: str | None
    driver: str
    summary: str
    operation: str = UNKNOWN_OPERATION
    suspects: list = dataclasses.field(default_factory=list)
    chain: list = dataclasses.field(default_factory=list)
    evidence: list = dataclasses.field(default_factory=list)
    knowledge: list = dataclasses.field(default_factory=list)
    confidence: float = 0.0
    next_steps: list = dataclasses.field(default_factory=list)
    references: list = dataclasses.field(default_factory=list)
    narrative: str | None = None

    def to_dict(self):
        """A JSON-serialisable dict (what the database stores)."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data):
        """Rebuild a stored explanation; raises RCAError if malformed."""
        try:
            data = dict(data)
            data['suspects'] = [Suspect(**s) for s in
                                data.get('suspects') or []]
            return cls(**data)
        except TypeError as exc:
            raise RCAError('malformed explanation: %s' % exc) from exc

    def validate(self):
        """Check the schema and that every claim cites what was given.

        :raises RCAError: on a violation.
        """
        if self.operation not in OPERATIONS + (UNKNOWN_OPERATION,):
            raise RCAError('unknown operation %r' % self.operation)
        if len(self.evidence) > MAX_EVIDENCE:
            raise RCAError('%d evidence lines cited (at most %d)'
                           % (len(self.evidence), MAX_EVIDENCE))
        if not 0.0 <= self.confidence <= 1.0:
            raise RCAError('confidence %r outside [0, 1]' % self.confidence)
        known = ({e['id'] for e in self.evidence}
                 | {k['id'] for k in self.knowledge})
        claims = ([(s.why, s.citations) for s in self.suspects]
                  + [(c['step'], c['citations']) for c in self.chain]
                  + [(n['text'], n['citations']) for n in self.next_steps])
        for text, cites in claims:
            if not cites:
                raise RCAError('claim without citation: %r' % text)
            unknown = set(cites) - known
            if unknown:
                raise CitationError('claim %r cites unknown %s'
                                    % (text, ', '.join(sorted(unknown))))
        for text in (self.summary, self.narrative or ''):
            check_citations(text, known)
        return self


def cited_ids(text):
    """The citation ids (``E3``, ``K1``) in a text, in order."""
    return _CITATION_RE.findall(text or '')


def check_citations(text, allowed):
    """Raise :class:`CitationError` if ``text`` cites anything not allowed.

    :param allowed: ids of the evidence lines and knowledge entries that
        were given to the driver.
    """
    unknown = [c for c in cited_ids(text) if c not in allowed]
    if unknown:
        raise CitationError('answer cites evidence it was not given: %s'
                            % ', '.join(sorted(set(unknown))))
    return True


class RCADriver(abc.ABC):
    """Explains anomalies and answers questions about them.

    Drivers are loaded by name from the ``logrca.rca`` entry points with
    :func:`load_driver`. They read nothing but what they are given: the
    anomaly, the :class:`~logrca.rca.context.Context` gathered for it and,
    optionally, a :class:`~logrca.rca.kb.KnowledgeBase`. Text inside log
    lines is data, never instructions.
    """

    #: Name of the driver, as registered in the entry points.
    name = None

    def __init__(self, conf, kb=None):
        self.conf = conf
        self.kb = kb

    @abc.abstractmethod
    def explain(self, anomaly, context):
        """Explain an anomaly.

        :param anomaly: a :class:`~logrca.detectors.anomaly.Anomaly`.
        :param context: a :class:`~logrca.rca.context.Context`.
        :returns: a validated :class:`Explanation`.
        :raises RCAError: when no valid explanation can be made.
        """

    def answer(self, question, explanations):
        """Answer a free question from explanations already made.

        The default answers with the cited summaries; drivers backed by a
        language model may phrase it better.

        :param explanations: list of :class:`Explanation`.
        :returns: ``(text, citations)``.
        """
        if not explanations:
            return 'No stored anomaly matches the question.', []
        parts = []
        cites = []
        for exp in explanations:
            parts.append(exp.summary)
            cites.extend(cited_ids(exp.summary))
        return ' '.join(parts), cites


def load_driver(conf, name=None, kb=None):
    """Load an RCA driver by name (default ``[rca] driver``)."""
    name = name or conf.rca.driver
    try:
        manager = stevedore_driver.DriverManager(
            NAMESPACE, name, invoke_on_load=True, invoke_args=(conf,),
            invoke_kwds={'kb': kb})
    except Exception as exc:  # stevedore wraps many errors
        raise RCAError('cannot load RCA driver %r: %s' % (name, exc)) \
            from exc
    return manager.driver
