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

"""Sessions: records grouped by request, instance and service window."""

import collections
import heapq

from logrca.parsing import records as records_mod
from logrca.parsing import speedups

REQUEST = 'request'
INSTANCE = 'instance'
WINDOW = 'window'

# Records kept per session for evidence; counts and timing are kept whole.
MAX_RECORDS = 512

_ERROR_LEVELS = records_mod.ERROR_LEVELS


class Session:
    """An open group of related records.

    :ivar key: ``('request', id)``, ``('instance', uuid)`` or
        ``('window', stream, start)``.
    :ivar records: the last :data:`MAX_RECORDS` records.
    :ivar count: how many records were added in all.
    """

    __slots__ = ('key', 'records', 'count', 'first_ts', 'last_ts',
                 'streams', 'errors', 'state', 'seq')

    def __init__(self, key, ts, seq=0):
        self.key = key
        self.records = collections.deque(maxlen=MAX_RECORDS)
        self.count = 0
        self.first_ts = ts
        self.last_ts = ts
        self.streams = set()
        self.errors = 0
        # Per-detector scratch space, keyed by detector name.
        self.state = {}
        # Creation order (sessions are closed in it).
        self.seq = seq

    @property
    def kind(self):
        return self.key[0]

    def add(self, record):
        self.records.append(record)
        self.count += 1
        ts = record.timestamp
        if ts is not None:
            if self.first_ts is None:
                self.first_ts = ts
            self.last_ts = ts
        self.streams.add(record.stream)
        if record.level in _ERROR_LEVELS:
            self.errors += 1

    def __repr__(self):
        return '<Session %r records=%d>' % (self.key, self.count)


# Sessions are looked at for closing this much (log seconds) before their
# deadline, so that float rounding never delays a close; whether one is
# done is then decided by the exact rule.
_SLACK = 1e-3


class Sessionizer:
    """Assigns records to sessions and closes idle ones in log time.

    A record joins its request session (keyed by the global request id when
    there is one, so one request is followed across services, else by its
    request id), its instance session, and the window session of its stream.
    A session closes when no record was added for ``window`` seconds of log
    time; window sessions close when their window has passed.

    Open sessions wait in a heap by the log time they may close at, so
    :meth:`expire` looks only at those due (not at every open session);
    sessions closed together are returned in the order they were opened.
    """

    def __init__(self, window):
        self.window = window
        self._open = {}
        self._now = None
        self._seq = 0
        # (log time the session may close at, seq, session).
        self._due = []
        # Request and instance sessions with no timestamp yet.
        self._undated = []

    @property
    def now(self):
        """The latest log time seen."""
        return self._now

    def keys_for(self, record):
        """The keys of the sessions ``record`` belongs to."""
        keys = []
        rid = record.global_request_id or record.request_id
        if rid:
            keys.append((REQUEST, rid))
        if record.instance_id:
            keys.append((INSTANCE, record.instance_id))
        ts = record.timestamp if record.timestamp is not None else self._now
        start = int(ts // self.window) * self.window if ts is not None else 0
        keys.append((WINDOW, record.stream, start))
        return keys

    def sessions_of(self, record):
        """The open sessions ``record`` belongs to."""
        found = (self._open.get(key) for key in self.keys_for(record))
        return [s for s in found if s is not None]

    def _session(self, key, ts):
        self._seq += 1
        session = self._open[key] = Session(key, ts, self._seq)
        if key[0] == WINDOW:
            heapq.heappush(self._due, (key[2] + self.window, self._seq,
                                       session))
        elif ts is not None:
            heapq.heappush(self._due, (ts + self.window, self._seq, session))
        else:
            self._undated.append(session)
        return session

    def add(self, record):
        """Add a record; return the sessions it now belongs to.

        With the compiled accelerator (:mod:`logrca.parsing.speedups`)
        this method is replaced by a C function doing the same steps, with
        the same results (see
        :func:`~logrca.parsing.speedups.register_method`).
        """
        ts = record.timestamp
        if ts is not None and (self._now is None or ts > self._now):
            self._now = ts
        get = self._open.get
        level_error = record.level in _ERROR_LEVELS
        stream = record.stream
        sessions = []
        rid = record.global_request_id or record.request_id
        if rid:
            key = (REQUEST, rid)
            sessions.append(get(key) or self._session(key, ts))
        if record.instance_id:
            key = (INSTANCE, record.instance_id)
            sessions.append(get(key) or self._session(key, ts))
        when = ts if ts is not None else self._now
        window = self.window
        key = (WINDOW, stream,
               int(when // window) * window if when is not None else 0)
        sessions.append(get(key) or self._session(key, ts))
        for session in sessions:
            # Session.add, inlined: this runs for every record.
            session.records.append(record)
            session.count += 1
            if ts is not None:
                last = session.last_ts
                if last is None:
                    session.first_ts = ts
                elif ts < last and session.key[0] != WINDOW:
                    # Out of log-time order: it may close earlier now.
                    heapq.heappush(self._due, (ts + window, session.seq,
                                               session))
                session.last_ts = ts
            session.streams.add(stream)
            if level_error:
                session.errors += 1
        return sessions

    def expire(self, now=None):
        """Close and return the sessions idle for a whole window."""
        now = self._now if now is None else now
        if now is None:
            return []
        due = self._due
        window = self.window
        if self._undated:
            undated = []
            for session in self._undated:
                if session.last_ts is None:
                    undated.append(session)
                else:
                    heapq.heappush(due, (session.last_ts + window,
                                         session.seq, session))
            self._undated = undated
        closed = []
        later = []
        limit = now + _SLACK
        while due and due[0][0] <= limit:
            entry = heapq.heappop(due)
            session = entry[2]
            key = session.key
            if self._open.get(key) is not session:
                # Closed already (an entry of an out-of-order record).
                continue
            if key[0] == WINDOW:
                done = now >= key[2] + window
            else:
                done = now - session.last_ts >= window
            if done:
                closed.append(session)
                del self._open[key]
            elif key[0] == WINDOW:
                later.append(entry)
            else:
                later.append((session.last_ts + window, session.seq,
                              session))
        for entry in later:
            heapq.heappush(due, entry)
        if len(closed) > 1:
            closed.sort(key=_seq)
        return closed

    def close_all(self):
        """Close every open session (end of a replay or shutdown)."""
        closed = list(self._open.values())
        self._open.clear()
        self._due.clear()
        self._undated.clear()
        return closed

    def __len__(self):
        return len(self._open)


def _seq(session):
    return session.seq


# The pure-Python Sessionizer.add (the accelerator's reference; its C
# code looks it up by this name).
_PYTHON_ADD = Sessionizer.add

# The compiled Sessionizer.add when the accelerator is in use.
speedups.register_method(Sessionizer, 'add', 'setup_sessions',
                         'session_add_method', globals())
