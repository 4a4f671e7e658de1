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

"""Reader of oslo.log output (text and JSON formats) into LogRecords."""

import calendar
import json
import re
import time

from oslo_log import log

from logrca.masking import mask
from logrca.parsing import records
from logrca.parsing import speedups

LOG = log.getLogger(__name__)

# No library parses oslo.log's *output* back into records (oslo.log only
# writes it), so the header is matched here with one precompiled regex.
#
# oslo.log text format (logging_context_format_string and
# logging_default_format_string):
#   TS PID LEVEL LOGGER [CONTEXT] [instance: UUID] MESSAGE
# and the prefix it writes before every traceback line
# (logging_exception_prefix), which has no [CONTEXT] bracket:
#   TS PID ERROR LOGGER [instance: UUID] TEXT
# An optional first field (e.g. Loghub's file name column) is tolerated by
# a second, slower pattern tried only when the first does not match.
_HEADER = (
    r'(\d{4}-\d\d-\d\d[ T]\d\d:\d\d:\d\d(?:[.,]\d+)?) (\d+) '
    r'(DEBUG|INFO|WARNING|ERROR|CRITICAL|TRACE|AUDIT|WARN|NOTICE) (\S+)'
    r'(?: \[(?!instance: )([^\]]*)\])? ?'
    r'(?:\[instance: ([0-9a-fA-F-]{36})\] ?)?(.*)')
_HEADER_RE = re.compile(_HEADER, re.DOTALL)
_PREFIXED_RE = re.compile(r'\S+ ' + _HEADER, re.DOTALL)

# Characters that make a line binary garbage (tab, CR and LF excluded).
_BINARY_RE = re.compile('[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]')

# The first words of a traceback.
_TRACEBACK = 'Traceback (most recent call last)'

# A context bracket caches its parsed fields; cleared when it grows past
# this many entries (request ids are unbounded).
_CACHE_MAX = 65536

# Epoch seconds of 'YYYY-MM-DD HH:MM' texts: a pure function's cache,
# shared by all readers.
_MINUTES = {}

# Masked message and code location of one-line message texts, DEBUG and
# other levels apart (pure functions' caches, shared by all readers).
_DEBUG_TEXTS = {}
_TEXTS = {}
_TEXT_CACHE_MAX = 16384
_TEXT_MAX = 1024

# Masked continuation lines (traceback lines repeat a lot).
_LINES = {}
_LINES_MAX = 8192

_LogRecord = records.LogRecord
_LOG_KIND = records.LOG

# Records longer than this many continuation lines keep their first lines
# only (bounded memory); the rest are counted in ``stats['dropped']``.
MAX_EXTRA_LINES = 2000

# How many bad-input warnings a reader logs before it only counts.
_MAX_WARNINGS = 5


def clear_caches():
    """Empty the caches shared by all readers (benchmarks start cold)."""
    _MINUTES.clear()
    _DEBUG_TEXTS.clear()
    _TEXTS.clear()
    _LINES.clear()


def _mask_line(text):
    """:func:`~logrca.masking.mask` of one line, cached for short lines."""
    masked = mask(text)
    if len(text) <= _TEXT_MAX:
        if len(_LINES) >= _LINES_MAX:
            _LINES.clear()
        _LINES[text] = masked
    return masked


def _none(value):
    if not value or value == '-' or value == 'None':
        return None
    return value


def parse_context(ctx):
    """Parse an oslo.log context bracket.

    Returns ``(global_request_id, request_id, user_id, project_id)``.
    Understands ``req-ID user project domain user_domain project_domain``
    (dashes for none), the newer ``GLOBAL req-ID user project ...`` with
    ``None`` or a ``req-`` id as global request id, and ``-``.
    """
    parts = ctx.split()
    if not parts or parts[0] == '-':
        return (None, None, None, None)
    global_id = None
    if len(parts) > 1 and parts[1].startswith('req-'):
        global_id = _none(parts[0])
        parts = parts[1:]
    request_id = parts[0] if parts[0].startswith('req-') else None
    if request_id is None:
        # Not a request context we know: keep users/projects out of it.
        return (global_id, None, None, None)
    user = _none(parts[1]) if len(parts) > 1 else None
    project = _none(parts[2]) if len(parts) > 2 else None
    return (global_id, request_id, user, project)


def split_location(message):
    """Split oslo.log's DEBUG suffix ``func /path/file.py:123`` off.

    Returns ``(message, location)``; location is None when the message does
    not end with a code location.
    """
    if not message or not message[-1].isdigit():
        return message, None
    end = message.rfind(' ')
    colon = message.rfind(':', end)
    if (end < 0 or colon < 0 or message[end + 1:end + 2] != '/'
            or not message.startswith('py', colon - 2)
            or not message[colon + 1:].isdigit()):
        return message, None
    start = message.rfind(' ', 0, end)
    return message[:max(start, 0)], message[start + 1:]


class RecordReader:
    """Turns the raw lines of one oslo.log stream into LogRecords.

    Feed every line of the stream in order; a record is returned once the
    next header line shows it is complete, so its continuation lines (bare
    lines, or traceback lines that repeat the header) are joined into
    ``record.extra``. :meth:`flush` returns the record held back at the end.

    Bad input never raises: undecodable bytes are replaced (and counted),
    binary lines, lines of no known format and overlong lines (cut to
    ``max_line_length``) become ``kind=UNPARSED`` records carrying the
    stream's last timestamp. Counters are in :attr:`stats`.

    :param stream: the stream name given to every record.
    :param max_line_length: longest line kept whole, in characters (bytes
        for bytes input).
    :param host: host name given to every record (JSON records carry their
        own ``hostname`` when this is None).
    """

    def __init__(self, stream, max_line_length=65536, host=None):
        self.stream = stream
        self.max_line_length = max_line_length
        self.host = host
        self.stats = {'lines': 0, 'records': 0, 'unparsed': 0,
                      'invalid_utf8': 0, 'truncated': 0, 'json': 0,
                      'binary': 0, 'continuation': 0, 'dropped': 0,
                      'blank': 0}
        self._warnings = 0
        self._last_ts = None
        self._ctx_cache = {}
        # The record being built and the header fields continuation lines
        # are compared with: (timestamp text, pid text, logger).
        self._current = None
        self._key = None
        self._ctx = None
        self._in_traceback = False

    # -- input -----------------------------------------------------------

    def feed(self, line, lineno=0):
        """Take one raw line; return the records it completed (often [])."""
        stats = self.stats
        stats['lines'] += 1
        truncated = False
        if len(line) > self.max_line_length:
            line = line[:self.max_line_length]
            truncated = True
        if line.__class__ is bytes:
            try:
                line = line.decode('utf-8')
            except UnicodeDecodeError:
                line = line.decode('utf-8', errors='replace')
                stats['invalid_utf8'] += 1
                if not truncated:
                    self._warn('invalid UTF-8 at line %s of %s', lineno)
        if line and line[-1] == '\n':
            line = line[:-1]
            if line and line[-1] == '\r':
                line = line[:-1]
        if truncated:
            stats['truncated'] += 1
            self._warn('line %s of %s longer than the limit; cut', lineno)
            return self._unparsed(line, lineno)
        match = _HEADER_RE.match(line)
        if match is None:
            return self._other(line, lineno)
        return self._header(match.groups(), lineno)

    def read(self, lines, lineno=0):
        """Take raw lines in order; return an iterator of the records.

        The same records as :meth:`feed` given each line in turn (numbered
        from ``lineno + 1``), at less cost per line: a line that decodes,
        fits the limit and starts a new record with an oslo.log header (most
        lines) is handled without further calls; any other line goes
        through :meth:`feed`'s own steps. With the compiled accelerator
        (:mod:`logrca.parsing.speedups`) the common lines are handled in
        C, with the same results. As with a generator, ``lines`` and
        ``lineno`` counters reach :attr:`stats` when the iteration ends.
        """
        if _accel is not None:
            return _accel.RecordIterator(self, lines, lineno)
        return self._read(lines, lineno)

    def _read(self, lines, lineno):
        """The pure-Python :meth:`read` (the accelerator's reference)."""
        stats = self.stats
        limit = self.max_line_length
        match_header = _HEADER_RE.match
        counted = 0
        completed = 0
        try:
            for raw in lines:
                lineno += 1
                if len(raw) > limit:
                    yield from self.feed(raw, lineno)
                    continue
                if raw.__class__ is bytes:
                    try:
                        line = raw.decode('utf-8')
                    except UnicodeDecodeError:
                        yield from self.feed(raw, lineno)
                        continue
                else:
                    line = raw
                counted += 1
                if line[-1:] == '\n':
                    line = line[:-1]
                    if line[-1:] == '\r':
                        line = line[:-1]
                match = match_header(line)
                if match is None:
                    yield from self._other(line, lineno)
                    continue
                groups = match.groups()
                current = self._current
                if current is not None:
                    key = self._key
                    if (groups[0] == key[0] and groups[1] == key[1]
                            and groups[3] == key[2]):
                        # Maybe a traceback line repeating the header.
                        yield from self._header(groups, lineno)
                        continue
                    self._current = None
                    completed += 1
                    self._complete(current)
                    self._start(groups, lineno)
                    yield current
                else:
                    self._start(groups, lineno)
        finally:
            stats['lines'] += counted
            stats['records'] += completed

    def _line(self, line, lineno):
        """:meth:`read`'s steps for one decoded line; its records.

        The accelerator leaves the lines it does not handle (non-ASCII
        ones among others) to this method.
        """
        self.stats['lines'] += 1
        if line[-1:] == '\n':
            line = line[:-1]
            if line[-1:] == '\r':
                line = line[:-1]
        match = _HEADER_RE.match(line)
        if match is None:
            return self._other(line, lineno)
        return self._header(match.groups(), lineno)

    def _other(self, line, lineno):
        """A decoded line without an oslo.log header at its start."""
        stats = self.stats
        if line[:2] == '{"' and '"levelname"' in line:
            done = self._json(line, lineno)
            if done is not None:
                return done
        if _BINARY_RE.search(line) is not None:
            stats['binary'] += 1
            self._warn('binary data at line %s of %s', lineno)
            return self._unparsed(line, lineno)
        match = _PREFIXED_RE.match(line)
        if match is not None:
            return self._header(match.groups(), lineno)
        current = self._current
        if current is not None:
            # A bare continuation line (traceback, dump, XML).
            self._append(current, line)
            return []
        if not line.strip():
            # A blank line before any record carries nothing.
            stats['blank'] += 1
            return []
        return self._unparsed(line, lineno)

    def _header(self, groups, lineno):
        """A line with an oslo.log header: a new record or a continuation."""
        ts_text, pid, level, logger, ctx, instance, message = groups
        current = self._current
        if current is not None:
            key = self._key
            if (ts_text == key[0] and pid == key[1] and logger == key[2]
                    and (instance is None
                         or instance == current.instance_id)):
                if ctx is None:
                    # oslo.log's logging_exception_prefix: the header
                    # repeated (without context) before traceback lines.
                    self._append(current, message)
                    if message.startswith(_TRACEBACK):
                        self._in_traceback = True
                    return []
                if ctx == self._ctx and level == current.level and (
                        self._in_traceback or message.startswith(_TRACEBACK)
                        or message[:1] == ' '):
                    # Formats that repeat the context on traceback lines.
                    self._append(current, message)
                    self._in_traceback = True
                    return []
        done = self._finish()
        self._start(groups, lineno)
        return done

    def _start(self, groups, lineno):
        """Begin the record of a header line (the current one is done)."""
        ts_text, pid, level, logger, ctx, instance, message = groups
        if ctx is not None:
            parsed = self._ctx_cache.get(ctx)
            if parsed is None:
                if len(self._ctx_cache) >= _CACHE_MAX:
                    self._ctx_cache.clear()
                parsed = self._ctx_cache[ctx] = parse_context(ctx)
            global_id, request_id, user_id, project_id = parsed
        else:
            global_id = request_id = user_id = project_id = None
        # The epoch of the minute is cached (strptime is slow and lines of
        # one minute share it); seconds and fraction are added.
        base = _MINUTES.get(ts_text[:16])
        if base is None:
            base = _minute(ts_text[:16])
        # Positional arguments in LogRecord's field order (this runs for
        # every record; keywords cost twice as much).
        self._current = _LogRecord(
            self.stream, base + float(ts_text[17:].replace(',', '.')),
            level, logger, message, int(pid), self.host, request_id,
            global_id, user_id, project_id, instance, None, [], None, None,
            [], _LOG_KIND, lineno)
        self._key = (ts_text, pid, logger)
        self._ctx = ctx
        self._in_traceback = message.startswith(_TRACEBACK)

    def flush(self):
        """Return the record held back, if any (call at end of input)."""
        return self._finish()

    # -- helpers ---------------------------------------------------------

    def _warn(self, msg, lineno):
        self._warnings += 1
        if self._warnings <= _MAX_WARNINGS:
            LOG.warning(msg, lineno, self.stream)
            if self._warnings == _MAX_WARNINGS:
                LOG.warning('Further bad input in %s is only counted',
                            self.stream)

    def _append(self, record, text):
        extra = record.extra
        self.stats['continuation'] += 1
        if len(extra) < MAX_EXTRA_LINES:
            extra.append(text)
        else:
            self.stats['dropped'] += 1

    def _timestamp(self, text):
        base = _MINUTES.get(text[:16])
        if base is None:
            base = _minute(text[:16])
        return base + float(text[17:].replace(',', '.'))

    def _finish(self):
        """Complete the current record; return it in a list (or [])."""
        record = self._current
        if record is None:
            return []
        self._current = None
        self._complete(record)
        self.stats['records'] += 1
        return [record]

    def _complete(self, record):
        """Mask ``record`` and split its code location off (it is done)."""
        extra = record.extra
        if extra:
            if record.level == 'DEBUG' and record.location is None:
                text, location = split_location(extra[-1])
                if location is not None:
                    record.location = location
                    if text:
                        extra[-1] = text
                    else:
                        extra.pop()
            get = _LINES.get
            message = record.message
            record.message = get(message) or _mask_line(message)
            record.extra = [get(text) or _mask_line(text) for text in extra]
        elif record.location is None:
            # One-line records: about two in three repeat a message seen
            # before, so its location split and masking are cached.
            message = record.message
            debug = record.level == 'DEBUG'
            cache = _DEBUG_TEXTS if debug else _TEXTS
            hit = cache.get(message)
            if hit is None:
                text, location = (split_location(message) if debug
                                  else (message, None))
                hit = (mask(text), location)
                if len(message) <= _TEXT_MAX:
                    if len(cache) >= _TEXT_CACHE_MAX:
                        cache.clear()
                    cache[message] = hit
            record.message, record.location = hit
        else:
            record.message = mask(record.message)
        if record.timestamp is not None:
            self._last_ts = record.timestamp

    def _unparsed(self, line, lineno):
        done = self._finish()
        self.stats['unparsed'] += 1
        self.stats['records'] += 1
        done.append(records.LogRecord(
            stream=self.stream, timestamp=self._last_ts, message=mask(line),
            host=self.host, kind=records.UNPARSED, lineno=lineno))
        return done

    def _json(self, line, lineno):
        """A line of oslo_log.formatters.JSONFormatter output.

        Returns the records it completed, or None when the line is no
        JSONFormatter record after all.
        """
        try:
            doc = json.loads(line)
        except ValueError:
            doc = None
        if not isinstance(doc, dict) or not isinstance(
                doc.get('message'), str):
            # Not a JSONFormatter record: a continuation or unparsed line.
            return None
        done = self._finish()
        self.stats['json'] += 1
        message = doc['message']
        extra = []
        if '\n' in message:
            message, *extra = message.split('\n')
        tb = doc.get('traceback')
        if isinstance(tb, str) and tb:
            extra.extend(tb.split('\n'))
        elif isinstance(tb, list):
            extra.extend(str(item) for item in tb)
        ts = doc.get('created')
        if not isinstance(ts, (int, float)):
            ts = None
            asctime = doc.get('asctime')
            if isinstance(asctime, str):
                try:
                    ts = self._timestamp(asctime)
                except ValueError:
                    ts = None
        if ts is None:
            ts = self._last_ts
        context = doc.get('context')
        if not isinstance(context, dict):
            context = {}
        extra_doc = doc.get('extra')
        if not isinstance(extra_doc, dict):
            extra_doc = {}
        level = doc.get('levelname')
        record = records.LogRecord(
            stream=self.stream, timestamp=float(ts) if ts is not None
            else None,
            level=level if isinstance(level, str) else None,
            logger=_str(doc.get('name')), message=message,
            pid=doc.get('process') if isinstance(
                doc.get('process'), int) else None,
            host=self.host or _str(doc.get('hostname')),
            request_id=_str(context.get('request_id')),
            global_request_id=_str(context.get('global_request_id')),
            user_id=_str(context.get('user_id') or context.get('user')),
            project_id=_str(context.get('project_id')
                            or context.get('project')
                            or context.get('tenant')),
            instance_id=_json_instance(extra_doc, context),
            extra=extra, lineno=lineno)
        if record.level == 'DEBUG' and doc.get('funcname') and doc.get(
                'pathname'):
            record.location = '%s %s:%s' % (
                doc['funcname'], doc['pathname'], doc.get('lineno'))
        self._current = record
        self._key = ('json', None, None)
        self._ctx = None
        self._in_traceback = False
        return done


def _minute(minute):
    """Epoch seconds of a ``YYYY-MM-DD HH:MM`` text (cached)."""
    if len(_MINUTES) >= _CACHE_MAX:
        _MINUTES.clear()
    base = _MINUTES[minute] = calendar.timegm(time.strptime(
        minute.replace('T', ' '), '%Y-%m-%d %H:%M'))
    return base


def _str(value):
    return value if isinstance(value, str) and value else None


_UUID_RE = re.compile(r'[0-9a-fA-F]{8}-(?:[0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}')


def _json_instance(extra, context):
    """The instance a JSON record is about, if it names one."""
    for value in (extra.get('instance_uuid'), extra.get('instance'),
                  context.get('instance_uuid'),
                  context.get('resource_uuid')):
        if isinstance(value, dict):
            value = value.get('uuid')
        if isinstance(value, str):
            match = _UUID_RE.search(value)
            if match is not None:
                return match.group(0)
    return None


_accel = None


def _install(module):
    """Use the compiled accelerator ``module`` in :meth:`RecordReader.read`
    (None: the pure-Python code). See :mod:`logrca.parsing.speedups`."""
    global _accel
    if module is not None:
        module.setup_reader(globals())
    _accel = module


speedups.register(_install)
