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

"""logrca-manage replay: agent and conductor in one process, no broker."""

import contextlib
import gc
import heapq
import itertools
import os
import sys
import time

from oslo_log import log

from logrca.agent import follow
from logrca.agent import pipeline as pipeline_mod
from logrca.conductor import manager as conductor_manager
from logrca.db import api as db_api
from logrca.db import migration
from logrca.parsing import base as parsing_base
from logrca.parsing import oslo_log
from logrca.parsing import speedups

LOG = log.getLogger(__name__)

# Anomalies handed to the conductor in one call (at least).
STORE_BATCH = 200

# Records handed to the pipeline in one call.
PROCESS_BATCH = 4096

# Allocations between two young garbage collections during a replay
# (Python's default is 700). A replay keeps many records alive in open
# sessions, and the default makes the collector walk them over and over:
# about a fifth of the replay's CPU time on the fault-injection logs.
# Records hold no reference cycles, so collecting less often costs no
# memory beyond a few thousand young objects.
GC_THRESHOLD = (100000, 50, 100)


def add_parsers(subparsers):
    parser = subparsers.add_parser(
        'replay', help='Replay log files through the detectors into the '
                       'database, as a live agent and conductor would.')
    parser.add_argument('paths', nargs='+', metavar='PATH',
                        help='Log files or folders (plain, gz, bz2 or xz).')
    parser.add_argument('--detector', action='append', dest='detector_names',
                        help='Detector driver (repeatable); default: '
                             '[agent] detectors.')
    parser.add_argument('--no-progress', action='store_true',
                        help='Do not show a progress bar.')
    parser.set_defaults(func=run)


def discover(paths):
    """Return the log files named by ``paths`` (folders are walked)."""
    found = []
    for path in paths:
        if os.path.isdir(path):
            for root, dirs, files in os.walk(path):
                dirs.sort()
                for name in sorted(files):
                    found.append(os.path.join(root, name))
        elif os.path.exists(path):
            found.append(path)
        else:
            raise FileNotFoundError('no such file or folder: %s' % path)
    return found


def _records(path, stream, max_line_length, stats):
    """Yield the records of one file, in file order."""
    reader = oslo_log.RecordReader(stream, max_line_length=max_line_length)
    try:
        with follow.open_log(path) as handle:
            yield from reader.read(handle)
    except OSError as exc:
        LOG.error('Cannot read %s: %s', path, exc)
        stats['unreadable_files'] += 1
    yield from reader.flush()
    stats['lines'] += reader.stats.get('lines', 0)
    for key in ('invalid_utf8', 'truncated'):
        stats[key] += reader.stats.get(key, 0)


def merged_records(files, max_line_length, stats):
    """Records of all files merged in log-time order, as an agent sees them.

    Records without a timestamp keep their place in their own stream (they
    inherit the stream's last timestamp from the reader).
    """
    streams = [_records(path, follow.stream_name(path), max_line_length,
                        stats) for path in files]
    return merge_by_time(streams)


def merge_by_time(streams):
    """``heapq.merge(*streams, key=timestamp or 0.0)``, at less cost.

    The same records in the same order: each step yields the first record
    of the stream whose next record has the smallest (time, stream index).
    A stream goes into the heap only once log time reaches its first
    record (replays hold many files of different times, most of them
    waiting), and records that come before every other stream's next one
    are yielded without touching the heap. With the compiled accelerator
    (:mod:`logrca.parsing.speedups`) an iterator in C does the same steps.
    """
    if speedups.module is not None:
        return speedups.module.MergeIterator(streams)
    return _merge_by_time(streams)


def _merge_by_time(streams):
    """The pure-Python :func:`merge_by_time` (the accelerator's
    reference)."""
    waiting = []
    for index, stream in enumerate(streams):
        for record in stream:
            waiting.append([record.timestamp or 0.0, index, record, stream])
            break
    # Smallest last, so that pop() takes the next stream to start.
    waiting.sort(reverse=True)
    heap = []
    push = heapq.heappush
    while heap or waiting:
        if waiting and (not heap or waiting[-1] < heap[0]):
            push(heap, waiting.pop())
            continue
        entry = heap[0]
        index = entry[1]
        yield entry[2]
        # The smallest next record of the other streams: a child of the
        # root, or the next stream to start.
        size = len(heap)
        bound = None
        if size > 1:
            bound = heap[1]
            if size > 2 and heap[2] < bound:
                bound = heap[2]
        if waiting and (bound is None or waiting[-1] < bound):
            bound = waiting[-1]
        if bound is None:
            yield from entry[3]
            heap.clear()
            continue
        bound_ts, bound_index = bound[0], bound[1]
        for record in entry[3]:
            ts = record.timestamp or 0.0
            if ts < bound_ts or (ts == bound_ts and index < bound_index):
                yield record
                continue
            entry[0] = ts
            entry[2] = record
            heapq.heapreplace(heap, entry)
            break
        else:
            heapq.heappop(heap)


def _progress_bar(disabled):
    """A tqdm progress bar on stderr counting records, or None."""
    if disabled:
        return None
    import tqdm
    return tqdm.tqdm(unit=' records', unit_scale=True, desc='replay',
                     file=sys.stderr, mininterval=1.0)


@contextlib.contextmanager
def _bulk_gc():
    """Collect garbage less often while replaying (see GC_THRESHOLD)."""
    saved = gc.get_threshold()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLD)
    try:
        yield
    finally:
        gc.set_threshold(*saved)
        gc.unfreeze()


def replay(conf, paths, detectors=None, progress=False):
    """Replay ``paths``; store anomalies; return the summary counters."""
    files = discover(paths)
    names = detectors or conf.agent.detectors
    loaded = [pipeline_mod.load_detector(conf, name) for name in names]
    miner = parsing_base.load_miner(conf)
    pipe = pipeline_mod.Pipeline(conf, miner, loaded)
    dbapi = db_api.get_instance(conf)
    manager = conductor_manager.ConductorManager(conf, dbapi)
    stats = pipe.stats
    stats['files'] = len(files)
    pending = []
    stored = 0

    def flush():
        nonlocal stored
        if pending:
            stored += len(manager.store_anomalies(
                {}, [a.to_dict() for a in pending]) or [])
            pending.clear()

    bar = _progress_bar(not progress)
    start = time.monotonic()
    process_many = pipe.process_many
    merged = merged_records(files, conf.agent.max_line_length, stats)
    with _bulk_gc():
        while True:
            batch = list(itertools.islice(merged, PROCESS_BATCH))
            if not batch:
                break
            pending.extend(process_many(batch))
            if len(pending) >= STORE_BATCH:
                flush()
            if bar is not None:
                bar.update(stats['records'] - bar.n)
        pending.extend(pipe.finish())
        flush()
    if bar is not None:
        bar.update(stats['records'] - bar.n)
        bar.close()
    stats['stored'] = stored
    stats['seconds'] = round(time.monotonic() - start, 3)
    return stats


def run(conf, args):
    migration.upgrade(conf)
    try:
        stats = replay(conf, args.paths, args.detector_names,
                       progress=not args.no_progress)
    except FileNotFoundError as exc:
        print('logrca-manage replay: %s' % exc, file=sys.stderr)
        return 1
    seconds = stats['seconds'] or 1e-9
    print('Replayed %d file(s): %d lines, %d records, %d unparsed, '
          '%d sessions, %d anomalies (%d new) in %.1f s (%.0f lines/s)'
          % (stats['files'], stats['lines'], stats['records'],
             stats['unparsed'], stats['sessions'], stats['anomalies'],
             stats['stored'], seconds, stats['lines'] / seconds))
    return 0
