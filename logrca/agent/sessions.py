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

REQUEST = 'request'
INSTANCE = 'instance'
WINDOW = 'window'

# Records kept per session for evidence; counts and timing are kept whole.
MAX_RECORDS = 512


class Session:
    """An open group of related records.

    :ivar key: ``('request', id)``, ``('instance', uuid)`` or
        ``('window', stream, start)``.
    :ivar records: the last :data:`MAX_RECORDS` records.
    :ivar count: how many records were added in all.
    """

    __slots__ = ('key', 'records', 'count', 'first_ts', 'last_ts',
                 'streams', 'errors', 'state')

    def __init__(self, key, ts):
        self.key = key
        self.records = collections.deque(maxlen=MAX_RECORDS)
        self.count = 0
        self.first_ts = ts
        self.last_ts = ts
        self.streams = set()
        self.errors = 0
        # Per-detector scratch space, keyed by detector name.
        self.state = {}

    @property
    def kind(self):
        return self.key[0]

    def add(self, record):
        self.records.append(record)
        self.count += 1
        if record.timestamp is not None:
            if self.first_ts is None:
                self.first_ts = record.timestamp
            self.last_ts = record.timestamp
        self.streams.add(record.stream)
        if record.is_error:
            self.errors += 1

    def __repr__(self):
        return '<Session %r records=%d>' % (self.key, self.count)


class Sessionizer:
    """Assigns records to sessions and closes idle ones in log time.

    A record joins its request session (keyed by the global request id when
    there is one, so one request is followed across services, else by its
    request id), its instance session, and the window session of its stream.
    A session closes when no record was added for ``window`` seconds of log
    time; window sessions close when their window has passed.
    """

    def __init__(self, window):
        self.window = window
        self._open = {}
        self._now = None

    @property
    def now(self):
        """The latest log time seen."""
        return self._now

    def keys_for(self, record):
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

    def add(self, record):
        """Add a record; return the sessions it now belongs to."""
        if record.timestamp is not None and (
                self._now is None or record.timestamp > self._now):
            self._now = record.timestamp
        sessions = []
        for key in self.keys_for(record):
            session = self._open.get(key)
            if session is None:
                session = self._open[key] = Session(key, record.timestamp)
            session.add(record)
            sessions.append(session)
        return sessions

    def expire(self, now=None):
        """Close and return the sessions idle for a whole window."""
        now = self._now if now is None else now
        if now is None:
            return []
        closed = []
        for key, session in list(self._open.items()):
            if key[0] == WINDOW:
                done = now >= key[2] + self.window
            else:
                done = (session.last_ts is not None
                        and now - session.last_ts >= self.window)
            if done:
                closed.append(self._open.pop(key))
        return closed

    def close_all(self):
        """Close every open session (end of a replay or shutdown)."""
        closed = list(self._open.values())
        self._open.clear()
        return closed

    def __len__(self):
        return len(self._open)
