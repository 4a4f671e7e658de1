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

"""The file follower on real files: rotation, truncation, restarts."""

import bz2
import gzip
import lzma
import os

import pytest

from logrca import conf as logrca_conf
from logrca.agent import follow
from logrca.agent import offsets


def _conf(tmp_path, patterns, follow_from='beginning'):
    conf = logrca_conf.new_conf()
    conf([], project='logrca', default_config_files=[])
    conf.set_override('state_path', str(tmp_path / 'state'))
    conf.set_override('log_files', patterns, 'agent')
    conf.set_override('follow_from', follow_from, 'agent')
    return conf


class Env:
    """A log directory, a state file and followers made on demand."""

    def __init__(self, tmp_path, pattern='*.log', follow_from='beginning'):
        self.dir = tmp_path / 'log' / 'nova'
        self.dir.mkdir(parents=True)
        self.conf = _conf(tmp_path, [str(self.dir / pattern)], follow_from)
        self.state = offsets.StateFile.for_conf(self.conf, 'files.json')

    def follower(self):
        return follow.FileFollower(self.conf, self.state)

    def write(self, name, *lines, end=b'\n'):
        with open(self.dir / name, 'ab') as f:
            for line in lines:
                f.write(line.encode() if isinstance(line, str) else line)
                f.write(end)


def _data(lines):
    return [x.data.decode() for x in lines]


@pytest.mark.parametrize('path, name', [
    ('/var/log/nova/nova-compute.log', 'nova-compute'),
    ('/var/log/cinder/api.log', 'cinder-api'),
    ('logs/round_1/neutron/server.log.bzip2.out', 'neutron-server'),
    ('logs/round_1/nova/nova-placement-api.log.bzip2.out',
     'nova-placement-api'),
    ('/var/log/nova/nova-compute.log.1', 'nova-compute'),
    ('/var/log/nova/nova-compute.log-20240101.gz', 'nova-compute'),
    ('nova-api.log.1.2017-05-16_13:53:08', 'nova-api'),
    ('/opt/stack/logs/screen-n-cpu.log', 'nova-compute'),
    ('/var/log/neutron/l3-agent.log', 'neutron-l3-agent'),
    ('/tmp/x/app.log', 'app'),
])
def test_stream_name(path, name):
    assert follow.stream_name(path) == name


def test_reads_lines_and_holds_partial_last_line(tmp_path):
    env = Env(tmp_path)
    env.write('nova-compute.log', 'one', 'two')
    env.write('nova-compute.log', 'thr', end=b'')
    f = env.follower()
    lines = f.poll()
    assert _data(lines) == ['one', 'two']
    assert lines[0].stream == 'nova-compute'
    assert [x.lineno for x in lines] == [1, 2]
    assert lines[-1].offset == len(b'one\ntwo\n')
    env.write('nova-compute.log', 'ee', 'four')
    lines = f.poll()
    assert _data(lines) == ['three', 'four']
    assert lines[0].lineno == 3
    assert f.poll() == []


def test_new_file_matching_glob_is_picked_up(tmp_path):
    env = Env(tmp_path)
    env.write('nova-compute.log', 'a')
    f = env.follower()
    assert _data(f.poll()) == ['a']
    env.write('nova-api.log', 'b')
    env.write('ignored.txt', 'c')
    lines = f.poll()
    assert _data(lines) == ['b'] and lines[0].stream == 'nova-api'


def test_follow_from_end_skips_history_only_at_first_start(tmp_path):
    env = Env(tmp_path, follow_from='end')
    env.write('nova-compute.log', 'old1', 'old2')
    f = env.follower()
    assert f.poll() == []
    env.write('nova-compute.log', 'new')
    env.write('nova-api.log', 'fresh')  # appeared while running
    assert sorted(_data(f.poll())) == ['fresh', 'new']


def test_rename_rotation_reads_old_file_to_its_end(tmp_path):
    env = Env(tmp_path)
    env.write('nova-compute.log', 'a1', 'a2')
    f = env.follower()
    assert _data(f.poll()) == ['a1', 'a2']
    env.write('nova-compute.log', 'a3')
    os.rename(env.dir / 'nova-compute.log', env.dir / 'nova-compute.log.1')
    env.write('nova-compute.log.1', 'a4')  # writer not yet reopened
    env.write('nova-compute.log', 'b1')
    lines = f.poll()
    assert _data(lines) == ['a3', 'a4', 'b1']
    assert {x.stream for x in lines} == {'nova-compute'}
    env.write('nova-compute.log', 'b2')
    assert _data(f.poll()) == ['b2']
    # The old file gave nothing more: it is closed.
    assert f.files == [str(env.dir / 'nova-compute.log')]


def test_copytruncate_and_truncation_restart_from_zero(tmp_path):
    env = Env(tmp_path)
    log = env.dir / 'nova-compute.log'
    env.write('nova-compute.log', 'line-1', 'line-2')
    f = env.follower()
    assert _data(f.poll()) == ['line-1', 'line-2']
    env.write('nova-compute.log', 'line-3')
    # logrotate copytruncate: copy, then truncate in place.
    (env.dir / 'nova-compute.log.1').write_bytes(log.read_bytes())
    with open(log, 'r+b') as fh:
        fh.truncate(0)
    env.write('nova-compute.log', 'new-1')
    lines = f.poll()
    # line-3 was never read from the file: it is read from the copy.
    assert _data(lines) == ['line-3', 'new-1']
    assert lines[-1].lineno == 1 and f.stats['truncations'] == 1
    # Plain truncation without a copy, then regrowth past the old offset.
    with open(log, 'r+b') as fh:
        fh.truncate(0)
    env.write('nova-compute.log', 'x' * 50, 'y' * 50)
    assert _data(f.poll()) == ['x' * 50, 'y' * 50]
    assert f.stats['truncations'] == 2


def test_delete_and_recreate(tmp_path):
    env = Env(tmp_path)
    env.write('nova-compute.log', 'first')
    f = env.follower()
    assert _data(f.poll()) == ['first']
    os.unlink(env.dir / 'nova-compute.log')
    assert f.poll() == []
    assert f.files == []
    env.write('nova-compute.log', 'second')
    assert _data(f.poll()) == ['second']


def test_restart_neither_loses_nor_repeats(tmp_path):
    env = Env(tmp_path)
    env.write('nova-compute.log', 'a', 'b', 'c')
    f = env.follower()
    lines = f.poll()
    f.commit(lines[:2])  # c was polled but not handed on
    f.close()
    # Killed between poll and commit: c comes again, a and b do not.
    f = env.follower()
    lines = f.poll()
    assert _data(lines) == ['c'] and lines[0].lineno == 3
    f.commit(lines)
    env.write('nova-compute.log', 'd')
    f.close()
    f = env.follower()
    lines = f.poll()
    assert _data(lines) == ['d']
    f.close()
    # Nothing committed for d: it comes again after another restart.
    f = env.follower()
    assert _data(f.poll()) == ['d']


def test_restart_after_rotation_reads_rest_of_rotated_file(tmp_path):
    env = Env(tmp_path)
    env.write('nova-compute.log', 'a1', 'a2')
    f = env.follower()
    lines = f.poll()
    f.commit(lines[:1])
    f.close()
    # While the agent is down: more lines, then rotation by rename.
    env.write('nova-compute.log', 'a3')
    os.rename(env.dir / 'nova-compute.log', env.dir / 'nova-compute.log.1')
    env.write('nova-compute.log', 'b1')
    f = env.follower()
    lines = f.poll()
    assert _data(lines) == ['a2', 'a3', 'b1']
    f.commit(lines)
    f.close()
    f = env.follower()
    assert f.poll() == []


def test_inode_reuse_is_detected_by_fingerprint(tmp_path):
    env = Env(tmp_path)
    env.write('nova-compute.log', 'A' * 200)
    f = env.follower()
    f.commit(f.poll())
    f.close()
    # Same (dev, inode) for a new file: rewrite in place with other data.
    with open(env.dir / 'nova-compute.log', 'r+b') as fh:
        fh.write(b'B' * 300 + b'\n')
    f = env.follower()
    assert _data(f.poll()) == ['B' * 300]
    assert f.stats['inode_reused'] == 1


def test_garbage_and_a_10mb_line_pass_through(tmp_path):
    env = Env(tmp_path)
    garbage = bytes(range(256)).replace(b'\n', b'') + b'\xff\xfe\x00'
    big = b'x' * (10 * 1024 * 1024)
    env.write('nova-compute.log', garbage, big, 'after')
    f = env.follower()
    lines = []
    for _ in range(5):  # a poll reads a bounded amount per file
        lines += f.poll()
    assert [x.data for x in lines] == [garbage, big, b'after']
    assert lines[-1].offset == os.path.getsize(env.dir / 'nova-compute.log')


def test_line_beyond_hard_cap_is_cut_and_counted(tmp_path, monkeypatch):
    monkeypatch.setattr(follow, 'HARD_LINE_CAP', 1000)
    monkeypatch.setattr(follow, 'READ_CHUNK', 256)
    env = Env(tmp_path)
    env.write('nova-compute.log', 'y' * 5000, 'next')
    f = env.follower()
    lines = f.poll()
    assert [len(x.data) for x in lines] == [1000, 4]
    assert lines[0].offset == 5001 and lines[1].offset == 5006
    assert f.stats['overlong_lines'] == 1


def test_unreadable_and_compressed_files_are_skipped(tmp_path):
    env = Env(tmp_path)
    env.write('nova-compute.log', 'ok')
    (env.dir / 'nova-api.log').write_bytes(gzip.compress(b'zipped\n'))
    f = env.follower()
    assert _data(f.poll()) == ['ok']
    assert f.stats['compressed_files_skipped'] == 1
    if os.geteuid() != 0:  # root reads anything
        env.write('nova-conductor.log', 'secret')
        os.chmod(env.dir / 'nova-conductor.log', 0)
        assert f.poll() == []
        assert f.stats['unreadable_files'] == 1


def test_corrupt_state_file_is_logged_and_ignored(tmp_path):
    env = Env(tmp_path)
    env.write('nova-compute.log', 'a')
    os.makedirs(os.path.dirname(env.state.path))
    with open(env.state.path, 'w') as fh:
        fh.write('{not json')
    f = env.follower()
    f.commit(f.poll())
    assert env.state.corrupt == 1
    assert env.state.load()['files']


@pytest.mark.parametrize('compress', [
    None, gzip.compress, bz2.compress, lzma.compress])
def test_open_log_by_magic_bytes(tmp_path, compress):
    data = b'2018-06-26 03:21:12.936 1867 DEBUG nova.compute x\n' * 3
    path = tmp_path / 'nova-compute.log.bzip2.out'  # name says nothing
    path.write_bytes(compress(data) if compress else data)
    with follow.open_log(str(path)) as fh:
        assert fh.read() == data
