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

"""Following systemd's journal with journalctl, cursor kept across restarts.

journalctl is run as a subprocess rather than through the systemd Python
binding, which needs libsystemd headers to build; journalctl is on every
systemd host, reads journal directories and files copied from elsewhere,
and its JSON output is a stable interface.
"""

import collections
import glob
import json
import re
import shutil
import subprocess
import time

from oslo_log import log

from logrca.agent import follow

LOG = log.getLogger(__name__)

# Entries read per poll at most (the rest come on the next poll).
MAX_ENTRIES_PER_POLL = 5000
# Seconds a journalctl run may take before it is stopped.
RUN_TIMEOUT = 60
# Longest wait between retries when journalctl fails.
MAX_BACKOFF = 60.0

IDENTIFIER_PREFIX = 'identifier:'

_ANSI_RE = re.compile(rb'\x1b\[[0-9;]*[A-Za-z]')
_DATE_RE = re.compile(rb'\d{4}-\d\d-\d\d[ T]\d\d:\d\d:\d\d')


def journal_stream_name(unit):
    """The service name of a systemd unit or syslog identifier.

    ``devstack@n-cpu.service`` is ``nova-compute``; ``nova-api.service`` is
    ``nova-api``; anything else is the unit name without ``.service``.
    """
    name = unit
    if name.endswith('.service'):
        name = name[:-len('.service')]
    if name.startswith('devstack@'):
        short = name[len('devstack@'):]
        return follow.DEVSTACK_SERVICES.get(short, short)
    return follow.DEVSTACK_SERVICES.get(name, name)


def _unit(name):
    return name if '.' in name.rsplit('@', 1)[-1] else name + '.service'


def _as_bytes(value):
    """A journal JSON field as bytes: a string, a byte array or None."""
    if isinstance(value, str):
        return value.encode('utf-8')
    if isinstance(value, list) and all(
            isinstance(x, int) and 0 <= x < 256 for x in value):
        return bytes(value)
    return None


def _cursor_position(cursor):
    """(seqnum id, seqnum, realtime) of a cursor, for ordering."""
    fields = dict(part.split('=', 1) for part in cursor.split(';')
                  if '=' in part)
    try:
        return (fields.get('s'), int(fields.get('i', '0'), 16),
                int(fields.get('t', '0'), 16))
    except ValueError:
        return (None, 0, 0)


class JournalFollower:
    """Follows journal entries of ``[agent] journal_units``.

    Each poll runs ``journalctl --output=json --after-cursor C`` over the
    system journal, ``[agent] journal_directory`` or ``[agent]
    journal_files``, and turns each entry's MESSAGE (text or byte array,
    colour codes removed, split on newlines) into :class:`Line` objects of
    the stream named after the unit (:func:`journal_stream_name`). DevStack
    writes oslo.log text without a timestamp to the journal: such lines get
    the oslo.log header back (entry time in UTC, and PID) so the parser
    reads them like a log file.

    The cursor is saved only by :meth:`commit`, per source (unit or
    identifier): a restart starts after the oldest entry not handed on and
    skips, for each source, what was already committed, so nothing is lost
    or repeated.

    :param conf: the logrca configuration.
    :param state: a :class:`~logrca.agent.offsets.StateFile` or None.
    :param journalctl: path of the journalctl program.
    """

    def __init__(self, conf, state, journalctl=None):
        self.conf = conf
        self.state = state
        self.journalctl = journalctl or shutil.which('journalctl')
        self.units = []
        self.identifiers = []
        for name in conf.agent.journal_units:
            if name.startswith(IDENTIFIER_PREFIX):
                self.identifiers.append(name[len(IDENTIFIER_PREFIX):])
            else:
                self.units.append(_unit(name))
        self.stats = collections.Counter()
        saved = state.load() if state is not None else {}
        cursor = saved.get('cursor')
        self._cursor = cursor if isinstance(cursor, str) else None
        sources = saved.get('sources')
        self._committed = dict(sources) if isinstance(sources, dict) else {}
        # Per source, entries up to this committed cursor were handed on
        # before a restart: skip them when they are read again.
        self._skip = {k: _cursor_position(v)
                      for k, v in self._committed.items()
                      if isinstance(v, str)}
        self._read_cursor = self._cursor
        self._seq = 0
        # Entries handed out and not yet committed: (seq, source, cursor).
        self._outstanding = collections.deque()
        self._done = {}       # source -> highest committed seq
        self._started = self._cursor is not None
        self._retry_at = 0.0
        self._failures = 0
        self._last_error = None

    def _source_args(self):
        args = []
        if self.conf.agent.journal_files:
            for pattern in self.conf.agent.journal_files:
                paths = sorted(glob.glob(pattern)) or [pattern]
                args.extend('--file=%s' % p for p in paths)
        elif self.conf.agent.journal_directory:
            args.append('--directory=%s' % self.conf.agent.journal_directory)
        return args

    def _matches(self):
        terms = (['_SYSTEMD_UNIT=%s' % u for u in self.units]
                 + ['SYSLOG_IDENTIFIER=%s' % i for i in self.identifiers])
        matches = []
        for term in terms:
            if matches:
                matches.append('+')
            matches.append(term)
        return matches

    def command(self, cursor=None, extra=()):
        """The journalctl command line reading after ``cursor``."""
        cmd = [self.journalctl or 'journalctl', '--output=json', '--all',
               '--no-pager', '--quiet', *self._source_args(), *extra]
        if cursor:
            cmd.append('--after-cursor=%s' % cursor)
        return cmd + self._matches()

    def _run(self, cmd, limit):
        """Run journalctl; return up to ``limit`` parsed entries."""
        entries = []
        try:
            proc = subprocess.Popen(cmd, stdout=subprocess.PIPE,
                                    stderr=subprocess.PIPE,
                                    stdin=subprocess.DEVNULL)
        except OSError as exc:
            self._failed('cannot run %s: %s' % (cmd[0], exc))
            return None
        deadline = time.monotonic() + RUN_TIMEOUT
        try:
            for raw in proc.stdout:
                try:
                    entry = json.loads(raw)
                except ValueError:
                    self.stats['bad_entries'] += 1
                    LOG.warning('journalctl wrote a line that is not JSON: '
                                '%r', raw[:200])
                    continue
                if not isinstance(entry, dict):
                    self.stats['bad_entries'] += 1
                    continue
                entries.append(entry)
                if len(entries) >= limit or time.monotonic() > deadline:
                    break
        finally:
            if proc.poll() is None:
                proc.kill()
            _out, err = proc.communicate()
        if proc.returncode not in (0, -9) and not entries:
            self._failed('journalctl exited with %s: %s' % (
                proc.returncode, err.decode('utf-8', 'replace').strip()))
            return None
        self._failures = 0
        self._last_error = None
        return entries

    def _failed(self, why):
        self.stats['journalctl_failures'] += 1
        self._failures += 1
        delay = min(MAX_BACKOFF, 2.0 ** min(self._failures, 6))
        self._retry_at = time.monotonic() + delay
        if why != self._last_error:
            LOG.error('Reading the journal failed (%s); retrying in %.0f s',
                      why, delay)
            self._last_error = why

    def poll(self):
        """Read the entries added since the last poll; return Lines."""
        if not (self.units or self.identifiers):
            return []
        if time.monotonic() < self._retry_at:
            return []
        if not self._started:
            self._started = True
            if self.conf.agent.follow_from == 'end':
                last = self._run(self.command(extra=('--lines=1',)), 1)
                if last is None:
                    self._started = False
                    return []
                if last and isinstance(last[-1].get('__CURSOR'), str):
                    self._read_cursor = last[-1]['__CURSOR']
                return []
        entries = self._run(self.command(self._read_cursor),
                            MAX_ENTRIES_PER_POLL)
        if not entries:
            return []
        lines = []
        for entry in entries:
            cursor = entry.get('__CURSOR')
            if not isinstance(cursor, str):
                self.stats['bad_entries'] += 1
                continue
            self._read_cursor = cursor
            self._lines(entry, cursor, lines)
        self.stats['lines'] += len(lines)
        return lines

    def _source(self, entry):
        unit = entry.get('_SYSTEMD_UNIT')
        ident = entry.get('SYSLOG_IDENTIFIER')
        if unit in self.units:
            return unit
        if ident in self.identifiers:
            return IDENTIFIER_PREFIX + ident
        if isinstance(unit, str):
            return unit
        if isinstance(ident, str):
            return IDENTIFIER_PREFIX + ident
        return 'journal'

    def _lines(self, entry, cursor, out):
        source = self._source(entry)
        skip = self._skip.get(source)
        if skip is not None:
            pos = _cursor_position(cursor)
            if cursor == self._committed.get(source) or (
                    pos[0] == skip[0] and pos[1] <= skip[1]) or (
                    pos[0] != skip[0] and pos[2] <= skip[2]):
                self.stats['skipped_committed'] += 1
                return
            del self._skip[source]
        message = _as_bytes(entry.get('MESSAGE'))
        if message is None:
            self.stats['bad_entries'] += 1
            LOG.warning('Journal entry %s has no usable MESSAGE', cursor)
            return
        self._seq += 1
        seq = self._seq
        self._outstanding.append((seq, source, cursor))
        message = _ANSI_RE.sub(b'', message).rstrip(b'\n')
        parts = message.split(b'\n')
        first = parts[0]
        if not _DATE_RE.match(first):
            first = self._header(entry) + first
            parts[0] = first
        stream = journal_stream_name(source.removeprefix(IDENTIFIER_PREFIX))
        path = 'journal:' + source
        key = ('journal', source)
        host = entry.get('_HOSTNAME')
        host = host if isinstance(host, str) else None
        last = len(parts) - 1
        for i, part in enumerate(parts):
            out.append(follow.Line(stream, part, path,
                                   (seq, cursor) if i == last else None,
                                   seq, key, host))

    @staticmethod
    def _header(entry):
        try:
            usec = int(entry.get('__REALTIME_TIMESTAMP'))
        except (TypeError, ValueError):
            usec = int(time.time() * 1e6)
        secs, usec = divmod(usec, 1000000)
        stamp = time.strftime('%Y-%m-%d %H:%M:%S', time.gmtime(secs))
        pid = entry.get('_PID') or entry.get('SYSLOG_PID') or '0'
        if not (isinstance(pid, str) and pid.isdigit()):
            pid = '0'
        return ('%s.%03d %s ' % (stamp, usec // 1000, pid)).encode()

    def commit(self, upto):
        """Save the cursor up to the given lines (one or many).

        A line stands for itself and every earlier line of its source. The
        saved restart point is just before the oldest entry not yet
        committed, and each source's own last committed cursor.
        """
        if isinstance(upto, follow.Line):
            upto = (upto,)
        changed = False
        for line in upto:
            if line.key[0] != 'journal' or line.offset is None:
                continue
            source = line.key[1]
            seq, cursor = line.offset
            if seq > self._done.get(source, 0):
                self._done[source] = seq
                self._committed[source] = cursor
                changed = True
        out = self._outstanding
        while out and out[0][0] <= self._done.get(out[0][1], 0):
            _seq, _source, self._cursor = out.popleft()
            changed = True
        if changed and self.state is not None:
            self.state.save({'version': 1, 'cursor': self._cursor,
                             'sources': self._committed})

    def close(self):
        """Nothing to release: each poll's journalctl has ended."""
