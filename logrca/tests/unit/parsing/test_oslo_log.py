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

"""Unit tests of the oslo.log record reader."""

import calendar
import json
import logging

from oslo_config import cfg
from oslo_log import formatters

from logrca.masking import MASK
from logrca.parsing import oslo_log
from logrca.parsing import records
from logrca.tests.unit.parsing import data

CINDER = ('Cinder-round_1.tar.xz',
          'Cinder/Test_2/logs/round_1/cinder/volume.log.bzip2.out')
REQ = 'req-56318eee-2acb-498a-aa54-928ec042b59a'
UUID = 'c656c2cc-e830-4b90-b82d-ed702722de4e'
HDR = '2018-06-26 03:21:12.936 1867 '


def _read(lines, reader=None):
    """Records of ``lines`` through feed(); read() must give the same."""
    reader = reader or oslo_log.RecordReader('nova-compute')
    twin = oslo_log.RecordReader(reader.stream, reader.max_line_length,
                                 reader.host)
    out = []
    for lineno, line in enumerate(lines, 1):
        out.extend(reader.feed(line, lineno))
    out.extend(reader.flush())
    oslo_log.clear_caches()
    both = list(twin.read(lines)) + twin.flush()
    assert both == out and twin.stats == reader.stats
    return out, reader


def test_debug_line_fields_and_location():
    line = (HDR + 'DEBUG nova.compute.resource_tracker '
            '[req-75a12c6d-df58-46c2-b64a-5b4bc1516aea - - - - -] Total '
            'usable vcpus: 8, total allocated vcpus: 0 '
            '_report_final_resource_view /usr/lib/python2.7/site-packages/'
            'nova/compute/resource_tracker.py:839\n')
    (rec,), reader = _read([line])
    assert rec.kind == records.LOG
    assert rec.timestamp == calendar.timegm(
        (2018, 6, 26, 3, 21, 12)) + 0.936
    assert (rec.pid, rec.level, rec.logger) == (
        1867, 'DEBUG', 'nova.compute.resource_tracker')
    assert rec.request_id == 'req-75a12c6d-df58-46c2-b64a-5b4bc1516aea'
    assert rec.user_id is None and rec.project_id is None
    assert rec.global_request_id is None
    assert rec.message == ('Total usable vcpus: 8, total allocated '
                           'vcpus: 0')
    assert rec.location == (
        '_report_final_resource_view /usr/lib/python2.7/site-packages/'
        'nova/compute/resource_tracker.py:839')
    assert reader.stats['lines'] == 1 and reader.stats['records'] == 1


def test_info_line_keeps_trailing_path_and_reads_ids():
    line = (HDR + 'INFO nova.compute.manager [req-1 user1 proj1 - dom dom]'
            ' [instance: %s] Deleting instance files /var/lib/nova/x.py:3'
            % UUID)
    (rec,), _ = _read([line])
    assert rec.instance_id == UUID
    assert (rec.user_id, rec.project_id) == ('user1', 'proj1')
    # Only DEBUG lines carry oslo.log's code location.
    assert rec.location is None
    assert rec.message == 'Deleting instance files /var/lib/nova/x.py:3'


def test_global_request_id_forms():
    lines = [
        HDR + 'INFO a.b [req-g1 req-l1 admin demo - - default default] x',
        HDR + 'INFO a.b [None req-l2 admin demo] y',
        HDR + 'INFO a.b [-] z',
    ]
    recs, _ = _read(lines)
    assert [(r.global_request_id, r.request_id, r.user_id, r.project_id)
            for r in recs] == [('req-g1', 'req-l1', 'admin', 'demo'),
                               (None, 'req-l2', 'admin', 'demo'),
                               (None, None, None, None)]


def test_real_cinder_log_traceback_styles():
    raw = data.archive_member(*CINDER)
    lines = raw.splitlines(keepends=True)
    recs, reader = _read(lines, oslo_log.RecordReader('cinder-volume'))
    assert reader.stats['lines'] == len(lines) == 487
    assert reader.stats['unparsed'] == 0
    assert len(recs) == reader.stats['records']
    assert (reader.stats['records'] + reader.stats['continuation']
            == len(lines))
    # A WARNING with bare continuation lines, then oslo.log's exception
    # prefix (header without context, level ERROR) on every traceback line.
    warn = [r for r in recs if r.lineno == 135][0]
    assert warn.level == 'WARNING' and warn.request_id == REQ
    assert warn.extra[0].startswith('5 predecessors')
    tb = warn.extra.index('Traceback (most recent call last):')
    assert tb == 6
    assert warn.extra[-2] == "TypeError: 'NoneType' object is not iterable"
    assert len(warn.extra) == 150 - 135
    # An ERROR with context followed by prefixed traceback lines.
    err = [r for r in recs if r.lineno == 227][0]
    assert err.level == 'ERROR' and err.logger == 'oslo_messaging.rpc.server'
    assert err.extra[0] == 'Traceback (most recent call last):'
    assert err.extra[1].startswith('  File "/usr/lib/python2.7/')
    # Records come out in stream order.
    assert [r.lineno for r in recs] == sorted(r.lineno for r in recs)
    # Multi-line DEBUG records take the location from their last line
    # (line 80 holds only the location, so it leaves extra).
    http = [r for r in recs if r.lineno < 80 <= r.lineno + len(r.extra) + 1]
    http = http[0]
    assert http.location.startswith('log_http_response /usr/lib/')
    assert http.location.endswith('glanceclient/common/http.py:202')
    assert not any('log_http_response' in e for e in http.extra)


def test_repeated_header_with_context_style():
    ctx = '[req-g req-1 u p - - -] '
    lines = [HDR + 'ERROR nova.compute.manager ' + ctx + '[instance: %s] '
             'Build failed' % UUID,
             HDR + 'ERROR nova.compute.manager ' + ctx + '[instance: %s] '
             'Traceback (most recent call last):' % UUID,
             HDR + 'ERROR nova.compute.manager ' + ctx + '[instance: %s] '
             '  File "/x/nova/compute/manager.py", line 1, in f' % UUID,
             HDR + 'ERROR nova.compute.manager ' + ctx + '[instance: %s] '
             'ValueError: boom' % UUID,
             HDR + 'INFO nova.compute.manager ' + ctx + 'next one']
    recs, reader = _read(lines)
    assert len(recs) == 2
    assert recs[0].instance_id == UUID
    assert recs[0].extra == ['Traceback (most recent call last):',
                             '  File "/x/nova/compute/manager.py", line 1, '
                             'in f', 'ValueError: boom']
    assert recs[1].message == 'next one'
    assert reader.stats['continuation'] == 3


def test_same_header_without_traceback_is_a_new_record():
    lines = [HDR + 'INFO a.b [req-1 - - - - -] one',
             HDR + 'INFO a.b [req-1 - - - - -] two']
    recs, _ = _read(lines)
    assert [r.message for r in recs] == ['one', 'two']


def test_loghub_lines_with_file_name_column():
    raw = (data.loghub_dir() / 'OpenStack_2k.log').read_bytes()
    lines = raw.splitlines()
    recs, reader = _read(lines)
    assert len(recs) == 2000 and reader.stats['unparsed'] == 0
    assert recs[0].logger == 'nova.osapi_compute.wsgi.server'
    assert recs[0].message.startswith('10.11.10.1 "GET /v2/')
    assert sum(1 for r in recs if r.instance_id) > 500


def _json_line(level, msg, exc=False, **extra):
    conf = cfg.ConfigOpts()
    fmt = formatters.JSONFormatter()
    rec = logging.LogRecord('nova.compute.manager', level,
                            '/usr/lib/python3/nova/compute/manager.py', 42,
                            msg, None, None, func='_build')
    if exc:
        try:
            raise ValueError('boom')
        except ValueError:
            import sys
            rec.exc_info = sys.exc_info()
    for key, value in extra.items():
        setattr(rec, key, value)
    del conf
    return fmt.format(rec)


def test_json_format_from_oslo_log_formatter():
    context = {'request_id': 'req-1', 'global_request_id': 'req-g',
               'user': 'u1', 'project_id': 'p1', 'resource_uuid': None}
    line = _json_line(logging.ERROR, 'Build of instance failed', exc=True,
                      extra={'context': context, 'instance_uuid': UUID})
    doc = json.loads(line)
    assert doc['traceback'] and doc['context']['request_id'] == 'req-1'
    debug = _json_line(logging.DEBUG, 'password=hunter2 checked')
    (err, dbg), reader = _read([line + '\n', debug.encode()])
    assert err.level == 'ERROR' and err.logger == 'nova.compute.manager'
    assert (err.request_id, err.global_request_id) == ('req-1', 'req-g')
    assert (err.user_id, err.project_id) == ('u1', 'p1')
    assert err.instance_id == UUID
    assert err.extra[0] == 'Traceback (most recent call last):'
    assert err.extra[-1] == 'ValueError: boom'
    assert abs(err.timestamp - doc['created']) < 1e-6
    assert dbg.location == ('_build /usr/lib/python3/nova/compute/'
                            'manager.py:42')
    assert 'hunter2' not in dbg.message and MASK in dbg.message
    assert reader.stats['json'] == 2


def test_bad_input_becomes_unparsed_and_counted():
    good = (HDR + 'INFO a.b [-] fine\n').encode()
    lines = [
        b'\n',
        b'garbage before any header\n',
        good,
        b'\x00\x01\x02binary\xff\xfe\n',
        HDR.encode() + b'INFO a.b [-] caf\xe9 invalid utf-8\n',
        b'x' * (10 * 1024 * 1024) + b'\n',
        good,
    ]
    recs, reader = _read(lines)
    kinds = [r.kind for r in recs]
    assert kinds == [records.UNPARSED, records.LOG, records.UNPARSED,
                     records.LOG, records.UNPARSED, records.LOG]
    assert reader.stats['unparsed'] == 3
    assert reader.stats['truncated'] == 1
    assert reader.stats['invalid_utf8'] == 2
    assert reader.stats['binary'] == 1
    assert reader.stats['blank'] == 1 and reader.stats['lines'] == 7
    # Unparsed lines inherit the stream's last timestamp (none at first).
    assert recs[0].timestamp is None
    assert recs[2].timestamp == recs[1].timestamp
    assert '\ufffd' in recs[3].message
    assert len(recs[4].message) == 65536


def test_masks_secrets_in_message_and_extra():
    lines = [HDR + 'DEBUG a.b [-] connect mysql://nova:S3cret@db/nova '
             'f /x.py:1',
             '  Authorization: Bearer abcdef123',
             '  {"password": "hunter 2", "X-Auth-Token": "gAAAAAtok"}']
    (rec,), _ = _read(lines)
    text = rec.text()
    for secret in ('S3cret', 'abcdef123', 'hunter 2', 'gAAAAAtok'):
        assert secret not in text
    assert 'mysql://nova:***@db/nova' in rec.message


def test_str_lines_and_crlf():
    recs, _ = _read([HDR + 'INFO a.b [-] one\r\n', HDR + 'INFO a.b [-] two'])
    assert [r.message for r in recs] == ['one', 'two']


def test_parse_context_and_split_location_helpers():
    assert oslo_log.parse_context('-') == (None, None, None, None)
    assert oslo_log.parse_context('something else') == (
        None, None, None, None)
    assert oslo_log.split_location('no location here') == (
        'no location here', None)
    assert oslo_log.split_location('x f /a/b.py:12') == ('x', 'f /a/b.py:12')
    assert oslo_log.split_location('ratio 3:4') == ('ratio 3:4', None)


def test_repeated_messages_are_parsed_alike():
    debug = HDR + 'DEBUG a.b [-] password=x1 f /a/b.py:3'
    info = HDR + 'INFO a.b [-] password=x1 f /a/b.py:3'
    recs, _ = _read([debug, debug, info, info, debug])
    assert [(r.message, r.location) for r in recs] == (
        [('password=***', 'f /a/b.py:3')] * 2
        + [('password=*** f /a/b.py:3', None)] * 2
        + [('password=***', 'f /a/b.py:3')])
