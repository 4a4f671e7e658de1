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

"""The journal follower on real journal files made by journal-remote.

The journal files are written by Debian's ``systemd-journal-remote`` from
journal export format built out of real oslo.log lines (Loghub's OpenStack
sample), laid out as DevStack logs them: one entry per line, the oslo.log
text without timestamp and PID in MESSAGE, unit ``devstack@n-cpu``.
"""

import calendar
import os
import shutil
import struct
import subprocess
import time
import unittest

import pytest

from logrca import conf as logrca_conf
from logrca.agent import journal
from logrca.agent import offsets
from logrca.parsing import oslo_log
from logrca.parsing import records
from logrca.tests import services
from logrca.tests.unit.parsing import data as shared

JOURNAL_REMOTE = '/lib/systemd/systemd-journal-remote'
UNITS = {'nova-api': 'devstack@n-api.service',
         'nova-compute': 'devstack@n-cpu.service',
         'nova-scheduler': 'devstack@n-sch.service'}


def _require_tools():
    if not (os.access(JOURNAL_REMOTE, os.X_OK) and shutil.which('journalctl')):
        reason = ('systemd-journal-remote and journalctl are needed '
                  '(apt-get install systemd-journal-remote)')
        if services.in_ci():
            raise AssertionError('CI=true and ' + reason)
        raise unittest.SkipTest(reason)


def _real_lines():
    """(service, timestamp, pid, text after TS and PID) of Loghub lines."""
    path = shared.loghub_dir() / 'OpenStack_2k.log'
    out = []
    with open(path, encoding='utf-8') as f:
        for line in f:
            fname, day, clock, pid, rest = line.rstrip('\n').split(' ', 4)
            service = fname.split('.', 1)[0]
            ts = calendar.timegm(time.strptime(
                day + ' ' + clock[:8], '%Y-%m-%d %H:%M:%S'))
            ts += int(clock[9:12]) / 1000.0
            out.append((service, ts, pid, rest))
    return out


def _field(name, value):
    if b'\n' in value or b'\x1b' in value:
        return name + b'\n' + struct.pack('<Q', len(value)) + value + b'\n'
    return name + b'=' + value + b'\n'


def _export(entries, start=0):
    """Journal export format of (unit, ts, pid, message bytes) entries."""
    out = []
    for i, (unit, ts, pid, message) in enumerate(entries, start):
        out.append(
            b'__REALTIME_TIMESTAMP=%d\n' % round(ts * 1e6)
            + b'__MONOTONIC_TIMESTAMP=%d\n' % (1000 + i)
            + b'_BOOT_ID=5d1b7a8e2c3f4e0a9b6c7d8e9f0a1b2c\n'
            + b'_HOSTNAME=devstack-1\n'
            + _field(b'_SYSTEMD_UNIT', unit.encode())
            + _field(b'SYSLOG_IDENTIFIER',
                     unit.split('@')[-1].removesuffix('.service').encode())
            + b'_PID=%s\n' % pid.encode()
            + _field(b'MESSAGE', message) + b'\n')
    return b''.join(out)


def _write_journal(path, entries, start=0):
    subprocess.run([JOURNAL_REMOTE, '--output=%s' % path, '-'],
                   input=_export(entries, start), check=True,
                   capture_output=True, timeout=60)


def _conf(tmp_path, units, **agent):
    conf = logrca_conf.new_conf()
    conf([], project='logrca', default_config_files=[])
    conf.set_override('state_path', str(tmp_path / 'state'))
    conf.set_override('journal_units', units, 'agent')
    conf.set_override('follow_from', 'beginning', 'agent')
    for key, value in agent.items():
        conf.set_override(key, value, 'agent')
    return conf


@pytest.fixture
def real():
    _require_tools()
    lines = _real_lines()
    entries = [(UNITS[s], ts, pid, text.encode()) for s, ts, pid, text
               in lines]
    return lines, entries


def _follower(conf):
    return journal.JournalFollower(
        conf, offsets.StateFile.for_conf(conf, 'journal.json'))


def _poll_all(follower):
    lines = []
    while True:
        got = follower.poll()
        if not got:
            return lines
        lines += got


def test_stream_names():
    assert journal.journal_stream_name('devstack@n-cpu.service') == (
        'nova-compute')
    assert journal.journal_stream_name('devstack@q-svc') == 'neutron-server'
    assert journal.journal_stream_name('devstack@keystone.service') == (
        'keystone')
    assert journal.journal_stream_name('nova-api.service') == 'nova-api'
    assert journal.journal_stream_name('devstack@my-thing') == 'my-thing'


def test_devstack_journal_becomes_oslo_log_records(tmp_path, real):
    lines, entries = real
    jfile = tmp_path / 'j' / 'remote.journal'
    jfile.parent.mkdir()
    # A colour-coded multi-line ERROR as devstack writes it (a byte array
    # in journalctl's JSON output), built from a real line.
    svc, ts, pid, text = lines[0]
    colour = ('\x1b[01;31m' + text.replace('INFO ', 'ERROR ', 1)
              + '\nTraceback (most recent call last):\n  File "x.py"'
              + '\x1b[00m').encode()
    _write_journal(jfile, entries + [(UNITS[svc], ts + 1, pid, colour)])
    conf = _conf(tmp_path, ['devstack@n-cpu', 'devstack@n-api'],
                 journal_files=[str(jfile)])
    follower = _follower(conf)
    got = _poll_all(follower)
    wanted = [x for x in lines if x[0] != 'nova-scheduler']
    assert len(got) == len(wanted) + 3  # the colour entry has 3 lines
    assert {x.stream for x in got} == {'nova-api', 'nova-compute'}
    assert got[0].host == 'devstack-1'
    readers = {}
    recs = []
    for line in got:
        reader = readers.setdefault(line.key, oslo_log.RecordReader(
            line.stream, 65536, line.host))
        recs += reader.feed(line.data, line.lineno)
    for reader in readers.values():
        recs += reader.flush()
    assert len(recs) == len(wanted) + 1
    assert all(r.kind == records.LOG for r in recs)
    first = [r for r in recs if r.stream == wanted[0][0]][0]
    assert first.timestamp == pytest.approx(wanted[0][1], abs=0.001)
    assert first.pid == int(wanted[0][2])
    assert first.request_id and first.request_id.startswith('req-')
    error = [r for r in recs if r.level == 'ERROR']
    assert len(error) == 1 and error[0].extra[0].startswith('Traceback')
    assert '\x1b' not in error[0].message


def test_cursor_survives_restart_and_appends_are_read(tmp_path, real):
    _lines, entries = real
    jdir = tmp_path / 'journal'
    jdir.mkdir()
    compute = [e for e in entries if e[0] == UNITS['nova-compute']]
    api = [e for e in entries if e[0] == UNITS['nova-api']]
    mixed = [e for pair in zip(compute[:100], api[:100]) for e in pair]
    _write_journal(jdir / 'remote-devstack.journal', mixed)
    conf = _conf(tmp_path, ['devstack@n-cpu', 'devstack@n-api'],
                 journal_directory=str(jdir))
    follower = _follower(conf)
    got = _poll_all(follower)
    assert len(got) == 200
    # Hand on all compute lines but only the first 10 api lines.
    api_lines = [x for x in got if x.stream == 'nova-api']
    follower.commit([x for x in got if x.stream == 'nova-compute'])
    follower.commit(api_lines[:10])
    # Restart: the 90 api lines come again, no compute line does.
    follower = _follower(conf)
    again = _poll_all(follower)
    assert [x.data for x in again] == [x.data for x in api_lines[10:]]
    follower.commit(again)
    # A second journal-remote run appends to the same file.
    _write_journal(jdir / 'remote-devstack.journal', compute[100:150],
                   start=1000)
    more = follower.poll()
    assert len(more) == 50 and {x.stream for x in more} == {'nova-compute'}
    follower.commit(more)
    follower = _follower(conf)
    assert _poll_all(follower) == []


def test_identifiers_and_unknown_units(tmp_path, real):
    _lines, entries = real
    jfile = tmp_path / 'sched.journal'
    _write_journal(jfile, entries)
    conf = _conf(tmp_path, ['identifier:n-sch'], journal_files=[str(jfile)])
    got = _poll_all(_follower(conf))
    assert len(got) == 7 and {x.stream for x in got} == {'nova-scheduler'}


def test_follow_from_end_starts_after_existing_entries(tmp_path, real):
    _lines, entries = real
    jfile = tmp_path / 'x.journal'
    _write_journal(jfile, entries[:20])
    conf = _conf(tmp_path, ['devstack@n-api', 'devstack@n-cpu'],
                 journal_files=[str(jfile)], follow_from='end')
    follower = _follower(conf)
    assert _poll_all(follower) == []
    _write_journal(jfile, entries[20:25], start=20)
    assert len(_poll_all(follower)) == 5


def test_unreadable_journal_is_reported_and_retried(tmp_path):
    _require_tools()
    conf = _conf(tmp_path, ['devstack@n-cpu'],
                 journal_directory=str(tmp_path / 'missing'))
    follower = _follower(conf)
    assert follower.poll() == []
    assert follower.stats['journalctl_failures'] == 1
    assert follower.poll() == []  # backing off: journalctl not run again
    assert follower.stats['journalctl_failures'] == 1
