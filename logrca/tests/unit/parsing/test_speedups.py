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

"""The compiled accelerator against the pure-Python reader, miner,
sessionizer, baseline detector, replay merge and pipeline loops.

Every test runs the same input through both implementations and fails
when they disagree in any way: records (every field, and its type),
reader counters and state, exceptions, templates, parameters, the
miner's caches and clusters, the sessions with the sessionizer's state,
the baseline detector's anomalies and state, and merged records.
"""

import collections
import dataclasses
import functools
import json
import logging
import random
import tarfile

import pytest
from oslo_log import formatters

from logrca import conf as logrca_conf
from logrca.agent import pipeline as pipeline_mod
from logrca.agent import sessions as sessions_mod
from logrca.detectors import base as detector_base
from logrca.detectors import baseline as baseline_mod
from logrca.manage import replay as replay_mod
from logrca.parsing import oslo_log
from logrca.parsing import records as records_mod
from logrca.parsing import shape
from logrca.parsing import speedups
from logrca.tests import services
from logrca.tests.unit.parsing import data


@pytest.fixture(autouse=True)
def _built():
    # tools/setup.sh builds the accelerator: under CI a missing build
    # fails these tests instead of skipping them.
    if not speedups.available():
        services.unavailable('logrca.parsing._speedups is not built '
                              '(no C compiler?)')

HDR = '2018-06-26 03:21:12.936 1867 '
UUID = 'c656c2cc-e830-4b90-b82d-ed702722de4e'
REQ = 'req-56318eee-2acb-498a-aa54-928ec042b59a'
# Members of Nova-round_1.tar.xz (in archive order, read in one pass):
# tracebacks of both styles, DEBUG locations, secrets, JSON dumps.
MEMBERS = ('cinder/api', 'cinder/scheduler', 'cinder/volume', 'glance/api',
           'heat/heat-engine', 'neutron/dhcp-agent', 'neutron/l3-agent',
           'neutron/server', 'nova/nova-api', 'nova/nova-compute',
           'nova/nova-conductor', 'nova/nova-placement-api')
LINES_PER_MEMBER = 2000


@pytest.fixture(autouse=True)
def _restore():
    before = speedups.implementation()
    yield
    speedups.use(before == 'c')


@functools.lru_cache(maxsize=1)
def real_streams():
    """``[(stream, [raw lines])]``: the first lines of a few real logs."""
    path = (data.shared_data() / 'dessertlab-openstack-fault-injection' /
            'logs' / 'Nova-round_1.tar.xz')
    wanted = {'Nova/Test_1/logs/round_1/%s.log.bzip2.out' % m: m
              for m in MEMBERS}
    found = {}
    with tarfile.open(path, 'r|xz') as tar:
        for info in tar:
            name = wanted.get(info.name)
            if name is not None:
                raw = tar.extractfile(info).read()
                found[name] = raw.splitlines(keepends=True)[
                    :LINES_PER_MEMBER]
                if len(found) == len(wanted):
                    break
    return [(m.replace('/', '-'), found[m]) for m in MEMBERS]


def _fields(record):
    return tuple((f.name, type(getattr(record, f.name)),
                  getattr(record, f.name))
                 for f in dataclasses.fields(record))


def _reader_state(reader):
    current = reader._current
    return (dict(reader.stats), reader._key, reader._ctx,
            reader._in_traceback, reader._last_ts,
            None if current is None else _fields(current))


def _read(impl, stream, chunks, max_line_length=65536, lineno=0):
    """Records, exception and final state of one reader over ``chunks``
    (each a list of lines given to one read() call)."""
    speedups.use(impl == 'c')
    oslo_log.clear_caches()
    reader = oslo_log.RecordReader(stream, max_line_length=max_line_length)
    out = []
    error = None
    try:
        for chunk in chunks:
            for record in reader.read(chunk, lineno):
                out.append(_fields(record))
            lineno += len(chunk)
        out.extend(_fields(r) for r in reader.flush())
    except Exception as exc:  # compared between the implementations
        error = (type(exc), str(exc))
    return out, error, _reader_state(reader)


def assert_same_reading(lines, chunks=1, **kwargs):
    size = max(1, -(-len(lines) // chunks))
    parts = [lines[i:i + size] for i in range(0, len(lines), size)] or [[]]
    python = _read('python', 'nova-compute', parts, **kwargs)
    c = _read('c', 'nova-compute', parts, **kwargs)
    assert c[1] == python[1]
    assert len(c[0]) == len(python[0])
    for got, want in zip(c[0], python[0]):
        assert got == want
    assert c[2] == python[2]
    return python


def _conf():
    conf = logrca_conf.new_conf()
    conf([], project='logrca', default_config_files=[])
    return conf


def _mine(impl, messages):
    speedups.use(impl == 'c')
    miner = shape.ShapeParser(_conf())
    results = [miner.add(m) for m in messages]
    clusters = [(c.id, c.tokens, c.template, c.variables, c.size)
                for c in miner._clusters.values()]
    caches = (list(miner._tokens.items()),
              [(k, c.id) for k, c in miner._shapes.items()],
              [(k, c.id, v, p) for k, (c, v, p) in miner._messages.items()])
    return results, clusters, caches, miner.templates


def assert_same_mining(messages):
    python = _mine('python', messages)
    c = _mine('c', messages)
    assert c[0] == python[0]
    assert c[1] == python[1]
    assert c[2] == python[2]
    assert c[3] == python[3]
    return python


# -- switching -------------------------------------------------------------


def test_switch_and_environment(monkeypatch):
    assert speedups.use(True) == 'c'
    assert type(oslo_log.RecordReader('x').read([])).__name__ == (
        'RecordIterator')
    assert shape.ShapeParser.add is not shape._PYTHON_ADD
    assert speedups.use(False) == 'python'
    assert shape.ShapeParser.add is shape._PYTHON_ADD
    monkeypatch.setenv(speedups.ENV, '1')
    assert not speedups.wanted()
    monkeypatch.setenv(speedups.ENV, '0')
    assert speedups.wanted()


# -- reader ----------------------------------------------------------------


def test_real_logs_read_alike():
    total = 0
    for _stream, lines in real_streams():
        records, error, state = assert_same_reading(lines)
        assert error is None and records
        total += len(lines)
    assert total > 5000


def test_real_logs_read_alike_in_chunks_and_as_str():
    for _stream, lines in real_streams()[:3]:
        assert_same_reading(lines, chunks=7, lineno=10)
        assert_same_reading([line.decode('utf-8', 'replace')
                             for line in lines], chunks=3)


def test_real_logs_mined_alike():
    speedups.use(False)
    messages = []
    for stream, lines in real_streams():
        reader = oslo_log.RecordReader(stream)
        messages.extend(r.message for r in reader.read(lines))
        messages.extend(r.message for r in reader.flush())
    assert len(messages) > 4000
    assert_same_mining(messages)


def _json_line(level, msg, **extra):
    fmt = formatters.JSONFormatter()
    rec = logging.LogRecord('nova.compute.manager', level,
                            '/usr/lib/python3/nova/compute/manager.py', 42,
                            msg, None, None, func='_build')
    for key, value in extra.items():
        setattr(rec, key, value)
    return fmt.format(rec)


HOSTILE = [
    b'',
    b'\n',
    b'\r\n',
    b'   \t \n',
    b'garbage before any header\n',
    (HDR + 'INFO a.b [-] fine\r\n').encode(),
    (HDR + 'INFO a.b [-] fine\r\n').encode(),
    b'\x00\x01\x02binary\xff\xfe\n',
    b'bin\x7fary but ascii\n',
    b'form\x0cfeed and \x1c separators\n',
    HDR.encode() + b'INFO a.b [-] caf\xe9 invalid utf-8\n',
    HDR.encode() + b'INFO a.b [-] caf\xc3\xa9 valid utf-8\n',
    b'x' * 300 + b'\n',
    HDR.encode() + b'WARNING n.c.m [req-1 u p - - -] over ' + b'y' * 300,
    # Tracebacks: exception prefix without context, then with context.
    (HDR + 'ERROR n.c.m [req-1 u p - - -] Build failed\n').encode(),
    (HDR + 'ERROR n.c.m Traceback (most recent call last):\n').encode(),
    (HDR + 'ERROR n.c.m   File "/x.py", line 1, in f\n').encode(),
    (HDR + 'ERROR n.c.m ValueError: boom\n').encode(),
    (HDR + 'ERROR n.c.m [req-1 u p - - -] Traceback (most recent call '
     'last):\n').encode(),
    (HDR + 'ERROR n.c.m [req-1 u p - - -]   File "/y.py", line 2\n'
     ).encode(),
    (HDR + 'ERROR n.c.m [req-1 u p - - -] [instance: %s] x\n' % UUID
     ).encode(),
    (HDR + 'ERROR n.c.m [instance: %s] prefixed instance\n' % UUID
     ).encode(),
    (HDR + 'INFO n.c.m [req-1 u p - - -] [instance: %s] y\n' % UUID
     ).encode(),
    (HDR + 'INFO n.c.m [req-1 u p - - -] [instance: %s]z\n' % UUID.upper()
     ).encode(),
    (HDR + 'INFO n.c.m [req-1 u p - - -] [instance: %s-] not 36\n' % UUID
     ).encode(),
    b'  bare continuation line\n',
    b'Traceback (most recent call last):\n',
    # Header variants: levels, separators, fractions, contexts.
    b'2018-06-26T03:21:12,5 7 WARN a.b [-] comma and T\n',
    b'2018-06-26 03:21:12 7 WARNING a.b [-] no fraction\n',
    b'2018-06-26 03:21:12. 7 INFO a.b [-] dot without digits\n',
    b'2018-06-26 03:21:12.123456789012345678901234567 7 AUDIT a.b [x] f\n',
    b'2018-06-26 03:21:12.9 7 WARNINGS a.b [-] not a level\n',
    b'2018-06-26 03:21:12.9 7 TRACE a.b\n',
    b'2018-06-26 03:21:12.9 7 NOTICE a.b [unclosed context\n',
    b'2018-06-26 03:21:12.9 7 CRITICAL a.b\t[-] tab after logger\n',
    b'2018-06-26 03:21:12.9 7 DEBUG a.b [req-2 None - - - -] x f '
    b'/a/b.py:12\n',
    b'2018-06-26 03:21:12.9 7 DEBUG a.b [None req-3 admin demo] f /a.py:1\n',
    b'2018-06-26 03:21:12.9 7 DEBUG a.b [-] /a.py:1\n',
    b'2018-06-26 03:21:12.9 7 DEBUG a.b [-] ratio 3:4\n',
    b'2018-06-26 03:21:12.9 7 DEBUG a.b [-] x f /a/b.py:\n',
    b'2018-06-26 03:21:12.9 007 INFO a.b [-] leading zeros\n',
    b'2018-06-26 03:21:12.9 ' + b'9' * 40 + b' INFO a.b [-] big pid\n',
    b'nova-compute.log.1 2018-06-26 03:21:12.9 7 INFO a.b [-] prefixed\n',
    b'nova-compute.log.1  2018-06-26 03:21:12.9 7 INFO a.b [-] two spaces\n',
    # Secrets.
    (HDR + 'DEBUG a.b [-] connect mysql://nova:S3cret@db/nova f /x.py:1\n'
     ).encode(),
    b'  Authorization: Bearer abcdef123\n',
    b'  {"password": "hunter 2", "X-Auth-Token": "gAAAAAtok"}\n',
    (HDR + 'INFO a.b [-] api_key=abc key_name=x http://h:1/x\n').encode(),
    (HDR + 'INFO a.b [-] private\nkey=1 http://u:p@h/\n').encode(),
    (HDR + 'INFO a.b [-] token gAAAAA' + 'x' * 50 + ' MII' + 'y' * 70 + '\n'
     ).encode(),
    # Non-ASCII digits and whitespace.
    (HDR + 'INFO a.b [-] pid ٧ in the message ١٢\n').encode(),
    '2018-06-26 03:21:12.9 ٧ INFO a.b [-] arabic pid\n'.encode(),
    (HDR + 'INFO a.b\u00a0c [-] nbsp in the logger\n').encode(),
    (HDR + 'INFO a.b [-] em\u2003space and \x85 next line\n').encode(),
    (HDR + 'INFO a.b [-] \u2028 line separator\n').encode(),
    # JSON lines.
    _json_line(logging.INFO, 'json one').encode() + b'\n',
    _json_line(logging.DEBUG, 'password=hunter2 checked').encode(),
    b'{"levelname": "INFO", "message": 3}\n',
    b'{"levelname" broken json\n',
    b'{"a": 1}\n',
    # Blank lines after records are continuations.
    (HDR + 'INFO a.b [-] then blank\n').encode(),
    b'\n',
    b'   \n',
]


@pytest.mark.parametrize('chunks', [1, 5])
def test_hostile_bytes_read_alike(chunks):
    records, error, state = assert_same_reading(HOSTILE, chunks=chunks,
                                                max_line_length=200)
    assert error is None
    assert state[0]['truncated'] >= 2 and state[0]['invalid_utf8'] >= 2
    assert state[0]['binary'] >= 1 and state[0]['unparsed'] >= 3


def test_hostile_str_read_alike():
    lines = [line.decode('utf-8', 'replace') for line in HOSTILE]
    assert_same_reading(lines, max_line_length=200)
    assert_same_reading(lines[::-1])


def test_every_hostile_line_alone_and_after_a_record():
    first = (HDR + 'ERROR n.c.m [req-1 u p - - -] start\n').encode()
    for line in HOSTILE:
        assert_same_reading([line], max_line_length=200)
        assert_same_reading([first, line, first], max_line_length=200)


def test_errors_surface_alike():
    # Dates that match the header but not strptime; lines of other types.
    bad_date = (b'2018-13-26 03:21:12.9 7 INFO a.b [-] month 13\n')
    good = (HDR + 'INFO a.b [-] fine\n').encode()
    _, error, _ = assert_same_reading([good, bad_date, good])
    assert error is not None and error[0] is ValueError
    _, error, _ = assert_same_reading([good, bytearray(good), good])
    assert error is not None and error[0] is TypeError
    _, error, _ = assert_same_reading([good, 42])
    assert error is not None
    arabic = '٢٠١٨-٠٦-٢٦ ٠٣:٢١:١٢.٩ ٧ INFO a.b [-] arabic digits\n'
    _, error, _ = assert_same_reading([good, arabic.encode(), good])
    assert error is not None and error[0] is ValueError


def test_many_continuation_lines_are_capped_alike(monkeypatch):
    monkeypatch.setattr(oslo_log, 'MAX_EXTRA_LINES', 5)
    lines = [(HDR + 'ERROR a.b [-] boom\n').encode()]
    lines += [b'  line %d\n' % i for i in range(12)]
    lines += [(HDR + 'ERROR a.b Traceback (most recent call last):'
               ).encode()] * 3
    _, _, state = assert_same_reading(lines)
    assert state[0]['dropped'] == 10


def test_state_when_iteration_stops_early():
    lines = [x for _s, ls in real_streams()[:2] for x in ls[:300]]
    states = []
    for impl in ('python', 'c'):
        speedups.use(impl == 'c')
        oslo_log.clear_caches()
        reader = oslo_log.RecordReader('s')
        it = reader.read(lines)
        got = [_fields(next(it)) for _i in range(50)]
        mid = _reader_state(reader)
        del it      # the generator's finally runs
        after = _reader_state(reader)
        rest = [_fields(r) for r in reader.read(lines[200:], 200)]
        rest += [_fields(r) for r in reader.flush()]
        states.append((got, mid[1:], after, rest, _reader_state(reader)))
    assert states[0] == states[1]


def _mutations(lines, count, seed):
    rnd = random.Random(seed)
    pieces = [b' ', b'\t', b'\r', b'\n', b'[', b']', b'-', b':', b'.',
              b',', b'\x00', b'\xff', b'\xc3\xa9', '٣'.encode(),
              '\u00a0'.encode(), b'req-', b'[instance: ', b'DEBUG ',
              b'WARN', b'Traceback (most recent call last)', b'://u:p@h',
              b'password=', b'/x.py:12', b'{"levelname": ']
    out = []
    for _n in range(count):
        line = bytearray(rnd.choice(lines))
        for _k in range(rnd.randint(1, 3)):
            pos = rnd.randint(0, len(line))
            what = rnd.random()
            if what < 0.4:
                line[pos:pos] = rnd.choice(pieces)
            elif what < 0.7:
                del line[pos:pos + rnd.randint(1, 4)]
            else:
                line[pos:pos + 1] = bytes([rnd.randrange(256)])
        out.append(bytes(line))
    return out


def test_mutated_real_lines_read_alike():
    real = [x for _s, ls in real_streams() for x in ls]
    lines = _mutations(real, 3000, seed=7)
    # Interleave with real lines so that records are built around them.
    mixed = [x for pair in zip(real[:3000], lines) for x in pair]
    assert_same_reading(mixed, max_line_length=400)


# -- miner -----------------------------------------------------------------


def test_mask_token_alike():
    from logrca.parsing import _speedups
    speedups.use(True)
    raw = (data.loghub_dir() / 'OpenStack_2k.log').read_text()
    tokens = set(raw.split())
    for _s, lines in real_streams():
        for line in lines:
            tokens.update(line.decode('utf-8', 'replace').split())
    tokens.update(['1abc', "u'12'", '<12>', '0x1f>>,', '12:30:01.5]',
                   '2018-07-02T15:51:52Z,', '1.5.', '+5MB', 'a1', '(3)',
                   '0x', '0xg', '1.2.3.4:', '1.2.3.4:5', '1.2.3.4444',
                   '12:30:01.', '2018-07-02T15:51:52.Z', '-', '+', '-.5',
                   '١٢', '(١٢)', 'x١', '5%', '5%%', '.5', '5.', 'req-' + UUID,
                   REQ + 'x', UUID.upper(), '"' + UUID + '",', '/', '(/)',
                   '2018-07-02 ', '2018-07-02', '12:30:01', '<*>', '<*>1'])
    tokens.update(t for t in _generated(20000))
    differ = [t for t in tokens
              if _speedups.mask_token(t) != shape.mask_token(t)]
    assert len(tokens) > 20000 and differ == []


def _generated(count):
    from logrca.tests.unit.parsing import test_miners
    return test_miners._generated_tokens(count, seed=3)


def test_hostile_messages_mined_alike():
    messages = [
        '', ' ', 'one', 'one two', 'one  two\tthree\r\nfour',
        'Took 1.52 seconds', 'Took 20.1 seconds', 'Took ١٢ seconds',
        'a\u00a0b c', 'a\u2003b c', 'x\x1cy z', 'x\x85y z', 'a\x00b 1',
        'Lock "a" acquired', 'Lock "b" acquired', 'VM Paused', 'VM Started',
        '[instance: %s] Took 3 s' % UUID, 'GET /v2/%s/servers' % UUID,
        'caf\u00e9 12', 'caf\u00e9 13', '<*> <*>', 'key=1 key=2',
    ] * 3
    messages += ['Took %d seconds to do %s' % (i, 'x' * (i % 3))
                 for i in range(50)]
    assert_same_mining(messages)


def test_widened_templates_and_cache_clearing_alike(monkeypatch):
    monkeypatch.setattr(shape, 'MAX_TOKENS', 7)
    monkeypatch.setattr(shape, 'MAX_MESSAGES', 5)
    monkeypatch.setattr(shape, 'MAX_SHAPES', 6)
    base = ['Lock "%s" released by "a.b" :: held %s' % (w, n)
            for w in ('x', 'y', 'z') for n in ('1', 'b', '2')]
    messages = [m for _i in range(4) for m in base]
    messages += ['Claim on node cp-%d done' % i for i in range(30)]
    assert_same_mining(messages)


def test_non_str_messages_alike():
    results = []
    for impl in ('python', 'c'):
        speedups.use(impl == 'c')
        miner = shape.ShapeParser(_conf())
        try:
            miner.add(None)
        except Exception as exc:
            results.append(type(exc))
    assert len(results) == 2 and results[0] == results[1]


# -- helpers ---------------------------------------------------------------


def test_split_location_and_mask_alike():
    from logrca.masking import mask
    from logrca.parsing import _speedups
    speedups.use(True)
    texts = ['', '1', 'x 1', 'x /1', 'x /a.py:1', 'x f /a.py:12',
             'f /a.py:12', ' /a.py:1', 'x f /a.py:1a', 'x f /a.py:',
             'x f /a.pyc:1', 'x f a.py:1', 'x f /a.py:١', 'é f /a.py:1',
             'x  f /a.py:1', 'a:b c /d.py:3', 'ratio 3:4',
             'connect mysql://nova:S3cret@db/nova', 'http://h:1/x',
             'http://u:p@h/ ://x', 'api_key=1', 'the key_name=x',
             'API-KEY: 3', 'private\nkey=1', 'access_\nkey=2',
             'fernetkey=3', 'encryption-key 4', 'PRIVATE KEY', 'MIIxx',
             'gAAAAAx', 'gAAAA', 'Auth', 'authorization: x', 'pwd=1',
             'Kelvin \u212aey=2', 'tokens', 'credentials', 'SECRET']
    for _s, lines in real_streams():
        texts.extend(line.decode('utf-8', 'replace').rstrip('\n')
                     for line in lines[:400])
    for text in texts:
        assert _speedups.split_location(text) == (
            oslo_log.split_location(text)), text
        assert _speedups.mask(text) == mask(text), text


def test_json_lines_from_oslo_log_read_alike():
    context = {'request_id': 'req-1', 'global_request_id': 'req-g',
               'user': 'u1', 'project_id': 'p1'}
    lines = [_json_line(logging.ERROR, 'failed\nsecond line',
                        extra={'context': context, 'instance_uuid': UUID}),
             (HDR + 'INFO a.b [-] between\n').encode(),
             json.dumps({'levelname': 'INFO', 'message': 'x',
                         'asctime': '2018-06-26 03:21:12,5'})]
    assert_same_reading(lines)


@pytest.mark.parametrize('stamp', [
    '2016-02-29 23:59', '2018-02-29 00:00', '1900-02-29 00:00',
    '2000-02-29 12:30', '0000-01-01 00:00', '0001-01-01 00:00',
    '9999-12-31 23:59', '2018-00-10 00:00', '2018-12-00 00:00',
    '2018-04-31 00:00', '2018-06-26 24:00', '2018-06-26 23:60',
    '2018-06-26T03:21', '1969-12-31 23:59', '1970-01-01 00:00'])
def test_minutes_alike(stamp):
    good = (HDR + 'INFO a.b [-] fine\n').encode()
    line = ('%s:07.5 7 INFO a.b [-] at %s\n' % (stamp, stamp)).encode()
    assert_same_reading([good, line, good, line])


def test_contexts_alike():
    contexts = ['req-1', 'x req-1', 'None req-1 - -', ' - ', '', '-',
                'req-1 None None', 'g req-2 u', '\t req-1  u\tp ', 'a b c',
                'req-1 u p d ud pd', 'None None req-3', 'req-a req-b c d',
                '- req-4 - -', 'None', 'req-', 'x\x0bx req-5']
    lines = [(HDR + 'INFO a.b [%s] m %d\n' % (ctx, i)).encode()
             for i, ctx in enumerate(contexts)]
    records, _, _ = assert_same_reading(lines + lines)
    assert len(records) == 2 * len(contexts)


def test_generated_secret_texts_masked_alike():
    from logrca.masking import mask
    from logrca.parsing import _speedups
    speedups.use(True)
    rnd = random.Random(5)
    pieces = ['key', 'KEY', 'Key', 'api', 'api_', 'API-', 'private-',
              'private', 'access', 'fernet', 'encryption_', 'auth', '\n',
              '\n\n', '://', 'u:p@h', 'u@h', ':p@', 'http', 'https://', ' ',
              '\t', ':', '@', '/', 'x', '_', '-', '=', '"', "'", 'token',
              'pwd', 'PASS', 'gAAAAA', 'MII', 'PRIVATE KEY', '12345',
              'keystone', 'monkey', '0123456789ab']
    for _n in range(20000):
        text = ''.join(rnd.choice(pieces)
                       for _i in range(rnd.randint(1, 8)))
        got, want = _speedups.mask(text), mask(text)
        assert got == want, text
        assert (got is text) == (want is text), text


def test_mask_token_full_alike():
    from logrca.parsing import _speedups
    speedups.use(True)
    tokens = set(_generated(30000))
    for _s, lines in real_streams():
        for line in lines:
            tokens.update(t for t in line.decode('utf-8', 'replace').split()
                          if t.isascii())
    hexes = '0123456789abcdef' * 5
    tokens.update([
        'HTTP/1.12', 'HTTP/1.1', 'HTTP/2', 'HTTP/1.', 'xHTTP/1.1',
        '1.2.3.4:80x', '1.2.3.4/24', '1.2.3.4444', '1.2.3.4:', '01.2.3.4.5',
        '0x1fg', '0x', '0x1f', 'x0x1f', '1.5a', '1.55a', '-5', 'a-5', '+-5',
        '-x', '5.', '5.a', '/x', '=/x', 'a/x', '(/x);', '"/a b"', ':/x,y',
        '<*><*>', '<*>-<*>', '<*>*><*>', '<*', 'a<*>1', '<*>a<*>', '<<*>>',
        '<*> <*>', 'x=<*>,<*>', 'fa:16:3e:d5:7e:5b', 'fa:16:3e:d5:7e:5bc',
        'fa:16:3e:d5:7e', hexes[:32], hexes[:33], hexes[:40], hexes[:41],
        hexes[:64], hexes[:65], 'req-' + UUID, 'req-' + UUID + 'x',
        UUID + ':' + UUID, '[' + UUID + ']', 'port-1_2', 'a1b2', '1a2b',
        'tap1234-56', 'qvo%s' % UUID[:11], 'x=1,y=2;z=(3)', '{"a":1}', '',
        '1', 'a', '5%', '1e5', '1.2e-5', '\x1c5', 'a\x1c5'])
    # Non-ASCII tokens never reach the compiled mask_token_full.
    tokens = [t for t in tokens if t.isascii()]
    differ = [t for t in tokens
              if _speedups.mask_token_full(t) != shape.mask_token_full(t)]
    assert len(tokens) > 25000 and differ == []


# -- sessionizer -----------------------------------------------------------


def _session_state(session):
    return (session.key, [id(r) for r in session.records], session.count,
            session.first_ts, session.last_ts, sorted(session.streams),
            session.errors, session.seq, session.state)


def _sessionize(impl, records, window, expire_every=None):
    """Every step of one sessionizer over ``records``: the sessions each
    add() returns (their state after it), what expire() closes, the heap
    and the sessionizer's state; and the exception, if any."""
    speedups.use(impl == 'c')
    sessionizer = sessions_mod.Sessionizer(window)
    steps = []
    error = None
    try:
        for i, record in enumerate(records):
            got = sessionizer.add(record)
            assert type(got) is list
            steps.append(('add', [_session_state(s) for s in got],
                          sessionizer.now))
            if expire_every and i % expire_every == 0:
                steps.append(('expire', [_session_state(s) for s in
                                         sessionizer.expire()]))
    except Exception as exc:  # compared between the implementations
        error = (type(exc), str(exc))
    heap = sorted((d, seq, s.key) for d, seq, s in sessionizer._due)
    steps.append(('state', heap, [s.key for s in sessionizer._undated],
                  {k: _session_state(s) for k, s in
                   sessionizer._open.items()}, sessionizer._seq))
    steps.append(('closed', [_session_state(s) for s in
                             sessionizer.close_all()]))
    return steps, error


def assert_same_sessions(records, window=300, expire_every=None):
    python = _sessionize('python', records, window, expire_every)
    c = _sessionize('c', records, window, expire_every)
    assert c[1] == python[1]
    assert len(c[0]) == len(python[0])
    for got, want in zip(c[0], python[0]):
        assert got == want
    return python


def _real_records():
    speedups.use(False)
    records = []
    for stream, lines in real_streams():
        reader = oslo_log.RecordReader(stream)
        records.extend(reader.read(lines))
        records.extend(reader.flush())
    # Log-time order, as the agent merges streams; a few records moved
    # out of order and a few without a timestamp.
    records.sort(key=lambda r: r.timestamp)
    for i in range(0, len(records) - 40, 97):
        records[i], records[i + 40] = records[i + 40], records[i]
    for record in records[5::211]:
        record.timestamp = None
    return records


def test_switch_sessionizer():
    assert speedups.use(True) == 'c'
    assert sessions_mod.Sessionizer.add is not sessions_mod._PYTHON_ADD
    assert speedups.use(False) == 'python'
    assert sessions_mod.Sessionizer.add is sessions_mod._PYTHON_ADD


def test_real_records_sessionized_alike():
    records = _real_records()
    steps, error = assert_same_sessions(records, expire_every=50)
    assert error is None
    assert len(steps) > len(records)
    assert_same_sessions(records, window=60)
    assert_same_sessions(records, window=7.5, expire_every=13)


def test_edge_records_sessionized_alike():
    LogRecord = records_mod.LogRecord
    edge = [
        LogRecord('a', None, 'ERROR', request_id='req-1'),
        LogRecord('a', None, 'INFO', instance_id=UUID),
        LogRecord('a', 100.0, 'CRITICAL', request_id='req-1',
                  global_request_id='req-g', instance_id=UUID),
        LogRecord('b', 99.5, 'WARNING', request_id='', global_request_id=''),
        LogRecord('b', 400, 'ERROR', request_id='req-1'),
        LogRecord('a', -5.25, None, instance_id=UUID),
        LogRecord('c', 1e12, 'ERROR', global_request_id='req-g'),
        LogRecord('c', 1e12 - 1, 'INFO', global_request_id='req-g'),
        LogRecord('c', float('inf'), 'INFO'),
    ]
    # inf // window is nan, which int() refuses: both raise alike.
    steps, error = assert_same_sessions(edge, expire_every=2)
    assert error is not None and error[0] is ValueError
    assert_same_sessions(edge[:-1], window=60)
    assert_same_sessions(edge[:-1], window=0.5, expire_every=1)


def test_duck_typed_records_and_subclassed_sessions_alike(monkeypatch):
    class Duck:
        def __init__(self, stream, timestamp, level, request_id=None):
            self.stream = stream
            self.timestamp = timestamp
            self.level = level
            self.request_id = request_id
            self.global_request_id = None
            self.instance_id = None

    class Bigger(sessions_mod.Session):
        __slots__ = ('extra',)

    ducks = [Duck('a', 10.0, 'ERROR', 'req-1'), Duck('b', 5.0, 'INFO'),
             Duck('a', 3.0, 'ERROR', 'req-1'), Duck('a', None, 'INFO')]
    assert_same_sessions(ducks, window=4, expire_every=1)
    monkeypatch.setattr(sessions_mod, 'Session', Bigger)
    assert_same_sessions(ducks, window=4, expire_every=1)
    assert_same_sessions(_real_records()[:500], window=60, expire_every=7)


# -- baseline detector -----------------------------------------------------


def _observe_all(impl, records, window=300, alarm=True, burst=2):
    """What a baseline detector answers for each record (with the
    sessions the pure-Python sessionizer gives) and its state after."""
    speedups.use(False)
    sessionizer = sessions_mod.Sessionizer(window)
    homes = [sessionizer.add(r) for r in records]
    speedups.use(impl == 'c')
    conf = _conf()
    conf.set_override('error_burst_count', burst, 'detectors')
    conf.set_override('new_template_alarm', alarm, 'detectors')
    detector = baseline_mod.BaselineDetector(conf)
    out = []
    for i, (record, sessions) in enumerate(zip(records, homes)):
        # Some records are observed without sessions.
        got = detector.observe(record, sessions if i % 37 else [])
        assert type(got) is list
        out.append([a.to_dict() for a in got])
    for sessions in homes:
        for session in sessions:
            out.append(repr(sorted(session.state.items())))
    out.append(sorted(detector._seen_templates))
    return out


def test_switch_baseline():
    assert speedups.use(True) == 'c'
    assert (baseline_mod.BaselineDetector.observe
            is not baseline_mod._PYTHON_OBSERVE)
    assert speedups.use(False) == 'python'
    assert (baseline_mod.BaselineDetector.observe
            is baseline_mod._PYTHON_OBSERVE)


def test_real_records_observed_alike():
    records = _real_records()
    miner = shape.ShapeParser(_conf())
    for i, record in enumerate(records):
        if i % 53:  # a few records without a template
            (record.template_id, record.template,
             record.params) = miner.add(record.message)
        if i % 41 == 0:
            record.level = ('ERROR', 'CRITICAL', 'WARNING', None)[i % 4]
    for alarm, burst in ((True, 2), (False, 1), (True, 50)):
        python = _observe_all('python', records, alarm=alarm, burst=burst)
        c = _observe_all('c', records, alarm=alarm, burst=burst)
        assert c == python
        assert any(python[:len(records)])


def test_baseline_subclass_and_odd_state_alike():
    class Counting(baseline_mod.BaselineDetector):
        def observe(self, record, sessions):
            self.calls = getattr(self, 'calls', 0) + 1
            return super().observe(record, sessions)

    LogRecord = records_mod.LogRecord
    recs = [LogRecord('a', 1.0, 'INFO', template_id=1),
            LogRecord('a', 2.0, 'INFO', template_id=1),
            LogRecord('a', 3.0, 'WARNING', template_id=2),
            LogRecord('a', 4.0, 'ERROR', template_id=2),
            LogRecord('a', 5.0, 'ERROR', template_id=None),
            LogRecord('a', 6.0, 'INFO', template_id=None)]
    results = []
    for impl in ('python', 'c'):
        speedups.use(False)
        sessionizer = sessions_mod.Sessionizer(60)
        homes = [sessionizer.add(r) for r in recs]
        speedups.use(impl == 'c')
        detector = Counting(_conf())
        got = [[a.to_dict() for a in detector.observe(r, s)]
               for r, s in zip(recs, homes)]
        # _seen_templates that is not a set: always the Python method.
        detector._seen_templates = frozenset(detector._seen_templates)
        odd = [detector.observe(r, s) for r, s in zip(recs[:2], homes)]
        with pytest.raises(TypeError):
            detector.observe(LogRecord('a', 7.0, 'INFO',
                                       template_id=[1]), homes[0])
        results.append((got, odd, detector.calls,
                        sorted(detector._seen_templates)))
    assert results[0] == results[1]


# -- merge by time -------------------------------------------------------


def _merge(impl, make_streams, stop=None):
    """The records one merge gives (all, or the first ``stop``), the
    exception, and how far each stream was read."""
    speedups.use(impl == 'c')
    streams, reads = make_streams()
    out = []
    error = None
    try:
        for record in replay_mod.merge_by_time(streams):
            out.append((record.stream, record.lineno))
            if stop is not None and len(out) >= stop:
                break
    except Exception as exc:  # compared between the implementations
        error = (type(exc), str(exc))
    return out, error, list(reads)


def assert_same_merge(make_streams, stop=None):
    python = _merge('python', make_streams, stop)
    c = _merge('c', make_streams, stop)
    assert c == python
    return python


def _random_streams(seed, fail_at=None, kind='iter'):
    def make():
        rnd = random.Random(seed)
        reads = collections.Counter()
        streams = []
        for i in range(rnd.randint(0, 14)):
            name = 's%d' % i
            size = rnd.randint(0, 40)
            ts = rnd.choice([0.0, 5.0, 50.0, 10])
            records = []
            for lineno in range(size):
                roll = rnd.random()
                if roll < 0.1:
                    stamp = None
                elif roll < 0.15:
                    stamp = ts - rnd.choice([1.0, 3.0, 2])
                elif roll < 0.2:
                    stamp = 0.0
                else:
                    ts += rnd.choice([0.0, 0.0, 0.5, 1.0, 7.0, 1])
                    stamp = ts
                records.append(records_mod.LogRecord(name, stamp,
                                                     lineno=lineno))
            streams.append(_counted(records, name, reads, fail_at, kind))
        return (iter(streams) if seed % 2 else streams), reads
    return make


def _counted(records, name, reads, fail_at, kind):
    if kind == 'list':
        # A list is iterated again from its start by every loop over it.
        return records

    def gen():
        for i, record in enumerate(records):
            if fail_at is not None and i == fail_at and name == 's1':
                raise RuntimeError('stream %s broke' % name)
            reads[name] += 1
            yield record
    return gen()


def test_merge_alike_on_random_streams():
    merged = 0
    for seed in range(300):
        out, error, _reads = assert_same_merge(_random_streams(seed))
        assert error is None
        merged += len(out)
        assert_same_merge(_random_streams(seed), stop=seed % 17)
        assert_same_merge(_random_streams(seed, fail_at=seed % 9))
        assert_same_merge(_random_streams(seed, kind='list'))
    assert merged > 10000


def test_merge_alike_on_real_streams_and_odd_input():
    def real():
        speedups.use(False)
        streams = []
        for stream, lines in real_streams():
            reader = oslo_log.RecordReader(stream)
            streams.append(iter(list(reader.read(lines)) + reader.flush()))
        return streams, []
    out, error, _ = assert_same_merge(real)
    assert error is None and len(out) > 5000
    # Not iterable, records without a timestamp attribute.
    assert assert_same_merge(lambda: ([1, 2], []))[1][0] is TypeError
    assert assert_same_merge(lambda: ([[object()]], []))[1][0] is (
        AttributeError)
    assert assert_same_merge(lambda: (5, []))[1][0] is TypeError


# -- pipeline loops ----------------------------------------------------------


class _Seen(detector_base.Detector):
    """Notes what it sees; raises at record ``fail_at`` when given."""

    name = 'seen'

    def __init__(self, conf, fail_at=None):
        super().__init__(conf)
        self.seen = []
        self.fail_at = fail_at

    def observe(self, record, sessions):
        if len(self.seen) == self.fail_at:
            raise RuntimeError('detector broke')
        self.seen.append((_fields(record), [s.key for s in sessions]))
        return []

    def on_session_closed(self, session):
        self.seen.append(('closed', session.key, session.count))
        return []


def _pipe(impl, records, batch, fail_at=None, miner=True):
    speedups.use(False)
    records = [dataclasses.replace(r, extra=list(r.extra),
                                   params=list(r.params)) for r in records]
    conf = _conf()
    conf.set_override('error_burst_count', 2, 'detectors')
    seen = _Seen(conf, fail_at)
    speedups.use(impl == 'c')
    pipe = pipeline_mod.Pipeline(
        conf, shape.ShapeParser(conf) if miner else None,
        [baseline_mod.BaselineDetector(conf), seen])
    found = []
    error = None
    try:
        for start in range(0, len(records), batch):
            found.extend(a.to_dict()
                         for a in pipe.process_many(records[start:
                                                            start + batch]))
        found.extend(a.to_dict() for a in pipe.finish())
    except Exception as exc:  # compared between the implementations
        error = (type(exc), str(exc))
    return (found, error, seen.seen, dict(pipe.stats), pipe._next_expire,
            [_fields(r) for r in records])


def test_pipeline_loops_alike():
    records = _real_records()
    # A few unparsed records and errors among them.
    for record in records[3::301]:
        record.kind = records_mod.UNPARSED
    for record in records[::41]:
        record.level = 'ERROR'
    for batch in (1, 7, 4096):
        python = _pipe('python', records, batch)
        assert python[1] is None and python[0]
        assert _pipe('c', records, batch) == python
    for fail_at in (0, 1, 500, 2345):
        python = _pipe('python', records, 64, fail_at=fail_at)
        assert python[1][0] is RuntimeError
        assert _pipe('c', records, 64, fail_at=fail_at) == python
    assert _pipe('c', records[:900], 50, miner=False) == _pipe(
        'python', records[:900], 50, miner=False)


def test_template_loop_alike_on_odd_miners():
    records = _real_records()[:50]
    for result in ([7, 'a <*>', ['b']], (1, 2), (1, 2, 3, 4), 5, 'xyz',
                   'iter'):
        outs = []
        for impl in ('python', 'c'):
            speedups.use(impl == 'c')
            recs = [dataclasses.replace(r) for r in records]
            error = None

            def add(_message, result=result):
                if result == 'iter':  # an iterator, each time a new one
                    return iter((9, 'x', []))
                return result

            try:
                if impl == 'c':
                    speedups.module.template_records(
                        add, recs, records_mod.UNPARSED)
                else:
                    for record in recs:
                        if (record.template_id is None
                                and record.kind != records_mod.UNPARSED):
                            (record.template_id, record.template,
                             record.params) = add(record.message)
            except Exception as exc:  # compared between implementations
                error = type(exc)
            outs.append((error, [_fields(r) for r in recs]))
        assert outs[0] == outs[1]
