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

"""Base class of detector drivers (stevedore namespace logrca.detectors)."""

import abc

NAMESPACE = 'logrca.detectors'


class DetectorError(Exception):
    """A detector cannot be built, trained, saved or loaded."""


class Detector(abc.ABC):
    """Scores a stream of records and raises anomalies.

    A detector sees records one by one, in log-time order, exactly as the
    agent reads them, together with the sessions each record belongs to.
    It decides with what it has seen so far. "A step that should have
    followed is missing" is decided in :meth:`on_session_closed`, called when
    a session has had no event for the session window of *log time*, never
    by knowing where the input ends.

    Detectors score and never write the database: they return
    :class:`~logrca.detectors.anomaly.Anomaly` objects, and the agent sends
    them to the conductor.

    Learned drivers also implement :meth:`fit`, :meth:`save` and
    :meth:`load`; rule-based ones need not.
    """

    #: Name of the driver, as registered in the entry points.
    name = None

    #: Whether :meth:`fit` must be called (or a model loaded) before use.
    trainable = False

    def __init__(self, conf):
        self.conf = conf

    @abc.abstractmethod
    def observe(self, record, sessions):
        """Score one record.

        :param record: a :class:`~logrca.parsing.records.LogRecord`.
        :param sessions: the open
            :class:`~logrca.agent.sessions.Session` objects the record was
            added to (request, instance and service-window sessions).
        :returns: a list of anomalies, usually empty.
        """

    def on_session_closed(self, session):
        """Called once when a session closes; may return anomalies."""
        return []

    def on_stream_end(self, sessions_of):
        """Called once when a replayed stream ends, before its sessions
        close; may return anomalies.

        :param sessions_of: a callable giving the open sessions of a
            record (to file an anomaly under).
        """
        return []

    def reset_stream(self):
        """Forget what is pending from the records seen so far.

        Called when a :class:`~logrca.agent.pipeline.Pipeline` is built
        over the detector: each pipeline is one stream (the evaluation
        harness and ``detector calibrate`` replay each run through its
        own), and deadlines and periods of the last stream must not raise
        in the next. What the detector learned is kept. A live agent builds
        one pipeline and its streams go on. Drivers with nothing pending
        keep this default.
        """
        return None

    def fit(self, sessions, progress=None):
        """Learn normal behaviour from closed sessions of normal logs."""
        raise DetectorError('%s cannot be trained' % self.name)

    def save(self, path):
        """Save the trained artifact under directory ``path``."""
        raise DetectorError('%s has no artifact to save' % self.name)

    def load(self, path):
        """Load a trained artifact from directory ``path``."""
        raise DetectorError('%s has no artifact to load' % self.name)
