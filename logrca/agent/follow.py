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

"""Following log files through rotation, truncation and agent restarts."""

import bz2
import collections
import glob
import gzip
import hashlib
import lzma
import os
import re
import time

from oslo_log import log

LOG = log.getLogger(__name__)

# Bytes at the start of a file whose hash, with (dev, inode), identifies it:
# a new file that reuses a deleted file's inode has other first bytes.
FP_LEN = 128
# Read at most this much of one file per poll, so one busy file cannot
# starve the others, and in pieces of READ_CHUNK.
READ_CHUNK = 1 << 20
MAX_READ_PER_POLL = 8 << 20
# A line longer than this is cut here and the rest of it skipped (counted).
# It is far above [agent] max_line_length: lines up to it are handed on
# whole and the parser cuts them; this only bounds memory.
HARD_LINE_CAP = 32 << 20
# State entries of files no longer followed are forgotten after this long.
FORGET_AFTER = 7 * 86400

# DevStack's short service names (systemd units devstack@NAME, old screen
# logs screen-NAME.log) and the service each one runs.
DEVSTACK_SERVICES = {
    'n-api': 'nova-api',
    'n-api-meta': 'nova-api-metadata',
    'n-cpu': 'nova-compute',
    'n-cond': 'nova-conductor',
    'n-cond-cell1': 'nova-conductor',
    'n-super-cond': 'nova-conductor',
    'n-sch': 'nova-scheduler',
    'n-novnc': 'nova-novncproxy',
    'n-novnc-cell1': 'nova-novncproxy',
    'n-spice': 'nova-spicehtml5proxy',
    'c-api': 'cinder-api',
    'c-vol': 'cinder-volume',
    'c-sch': 'cinder-scheduler',
    'c-bak': 'cinder-backup',
    'q-svc': 'neutron-server',
    'q-agt': 'neutron-openvswitch-agent',
    'q-dhcp': 'neutron-dhcp-agent',
    'q-l3': 'neutron-l3-agent',
    'q-meta': 'neutron-metadata-agent',
    'q-ovn-metadata-agent': 'neutron-ovn-metadata-agent',
    'neutron-api': 'neutron-server',
    'g-api': 'glance-api',
    'g-reg': 'glance-registry',
    'h-eng': 'heat-engine',
    'h-api': 'heat-api',
    'h-api-cfn': 'heat-api-cfn',
    'keystone': 'keystone',
    'placement-api': 'placement-api',
}

# Projects whose log directory names the service when the file name alone
# does not (/var/log/cinder/api.log is cinder-api).
PROJECTS = frozenset((
    'aodh', 'barbican', 'ceilometer', 'cinder', 'designate', 'glance',
    'gnocchi', 'heat', 'horizon', 'ironic', 'keystone', 'magnum', 'manila',
    'masakari', 'neutron', 'nova', 'octavia', 'placement', 'swift', 'trove',
    'watcher', 'zun'))

# Suffixes of rotated, compressed or captured log files.
_SUFFIX = re.compile(
    r'(?:\.(?:log|out|txt|json|gz|bz2|bzip2|xz|zst|old)|\.[\d_:\-]+'
    r'|-\d{8,14})$', re.IGNORECASE)

_MAGIC = (
    (b'\x1f\x8b', gzip.open),
    (b'BZh', bz2.open),
    (b'\xfd7zXZ\x00', lzma.open),
)


def stream_name(path):
    """The name of the service whose log ``path`` is.

    ``/var/log/nova/nova-compute.log`` is ``nova-compute``,
    ``cinder/api.log.1.gz`` is ``cinder-api``, devstack's
    ``screen-n-cpu.log`` is ``nova-compute``. Anything else is the file
    name without its rotation and compression suffixes.
    """
    name = os.path.basename(path)
    base = name
    while True:
        stripped = _SUFFIX.sub('', base)
        if stripped == base or not stripped:
            break
        base = stripped
    if base.startswith('screen-'):
        base = base[len('screen-'):]
    base = DEVSTACK_SERVICES.get(base, base)
    parent = os.path.basename(os.path.dirname(path))
    if parent in PROJECTS and not any(
            base == p or base.startswith(p + '-') for p in PROJECTS):
        base = '%s-%s' % (parent, base)
    return base or name


def compression_of(head):
    """The opener for data starting with ``head``, or None if plain."""
    for magic, opener in _MAGIC:
        if head.startswith(magic):
            return opener
    return None


def open_log(path):
    """Open a log file for reading, in binary, decompressing as needed.

    gzip, bzip2 and xz are recognised by their magic bytes, whatever the
    file is called (the shared fault-injection logs are plain text named
    ``*.bzip2.out``). The caller closes the returned file.
    """
    with open(path, 'rb') as f:
        head = f.read(8)
    opener = compression_of(head)
    if opener is None:
        return open(path, 'rb')
    return opener(path, 'rb')


class Line:
    """One line read from a followed source.

    :ivar stream: service name of the source (see :func:`stream_name`).
    :ivar data: the raw bytes of the line, without its newline.
    :ivar path: the file the line came from (or ``journal:UNIT``).
    :ivar offset: position after the line: a byte offset for files, a
        cursor for the journal. Hand lines back to ``commit()`` once their
        records are safe.
    :ivar lineno: the line's number in its file, from 1.
    :ivar key: identity of the source the line belongs to; lines of one
        key are in order and need one reader.
    :ivar host: the host the line was logged on when the source says so
        (journal entries), else None.
    """

    __slots__ = ('stream', 'data', 'path', 'offset', 'lineno', 'key',
                 'host')

    def __init__(self, stream, data, path, offset, lineno, key, host=None):
        self.stream = stream
        self.data = data
        self.path = path
        self.offset = offset
        self.lineno = lineno
        self.key = key
        self.host = host

    def __repr__(self):
        return '<Line %s:%d %r>' % (self.path, self.lineno, self.data[:60])


def _fingerprint(head):
    return hashlib.sha256(head).hexdigest()


class _File:
    """A followed file: an open descriptor and how far it was read."""

    def __init__(self, path, fd, st, stream):
        self.path = path
        self.fd = fd
        self.dev = st.st_dev
        self.ino = st.st_ino
        self.stream = stream
        self.pos = 0          # next byte to read
        self.offset = 0       # position after the last whole line
        self.lineno = 0
        self.partial = b''    # bytes of a line whose newline is not there
        self.cut = None       # head of an over-long line being skipped
        self.cut_len = 0      # bytes of that line read so far
        self.gen = 0          # bumped on truncation: older lines are moot
        self.head = b''       # the first min(size, FP_LEN) bytes
        self.retired = False  # renamed away or deleted: drain, then close
        self.mtime = st.st_mtime

    @property
    def ident(self):
        return '%d:%d' % (self.dev, self.ino)

    @property
    def key(self):
        return ('file', self.dev, self.ino, self.gen)


class FileFollower:
    """Follows the files matching ``[agent] log_files`` globs.

    Files are known by (device, inode) and the hash of their first bytes,
    not by name, so the follower survives rotation by rename (the old file
    is read to its end, then the new one from its start), copytruncate and
    truncation (a file shorter than the read position, or whose first bytes
    changed, is read again from 0; lines the writer added before a
    copytruncate are read from the copy when it lies beside the file),
    deletion and recreation, and new files that match while it runs.

    Read positions are saved in ``state`` (a
    :class:`~logrca.agent.offsets.StateFile`, or None to keep nothing) only
    by :meth:`commit`, for lines whose records were safely handed on: a
    restart reads again what was polled but not committed, and nothing
    that was committed. A rotated file that still holds uncommitted lines
    after a restart is found again by its inode in its directory.

    :param conf: the logrca configuration.
    :param state: a StateFile or None.
    :param patterns: globs to follow; defaults to ``conf.agent.log_files``.
    """

    def __init__(self, conf, state, patterns=None):
        self.conf = conf
        self.state = state
        self.patterns = list(conf.agent.log_files if patterns is None
                             else patterns)
        self.from_end = conf.agent.follow_from == 'end'
        self.stats = collections.Counter()
        self._files = {}      # (dev, ino) -> _File
        self._skip = {}       # (dev, ino) -> reason, logged once
        self._saved = state.load() if state is not None else {}
        self._committed = {}  # ident -> {offset, lineno, gen, ...}
        for ident, entry in self._saved.get('files', {}).items():
            if isinstance(entry, dict) and isinstance(
                    entry.get('offset'), int):
                self._committed[ident] = dict(entry, gen=None)
        self._first_scan = True
        self._dirty = False

    # -- discovery ---------------------------------------------------------

    def _scan(self):
        """Return {(dev, ino): (path, stat)} of the files the globs match."""
        found = {}
        for pattern in self.patterns:
            for path in sorted(glob.glob(pattern)):
                try:
                    st = os.stat(path)
                except OSError:
                    continue  # vanished between glob and stat
                if not os.path.isfile(path):
                    continue
                found.setdefault((st.st_dev, st.st_ino), (path, st))
        return found

    def _open(self, path, st, recovering=False):
        """Open ``path`` and decide where to start reading; None if not."""
        ident = (st.st_dev, st.st_ino)
        try:
            fd = os.open(path, os.O_RDONLY)
        except OSError as exc:
            if self._skip.get(ident) != 'unreadable':
                self._skip[ident] = 'unreadable'
                self.stats['unreadable_files'] += 1
                LOG.error('Cannot read log file %s: %s', path, exc)
            return None
        try:
            fst = os.fstat(fd)
            head = os.pread(fd, FP_LEN, 0)
        except OSError as exc:
            os.close(fd)
            self.stats['unreadable_files'] += 1
            LOG.error('Cannot read log file %s: %s', path, exc)
            return None
        if (fst.st_dev, fst.st_ino) != ident:
            os.close(fd)  # replaced between stat and open: next poll
            return None
        if compression_of(head) is not None:
            os.close(fd)
            if ident not in self._skip:
                self._skip[ident] = 'compressed'
                self.stats['compressed_files_skipped'] += 1
                LOG.info('Not following compressed file %s (replay it with '
                         'logrca-manage replay)', path)
            return None
        self._skip.pop(ident, None)
        tf = _File(path, fd, fst, stream_name(path))
        tf.head = head
        entry = self._committed.get(tf.ident)
        if entry is not None and self._same_file(entry, head, fst):
            tf.pos = tf.offset = entry['offset']
            tf.lineno = entry.get('lineno', 0)
            LOG.info('Following %s from saved offset %d', path, tf.offset)
        elif recovering:
            os.close(fd)
            return None
        else:
            if entry is not None:
                self.stats['inode_reused'] += 1
                LOG.info('%s reuses the inode of a file seen before but '
                         'holds other data: reading it from the start',
                         path)
            if self._first_scan and self.from_end:
                tf.pos = tf.offset = self._end_of_last_line(fd, fst.st_size)
            LOG.info('Following %s (stream %s) from offset %d', path,
                     tf.stream, tf.offset)
        self._committed[tf.ident] = {
            'path': path, 'offset': tf.offset, 'lineno': tf.lineno,
            'fp': _fingerprint(head), 'fp_len': len(head), 'gen': tf.gen,
            'seen': time.time()}
        self._dirty = True
        return tf

    @staticmethod
    def _same_file(entry, head, st):
        fp_len = entry.get('fp_len')
        if not isinstance(fp_len, int) or len(head) < fp_len:
            return False
        if _fingerprint(head[:fp_len]) != entry.get('fp'):
            return False
        return st.st_size >= entry['offset']

    @staticmethod
    def _end_of_last_line(fd, size):
        if size == 0:
            return 0
        start = max(0, size - 65536)
        tail = os.pread(fd, size - start, start)
        nl = tail.rfind(b'\n')
        return size if nl < 0 else start + nl + 1

    def _recover_rotated(self, found):
        """After a restart, find rotated files that hold unread lines."""
        known = {'%d:%d' % k for k in found}
        for ident, entry in list(self._committed.items()):
            if ident in known or entry.get('gen') is not None:
                continue
            directory = os.path.dirname(entry.get('path') or '')
            try:
                dev, ino = (int(x) for x in ident.split(':'))
                entries = list(os.scandir(directory or '.'))
            except (OSError, ValueError):
                continue
            for de in entries:
                try:
                    if de.inode() != ino or not de.is_file():
                        continue
                    st = de.stat()
                except OSError:
                    continue
                if st.st_dev != dev or st.st_size <= entry['offset']:
                    continue
                tf = self._open(de.path, st, recovering=True)
                if tf is None:
                    continue
                tf.retired = True
                tf.stream = stream_name(entry['path'])
                self._files[(dev, ino)] = tf
                LOG.info('Reading the rest of rotated file %s from offset '
                         '%d', de.path, tf.offset)
                break

    # -- reading -----------------------------------------------------------

    def poll(self):
        """Read what the followed files gained; return a list of Lines."""
        found = self._scan()
        if self._first_scan:
            self._recover_rotated(found)
        for ident, (path, st) in found.items():
            tf = self._files.get(ident)
            if tf is None:
                if self._skip.get(ident) == 'compressed':
                    continue
                tf = self._open(path, st)
                if tf is None:
                    continue
                self._files[ident] = tf
            elif tf.path != path:
                LOG.info('%s was renamed to %s', tf.path, path)
                tf.path = path
            tf.retired = False
        for ident, tf in self._files.items():
            if ident not in found and not tf.retired:
                tf.retired = True
                LOG.info('%s was rotated away or deleted: reading it to its '
                         'end', tf.path)
        self._first_scan = False

        lines = []
        order = sorted(self._files.values(),
                       key=lambda f: (not f.retired, f.mtime))
        for tf in order:
            try:
                got = self._read(tf, lines)
            except OSError as exc:
                self.stats['read_errors'] += 1
                LOG.error('Error reading %s: %s; closing it', tf.path, exc)
                got = 0
                tf.retired = True
            if tf.retired and got == 0:
                self._close(tf, lines)
        self.stats['lines'] += len(lines)
        return lines

    def _check(self, tf, out):
        """Detect truncation or rewriting; reset ``tf`` if so."""
        st = os.fstat(tf.fd)
        tf.mtime = st.st_mtime
        if st.st_size < tf.pos:
            why = 'truncated (size %d < offset %d)' % (st.st_size, tf.pos)
        elif len(tf.head) < FP_LEN and st.st_size > len(tf.head):
            head = os.pread(tf.fd, FP_LEN, 0)
            if head[:len(tf.head)] == tf.head:
                tf.head = head
                entry = self._committed.get(tf.ident)
                if entry is not None and entry['gen'] == tf.gen:
                    entry['fp'] = _fingerprint(head)
                    entry['fp_len'] = len(head)
                    self._dirty = True
                return st
            why = 'rewritten (first bytes changed)'
        elif st.st_size > tf.pos and tf.pos > 0 and tf.head and (
                os.pread(tf.fd, len(tf.head), 0) != tf.head):
            why = 'rewritten (first bytes changed)'
        else:
            return st
        self.stats['truncations'] += 1
        LOG.warning('%s was %s: reading it again from the start',
                    tf.path, why)
        return self._reset(tf, st, out)

    def _reset(self, tf, st, out):
        self._recover_from_copy(tf, out)
        tf.gen += 1
        tf.pos = tf.offset = 0
        tf.lineno = 0
        tf.partial = b''
        tf.cut = None
        tf.cut_len = 0
        tf.head = os.pread(tf.fd, FP_LEN, 0)
        self._committed[tf.ident] = {
            'path': tf.path, 'offset': 0, 'lineno': 0,
            'fp': _fingerprint(tf.head), 'fp_len': len(tf.head),
            'gen': tf.gen, 'seen': time.time()}
        self._dirty = True
        return st

    def _recover_from_copy(self, tf, out):
        """Before a copytruncate reset, read what the copy holds beyond."""
        if not tf.head or tf.cut is not None:
            return
        directory = os.path.dirname(tf.path) or '.'
        base = os.path.basename(tf.path)
        try:
            entries = list(os.scandir(directory))
        except OSError:
            return
        for de in entries:
            if not de.name.startswith(base) or de.name == base:
                continue
            try:
                if not de.is_file() or de.stat().st_size <= tf.pos:
                    continue
                with open(de.path, 'rb') as f:
                    if f.read(len(tf.head)) != tf.head:
                        continue
                    f.seek(tf.pos)
                    rest = f.read(MAX_READ_PER_POLL)
            except OSError:
                continue
            data = tf.partial + rest
            pieces = data.split(b'\n')
            if pieces[-1] == b'':
                pieces.pop()
            off = tf.offset
            for piece in pieces:
                off += len(piece) + 1
                tf.lineno += 1
                out.append(Line(tf.stream, piece, de.path, off, tf.lineno,
                                tf.key))
            self.stats['lines_from_copy'] += len(pieces)
            LOG.info('Read %d lines written before the copytruncate of %s '
                     'from its copy %s', len(pieces), tf.path, de.path)
            return

    def _read(self, tf, out):
        """Append the whole lines ``tf`` gained to ``out``; return bytes."""
        st = self._check(tf, out)
        if st.st_size <= tf.pos:
            return 0
        got = 0
        while got < MAX_READ_PER_POLL:
            chunk = os.pread(tf.fd, READ_CHUNK, tf.pos)
            if not chunk:
                break
            tf.pos += len(chunk)
            got += len(chunk)
            self._split(tf, chunk, out)
            if len(chunk) < READ_CHUNK:
                break
        return got

    def _split(self, tf, chunk, out):
        if tf.cut is not None:
            nl = chunk.find(b'\n')
            if nl < 0:
                tf.cut_len += len(chunk)
                return
            # The over-long line ends here: hand on its head.
            tf.offset += tf.cut_len + nl + 1
            tf.lineno += 1
            out.append(Line(tf.stream, tf.cut, tf.path, tf.offset,
                            tf.lineno, tf.key))
            tf.cut = None
            tf.cut_len = 0
            chunk = chunk[nl + 1:]
        data = tf.partial + chunk if tf.partial else chunk
        pieces = data.split(b'\n')
        rest = pieces.pop()
        off = tf.offset
        lineno = tf.lineno
        stream, path, key = tf.stream, tf.path, tf.key
        for piece in pieces:
            off += len(piece) + 1
            lineno += 1
            out.append(Line(stream, piece, path, off, lineno, key))
        tf.offset = off
        tf.lineno = lineno
        if len(rest) > HARD_LINE_CAP:
            self.stats['overlong_lines'] += 1
            LOG.warning('Line %d of %s is longer than %d bytes: keeping its '
                        'start only', lineno + 1, path, HARD_LINE_CAP)
            tf.cut = rest[:HARD_LINE_CAP]
            tf.cut_len = len(rest)
            tf.partial = b''
        else:
            tf.partial = rest

    def _close(self, tf, out):
        if tf.partial:
            # The writer is gone: an unterminated last line is whole.
            tf.offset += len(tf.partial)
            tf.lineno += 1
            out.append(Line(tf.stream, tf.partial, tf.path, tf.offset,
                            tf.lineno, tf.key))
            tf.partial = b''
        try:
            os.close(tf.fd)
        except OSError:
            pass
        self._files.pop((tf.dev, tf.ino), None)
        entry = self._committed.get(tf.ident)
        if entry is not None and entry['gen'] == tf.gen:
            entry['end'] = tf.offset
            entry['closed'] = True
            self._dirty = True
        LOG.info('Stopped following %s at offset %d', tf.path, tf.offset)

    # -- committing --------------------------------------------------------

    def commit(self, upto):
        """Save read positions up to the given lines (one or many).

        Call it with lines whose records were handed on safely. Lines of a
        file that has since been truncated are ignored: what they read is
        gone from it.
        """
        if isinstance(upto, Line):
            upto = (upto,)
        for line in upto:
            if line.key[0] != 'file':
                continue
            _, dev, ino, gen = line.key
            entry = self._committed.get('%d:%d' % (dev, ino))
            if entry is None or entry['gen'] != gen:
                continue
            if line.offset > entry['offset']:
                entry['offset'] = line.offset
                entry['lineno'] = line.lineno
                entry['path'] = line.path
                self._dirty = True
        if self._dirty:
            self._save()

    def _save(self):
        now = time.time()
        files = {}
        for ident, entry in list(self._committed.items()):
            if entry.get('closed') and entry['offset'] >= entry.get('end', 0):
                del self._committed[ident]  # read and committed to its end
                continue
            tracked = entry.get('gen') is not None and not entry.get('closed')
            if tracked:
                entry['seen'] = now
            elif now - entry.get('seen', now) > FORGET_AFTER:
                del self._committed[ident]
                continue
            files[ident] = {k: entry[k] for k in
                            ('path', 'offset', 'lineno', 'fp', 'fp_len',
                             'seen') if k in entry}
        self._dirty = False
        if self.state is not None:
            self.state.save({'version': 1, 'files': files})

    def close(self):
        """Close every followed file (positions stay as committed)."""
        for tf in list(self._files.values()):
            try:
                os.close(tf.fd)
            except OSError:
                pass
        self._files.clear()

    @property
    def files(self):
        """Paths followed now."""
        return sorted(tf.path for tf in self._files.values())
