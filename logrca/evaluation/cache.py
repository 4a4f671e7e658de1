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

"""A disk cache of parsed runs, so that repeated evaluations are cheap.

Walking an xz archive is fast; parsing millions of oslo.log lines into
records is not. Each archive is walked once, sequentially; every allowed
service log of every test is parsed into records by the same reader the
agent uses, and the records are pickled per (test, stream). Loading a run
then reads a few small files. The cache key covers the archive (path, size,
time) and the source of the parsing code, so a changed parser or archive
gets a fresh cache.
"""

import collections
import dataclasses
import fcntl
import hashlib
import importlib
import json
import os
import pickle
import shutil
import sys
import tempfile
import time

from oslo_log import log

from logrca.evaluation import dataset as dataset_mod
from logrca.evaluation import streams as streams_mod
from logrca.parsing import records as records_mod

LOG = log.getLogger(__name__)

# Bump when the layout of the cache, or what it holds, changes (2: the
# activation times of epoch trigger stamps, see dataset.epoch_resolution).
CACHE_VERSION = 2
COMPLETE = 'complete.json'
# Caches of an archive by an older parser are removed after this long.
STALE_AFTER = 12 * 3600
TRIGGER = 'trigger.json'
_FIELDS = tuple(f.name for f in dataclasses.fields(records_mod.LogRecord))
# Modules whose source decides what records a line gives.
_PARSER_MODULES = ('logrca.parsing.oslo_log', 'logrca.parsing.records',
                   'logrca.masking')


def default_cache_dir():
    """``$LOGRCA_EVAL_CACHE`` or a folder under the system temp dir."""
    return os.environ.get('LOGRCA_EVAL_CACHE') or os.path.join(
        tempfile.gettempdir(), 'logrca-eval-cache')


def oslo_log_reader(stream, max_line_length):
    """The agent's record reader for one stream."""
    from logrca.parsing import oslo_log
    return oslo_log.RecordReader(stream, max_line_length=max_line_length)


def parser_fingerprint(modules=_PARSER_MODULES):
    """A digest of the source of the parsing code."""
    digest = hashlib.sha1()
    for name in modules:
        module = importlib.import_module(name)
        with open(module.__file__, 'rb') as f:
            digest.update(f.read())
    return digest.hexdigest()[:16]


def to_rows(records):
    """Records to plain tuples (fast to pickle and to load)."""
    return [tuple(getattr(r, name) for name in _FIELDS) for r in records]


def from_rows(rows):
    """Tuples back to fresh records."""
    make = records_mod.LogRecord
    return [make(*row) for row in rows]


def parse_lines(lines, stream, reader_factory, max_line_length, stats):
    """Parse an iterable of raw lines of one stream into records."""
    reader = reader_factory(stream, max_line_length)
    found = []
    for lineno, line in enumerate(lines, 1):
        found.extend(reader.feed(line, lineno))
        stats['lines'] += 1
    found.extend(reader.flush())
    for key, value in getattr(reader, 'stats', {}).items():
        stats['reader_' + key] += value
    return found


class RecordCache:
    """Parsed runs of fault-injection folders, on disk.

    :param root: cache folder (created when missing).
    :param max_line_length: as ``[agent] max_line_length``.
    :param reader_factory: ``f(stream, max_line_length)`` returning an
        object with ``feed(line, lineno)`` and ``flush()`` (default: the
        agent's oslo.log reader).
    :param fingerprint: digest of the parsing code (default: computed from
        the reader's modules); part of the cache key.
    """

    def __init__(self, root=None, max_line_length=65536,
                 reader_factory=None, fingerprint=None):
        self.root = os.path.abspath(root or default_cache_dir())
        self.max_line_length = max_line_length
        self.reader_factory = reader_factory or oslo_log_reader
        self.fingerprint = fingerprint or parser_fingerprint()
        self.stats = collections.Counter()

    def folder(self, data, campaign, round_):
        """The cache folder of one archive of ``data`` (a Dataset)."""
        path = os.path.realpath(data.archive(campaign, round_))
        st = os.stat(path)
        key = '|'.join(map(str, (CACHE_VERSION, path, st.st_size,
                                 int(st.st_mtime), self.fingerprint,
                                 self.max_line_length)))
        digest = hashlib.sha1(key.encode()).hexdigest()[:20]
        return os.path.join(self.root, '%s-round_%d-%s'
                            % (campaign, round_, digest))

    def is_built(self, data, campaign, round_):
        return os.path.exists(os.path.join(
            self.folder(data, campaign, round_), COMPLETE))

    def ensure(self, data, archives=None, progress=True, jobs=1):
        """Build the cache of every archive of ``data`` not yet cached.

        :param archives: ``(campaign, round)`` pairs (default: all).
        :param jobs: archives parsed in parallel processes.
        """
        wanted = archives or [(c, r) for c in data.campaigns
                              for r in dataset_mod.ROUNDS]
        todo = [a for a in wanted if not self.is_built(data, *a)]
        if not todo:
            return
        if jobs > 1 and len(todo) > 1:
            import concurrent.futures
            with concurrent.futures.ProcessPoolExecutor(
                    max_workers=min(jobs, len(todo))) as pool:
                futures = [pool.submit(self.build, data, c, r, progress)
                           for c, r in todo]
                for future in futures:
                    self.stats.update(future.result())
        else:
            for campaign, round_ in todo:
                self.stats.update(self.build(data, campaign, round_,
                                             progress))

    def build(self, data, campaign, round_, progress=True):
        """Parse one archive into the cache; return its counters.

        An exclusive lock per archive makes a second process wait for the
        first one's result instead of parsing the same archive again.
        """
        final = self.folder(data, campaign, round_)
        os.makedirs(self.root, exist_ok=True)
        with open(final + '.lock', 'a') as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                if self.is_built(data, campaign, round_):
                    return collections.Counter()
                return self._build(data, campaign, round_, final, progress)
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def _build(self, data, campaign, round_, final, progress):
        work = final + '.building-%d' % os.getpid()
        shutil.rmtree(work, ignore_errors=True)
        os.makedirs(work)
        stats = collections.Counter()
        start = time.monotonic()
        bar = None
        if progress:
            import tqdm
            bar = tqdm.tqdm(desc='parse %s round %d' % (campaign, round_),
                            unit=' files', file=sys.stderr, mininterval=1.0)
        tests = set()
        for key, rest, _info, fileobj in data.members(campaign, round_):
            tests.add(key.test_id)
            folder = os.path.join(work, str(key.test_id))
            if rest == 'logs/round_%d/%s' % (round_,
                                             dataset_mod.TRIGGER_NAME):
                text = fileobj.read().decode('utf-8', 'replace')
                activation = dataset_mod.parse_trigger(text)
                if activation is None:
                    LOG.warning('%s round %d: %s has no activation time',
                                key, round_, rest)
                    stats['bad_triggers'] += 1
                os.makedirs(folder, exist_ok=True)
                with open(os.path.join(folder, TRIGGER), 'w') as f:
                    json.dump({'activation': activation}, f)
                continue
            name = streams_mod.stream_name(rest, round_)
            if name is None:
                stats['label_files'] += 1
                continue
            records = parse_lines(fileobj, name, self.reader_factory,
                                  self.max_line_length, stats)
            stats['records'] += len(records)
            stats['files'] += 1
            os.makedirs(folder, exist_ok=True)
            target = os.path.join(folder, name + '.pkl')
            if os.path.exists(target):
                LOG.warning('%s round %d: two files give stream %s; '
                            'the second is ignored (%s)', key, round_,
                            name, rest)
                stats['duplicate_streams'] += 1
                continue
            with open(target, 'wb') as f:
                pickle.dump(to_rows(records), f,
                            protocol=pickle.HIGHEST_PROTOCOL)
            if bar is not None:
                bar.update(1)
                bar.set_postfix(lines=stats['lines'], refresh=False)
        if bar is not None:
            bar.close()
        stats['seconds'] = round(time.monotonic() - start, 3)
        summary = {'campaign': campaign, 'round': round_,
                   'archive': data.archive(campaign, round_),
                   'fingerprint': self.fingerprint,
                   'tests': sorted(tests), 'stats': dict(stats)}
        with open(os.path.join(work, COMPLETE), 'w') as f:
            json.dump(summary, f)
        shutil.rmtree(final, ignore_errors=True)
        os.replace(work, final)
        self._prune(summary['archive'], final)
        LOG.info('Parsed %s round %d: %d files, %d lines, %d records in '
                 '%.1f s', campaign, round_, stats['files'], stats['lines'],
                 stats['records'], stats['seconds'])
        return stats

    def _prune(self, archive, keep):
        """Remove old caches of the same archive made by another parser.

        Only those written more than :data:`STALE_AFTER` seconds ago go:
        an evaluation started before the parser changed may still be
        reading a newer one.
        """
        for name in os.listdir(self.root):
            path = os.path.join(self.root, name)
            if path == keep or not os.path.isdir(path):
                continue
            try:
                with open(os.path.join(path, COMPLETE)) as f:
                    old = json.load(f).get('archive')
                age = time.time() - os.path.getmtime(
                    os.path.join(path, COMPLETE))
            except (OSError, ValueError):
                continue
            if old == archive and age > STALE_AFTER:
                LOG.info('Removing stale cache %s', path)
                shutil.rmtree(path, ignore_errors=True)
                try:
                    os.unlink(path + '.lock')
                except OSError:
                    pass

    def summary(self, data, campaign, round_):
        """The counters written when an archive was cached."""
        path = os.path.join(self.folder(data, campaign, round_), COMPLETE)
        with open(path) as f:
            return json.load(f)

    def load(self, data, run_key):
        """Records of one run: ``{stream: [LogRecord]}`` (file order)."""
        test = run_key.test
        if not self.is_built(data, test.campaign, run_key.round):
            self.ensure(data, [(test.campaign, run_key.round)],
                        progress=False)
        folder = os.path.join(self.folder(data, test.campaign,
                                          run_key.round), str(test.test_id))
        streams = {}
        if not os.path.isdir(folder):
            self.stats['runs_without_logs'] += 1
            LOG.warning('%s has no service logs in its archive', run_key)
            return streams
        for name in sorted(os.listdir(folder)):
            if not name.endswith('.pkl'):
                continue
            with open(os.path.join(folder, name), 'rb') as f:
                streams[name[:-4]] = from_rows(pickle.load(f))
        return streams

    def activation(self, data, test):
        """Fault activation time of a test (round 1 trigger_log) or None."""
        if not self.is_built(data, test.campaign, 1):
            self.ensure(data, [(test.campaign, 1)], progress=False)
        path = os.path.join(self.folder(data, test.campaign, 1),
                            str(test.test_id), TRIGGER)
        try:
            with open(path) as f:
                return json.load(f).get('activation')
        except FileNotFoundError:
            return None
