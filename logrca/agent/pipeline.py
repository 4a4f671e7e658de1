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

"""The agent's pipeline: records to templates, sessions and anomalies."""

import collections

from oslo_log import log
from stevedore import driver as stevedore_driver

from logrca.agent import sessions as sessions_mod
from logrca.detectors import base as detector_base
from logrca.parsing import records as records_mod
from logrca.parsing import speedups

LOG = log.getLogger(__name__)

# How often (in log seconds) idle sessions are looked for.
EXPIRE_EVERY = 5.0


def load_detector(conf, name):
    """Load one detector driver by name from ``logrca.detectors``."""
    try:
        manager = stevedore_driver.DriverManager(
            detector_base.NAMESPACE, name, invoke_on_load=True,
            invoke_args=(conf,))
    except Exception as exc:  # stevedore wraps many errors
        raise detector_base.DetectorError(
            'cannot load detector %r: %s' % (name, exc)) from exc
    return manager.driver


class Pipeline:
    """Turns records into anomalies: template, session, detect.

    Records must arrive in log-time order (the agent merges its streams).
    Parsing is pure; detectors score; nothing here writes the database:
    :meth:`process` returns anomalies for the caller to send or store.

    :param miner: a :class:`~logrca.parsing.base.TemplateMiner` or None
        (records keep whatever template they carry).
    :param detectors: detector instances.
    """

    def __init__(self, conf, miner, detectors):
        self.conf = conf
        self.miner = miner
        self.detectors = list(detectors)
        # A pipeline is one stream: detectors shared with an earlier one
        # (a replay of another run) forget what it left pending.
        for detector in self.detectors:
            detector.reset_stream()
        self.sessionizer = sessions_mod.Sessionizer(
            conf.agent.session_window)
        self.stats = collections.Counter(records=0, anomalies=0)
        self._next_expire = None
        # Bound methods looked up once: process() runs for every record.
        self._add = miner.add if miner is not None else None
        self._add_to_sessions = self.sessionizer.add
        self._observers = [d.observe for d in self.detectors]

    def process(self, record):
        """Process one record; return the anomalies it raised."""
        return self.process_many((record,))

    def process_many(self, records):
        """Process records in order; return the anomalies they raised.

        The same anomalies, in the same order, as :meth:`process` called on
        each record in turn, at less cost per record (what is looked up
        for every record is looked up once per call).
        """
        found = []
        count = 0
        unparsed = 0
        add = self._add
        add_to_sessions = self._add_to_sessions
        observers = self._observers
        sessionizer = self.sessionizer
        next_expire = self._next_expire
        unparsed_kind = records_mod.UNPARSED
        # With the compiled accelerator, both loops below run in C: the
        # same calls in the same order (see _speedups.c, "Pipeline").
        accel = speedups.module
        if add is not None:
            # Templates first, for the whole batch (the miner sees the
            # records in the same order; nothing it does depends on
            # sessions or detectors, and one stage at a time keeps each
            # stage's code and caches warm).
            records = list(records)
            if accel is not None:
                accel.template_records(add, records, unparsed_kind)
            else:
                for record in records:
                    if (record.template_id is None
                            and record.kind != unparsed_kind):
                        (record.template_id, record.template,
                         record.params) = add(record.message)
        try:
            if accel is not None:
                # state: the loop's count, unparsed and next_expire, as
                # they are when it returns or fails.
                state = [count, unparsed, next_expire]
                try:
                    accel.pipeline_records(
                        records, unparsed_kind, add_to_sessions, observers,
                        found, state, self._first_expire, self._expire_due)
                finally:
                    count, unparsed, next_expire = state
                records = ()
            for record in records:
                count += 1
                if record.kind == unparsed_kind:
                    unparsed += 1
                sessions = add_to_sessions(record)
                for observe in observers:
                    got = observe(record, sessions)
                    if got:
                        found.extend(got)
                # Log time (the sessionizer's) moves only with a later
                # timestamp: only such a record can make expiring due.
                ts = record.timestamp
                if ts is not None:
                    if next_expire is None:
                        next_expire = sessionizer.now + EXPIRE_EVERY
                    elif ts >= next_expire:
                        now = sessionizer.now
                        next_expire = now + EXPIRE_EVERY
                        found.extend(self._close(sessionizer.expire(now)))
        finally:
            self._next_expire = next_expire
            stats = self.stats
            stats['records'] += count
            if unparsed:
                stats['unparsed'] += unparsed
            if found:
                stats['anomalies'] += len(found)
        return found

    def _first_expire(self):
        # The compiled loop's first deadline (see process_many).
        return self.sessionizer.now + EXPIRE_EVERY

    def _expire_due(self, state, found):
        # The compiled loop's expiring step (see process_many): the next
        # deadline goes to state[2] before sessions close, as in the loop.
        sessionizer = self.sessionizer
        now = sessionizer.now
        state[2] = now + EXPIRE_EVERY
        found.extend(self._close(sessionizer.expire(now)))

    def advance(self, now):
        """Move log time forward without a record (idle streams)."""
        found = self._close(self.sessionizer.expire(now))
        self.stats['anomalies'] += len(found)
        return found

    def finish(self):
        """End the stream (a replay's end): detectors see it end
        (``on_stream_end``), then every open session closes; return the
        anomalies that raises."""
        found = []
        for detector in self.detectors:
            found.extend(detector.on_stream_end(self.sessionizer.sessions_of))
        found.extend(self._close(self.sessionizer.close_all()))
        self.stats['anomalies'] += len(found)
        return found

    def _close(self, closed):
        found = []
        for session in closed:
            self.stats['sessions'] += 1
            for detector in self.detectors:
                found.extend(detector.on_session_closed(session))
        return found
