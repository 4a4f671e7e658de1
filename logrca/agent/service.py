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

"""The logrca-agent service: follow, parse, detect, send, then commit."""

# The threading backend of oslo.service, before oslo_service.service or
# oslo.messaging is imported by anyone.
import logrca.cmd  # noqa: F401,I001

import collections
import heapq
import os
import queue
import threading
import time

from oslo_log import log
from oslo_service import service

from logrca.agent import follow
from logrca.agent import journal as journal_mod
from logrca.agent import notifications
from logrca.agent import offsets
from logrca.agent import pipeline as pipeline_mod
from logrca.parsing import base as parsing_base
from logrca.parsing import oslo_log

LOG = log.getLogger(__name__)

# A stream's reader holds its last record back until the next header line
# shows it is complete; after this many idle seconds it is handed on.
FLUSH_AFTER = 2.0
# First and longest wait between retries while the conductor is
# unreachable.
SEND_RETRY_DELAY = 1.0
MAX_SEND_BACKOFF = 30.0
# Seconds a notification waits for its record to be stored before it is
# requeued.
NOTIFICATION_TIMEOUT = 60.0
# Seconds between saves of the template miner's state, and stats logs.
SAVE_EVERY = 300.0
STATS_EVERY = 60.0


def _pending_lineno(reader):
    """Line number of the record a RecordReader still holds back, or None."""
    pending = getattr(reader, 'pending_lineno', None)
    if pending is None:
        # RecordReader keeps the record it is building in _current.
        current = getattr(reader, '_current', None)
        pending = None if current is None else current.lineno
    return pending


class _Source:
    """One source of lines (a file, a journal unit) and its reader."""

    __slots__ = ('reader', 'lines', 'last_seen', 'commit_upto')

    def __init__(self, reader):
        self.reader = reader
        self.lines = collections.deque()  # fed, not yet safe to commit
        self.last_seen = time.monotonic()
        self.commit_upto = None           # the last line safe to commit


class _Waiter:
    """A notification's record waiting to be stored."""

    __slots__ = ('record', 'done', 'ok')

    def __init__(self, record):
        self.record = record
        self.done = threading.Event()
        self.ok = False


class Agent:
    """The agent's work loop, apart from the oslo.service plumbing.

    Each :meth:`run_once` polls the file and journal followers, feeds the
    lines through one :class:`~logrca.parsing.oslo_log.RecordReader` per
    source, merges the records of all streams (and the notifications
    received meanwhile) in log-time order into the :class:`Pipeline`,
    sends the anomalies to the conductor in batches (retrying while it is
    unreachable), and only then commits read offsets and journal cursors
    and acknowledges the notifications.

    :param conf: the logrca configuration.
    :param conductor: a :class:`~logrca.conductor.rpcapi.ConductorAPI` (or
        anything with ``store_anomalies(ctxt, dicts)``).
    :param pipeline: a Pipeline; built from ``[agent] detectors`` and
        ``[parsing] driver`` when None.
    """

    def __init__(self, conf, conductor, pipeline=None, files=None,
                 journal=None):
        self.conf = conf
        self.conductor = conductor
        self.miner = None
        if pipeline is None:
            detectors = [pipeline_mod.load_detector(conf, name)
                         for name in conf.agent.detectors]
            self.miner = parsing_base.load_miner(conf)
            self._load_miner()
            pipeline = pipeline_mod.Pipeline(conf, self.miner, detectors)
        self.pipeline = pipeline
        self.files = files if files is not None else follow.FileFollower(
            conf, offsets.StateFile.for_conf(conf, 'files.json'))
        if journal is None and conf.agent.journal_units:
            journal = journal_mod.JournalFollower(
                conf, offsets.StateFile.for_conf(conf, 'journal.json'))
        self.journal = journal
        self.stats = collections.Counter()
        self._sources = {}
        self._notes = queue.Queue()
        self._stop = threading.Event()
        self._last_save = time.monotonic()
        self._last_stats = time.monotonic()

    # -- templates ---------------------------------------------------------

    @property
    def _miner_path(self):
        return os.path.join(self.conf.state_path, 'agent',
                            'templates-%s.json' % self.conf.parsing.driver)

    def _load_miner(self):
        if self.miner is None or not os.path.exists(self._miner_path):
            return
        try:
            self.miner.load_state(self._miner_path)
            LOG.info('Loaded templates from %s', self._miner_path)
        except Exception as exc:  # a miner may raise anything on bad state
            self.stats['template_state_errors'] += 1
            LOG.error('Cannot load templates from %s (%s); learning them '
                      'again', self._miner_path, exc)

    def save_state(self):
        """Save the template miner's state (atomically, by the miner)."""
        if self.miner is None:
            return
        os.makedirs(os.path.dirname(self._miner_path), exist_ok=True)
        try:
            self.miner.save_state(self._miner_path)
        except Exception:
            LOG.exception('Cannot save templates to %s', self._miner_path)

    # -- notifications -----------------------------------------------------

    def on_notification(self, record):
        """Listener callback: True once ``record`` and its anomalies are
        stored (the notification is then acknowledged), else False."""
        waiter = _Waiter(record)
        self._notes.put(waiter)
        if not waiter.done.wait(NOTIFICATION_TIMEOUT):
            return False
        return waiter.ok

    # -- the loop ----------------------------------------------------------

    def _feed(self, lines):
        """Feed lines to their sources' readers; return record lists.

        Consecutive lines of one source (numbered one after the other) go
        to its reader in one :meth:`RecordReader.read` call; each record
        comes back in a list of its own, as the merge in :meth:`run_once`
        expects (records of one file are not always in log-time order).
        """
        out = []
        now = time.monotonic()
        touched = set()
        sources = self._sources
        count = len(lines)
        i = 0
        while i < count:
            line = lines[i]
            key = line.key
            src = sources.get(key)
            if src is None:
                src = sources[key] = _Source(
                    oslo_log.RecordReader(
                        line.stream, self.conf.agent.max_line_length,
                        line.host or self.conf.host))
            end = i + 1
            expected = line.lineno + 1
            while (end < count and lines[end].key == key
                   and lines[end].lineno == expected):
                end += 1
                expected += 1
            run = lines[i:end]
            out.extend([record] for record in src.reader.read(
                [item.data for item in run], line.lineno - 1))
            src.lines.extend(run)
            src.last_seen = now
            touched.add(key)
            i = end
        for key, src in list(self._sources.items()):
            if key in touched:
                continue
            if now - src.last_seen >= FLUSH_AFTER:
                got = src.reader.flush()
                if got:
                    out.append(got)
                if not src.lines:
                    # Idle and fully handed on: forget it (rotated files).
                    if src.commit_upto is None:
                        del self._sources[key]
        for src in self._sources.values():
            pending = _pending_lineno(src.reader)
            while src.lines and (pending is None
                                 or src.lines[0].lineno < pending):
                src.commit_upto = src.lines.popleft()
        return out

    def run_once(self):
        """One round: poll, parse, detect, send, commit. Returns lines."""
        lines = self.files.poll()
        if self.journal is not None:
            lines += self.journal.poll()
        self.stats['lines'] += len(lines)
        per_stream = self._feed(lines)
        waiters = []
        while True:
            try:
                waiters.append(self._notes.get_nowait())
            except queue.Empty:
                break
        if waiters:
            per_stream.append([w.record for w in waiters])
        merged = list(heapq.merge(
            *per_stream, key=lambda r: r.timestamp or 0.0))
        count = len(merged)
        anomalies = self.pipeline.process_many(merged)
        self.stats['records'] += count
        if not lines and not count:
            # Every source is caught up: log time is about now.
            anomalies.extend(self.pipeline.advance(time.time()))
        sent = self._send(anomalies)
        if sent:
            self._commit()
        for waiter in waiters:
            waiter.ok = sent
            waiter.done.set()
        self._periodic()
        return len(lines)

    def _send(self, anomalies):
        """Store anomalies through the conductor; False if stopped first."""
        size = self.conf.agent.send_batch_size
        delay = SEND_RETRY_DELAY
        for i in range(0, len(anomalies), size):
            batch = [a.to_dict() for a in anomalies[i:i + size]]
            while True:
                try:
                    self.conductor.store_anomalies({}, batch)
                    break
                except Exception as exc:
                    self.stats['send_failures'] += 1
                    if delay == SEND_RETRY_DELAY:
                        LOG.warning('Cannot send %d anomalies to the '
                                    'conductor (%s); retrying', len(batch),
                                    exc)
                    if self._stop.wait(delay):
                        return False
                    delay = min(MAX_SEND_BACKOFF, delay * 2)
            if delay > SEND_RETRY_DELAY:
                LOG.info('The conductor is reachable again')
                delay = SEND_RETRY_DELAY
            self.stats['anomalies_sent'] += len(batch)
        return True

    def _commit(self):
        file_lines = []
        journal_lines = []
        for src in self._sources.values():
            line = src.commit_upto
            if line is None:
                continue
            src.commit_upto = None
            if line.key[0] == 'journal':
                journal_lines.append(line)
            else:
                file_lines.append(line)
        if file_lines:
            self.files.commit(file_lines)
        if journal_lines and self.journal is not None:
            self.journal.commit(journal_lines)

    def _periodic(self):
        now = time.monotonic()
        if now - self._last_save >= SAVE_EVERY:
            self._last_save = now
            self.save_state()
        if now - self._last_stats >= STATS_EVERY:
            self._last_stats = now
            LOG.info('Agent: %s; files: %s; pipeline: %s', dict(self.stats),
                     dict(self.files.stats), dict(self.pipeline.stats))

    def run(self):
        """Loop until :meth:`stop`; sleep only when there was nothing."""
        while not self._stop.is_set():
            try:
                busy = self.run_once()
            except Exception:
                # Never let one bad round stop the agent; nothing was
                # committed, so the lines come again.
                self.stats['loop_errors'] += 1
                LOG.exception('Agent round failed')
                busy = 0
            if not busy:
                self._stop.wait(self.conf.agent.poll_interval)

    def stop(self):
        """Make :meth:`run` return; pending notifications are requeued."""
        self._stop.set()
        while True:
            try:
                waiter = self._notes.get_nowait()
            except queue.Empty:
                break
            waiter.done.set()

    def close(self):
        """Save templates and close the followed files."""
        self.save_state()
        self.files.close()
        if self.journal is not None:
            self.journal.close()


class AgentService(service.Service):
    """The ``logrca-agent`` service (oslo.service, threading backend).

    Connections are made in :meth:`start`; the work loop runs in a thread
    of its own, the notification listener in its own threads.
    """

    def __init__(self, conf):
        super().__init__()
        self.conf = conf
        self.agent = None
        self.conductor = None
        self.listener = None
        self._thread = None

    def start(self):
        super().start()
        from logrca.conductor import rpcapi
        self.conductor = rpcapi.ConductorAPI(self.conf)
        self.agent = Agent(self.conf, self.conductor)
        if self.conf.agent.notifications:
            rpcapi.register_messaging_opts(self.conf)
            self.listener, _endpoint = notifications.make_listener(
                self.conf, self.agent.on_notification)
            self.listener.start()
        self._thread = threading.Thread(target=self.agent.run,
                                        name='logrca-agent', daemon=True)
        self._thread.start()
        LOG.info('Agent %s following %s, journal %s, notifications %s',
                 self.conf.host, self.conf.agent.log_files,
                 self.conf.agent.journal_units,
                 self.conf.agent.notification_topics
                 if self.conf.agent.notifications else 'off')

    def stop(self, graceful=True):
        if self.agent is not None:
            self.agent.stop()
        if self.listener is not None:
            self.listener.stop()
            self.listener.wait()
            self.listener = None
        if self._thread is not None:
            self._thread.join(timeout=60)
            self._thread = None
        if self.agent is not None:
            self.agent.close()
            LOG.info('Agent stopped: %s', dict(self.agent.stats))
        if self.conductor is not None:
            self.conductor.cleanup()
            self.conductor = None
        super().stop(graceful=graceful)
