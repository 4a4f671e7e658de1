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


"""logrca-manage anomaly: list, show and purge stored anomalies."""

import datetime
import sys

import prettytable
from oslo_log import log
from oslo_serialization import jsonutils

from logrca.db import api as db_api
from logrca.db import exceptions as db_exceptions

LOG = log.getLogger(__name__)

LIST_COLUMNS = ('uuid', 'raised_at', 'detector', 'score', 'service',
                'host', 'project_id', 'status', 'reason')
REASON_WIDTH = 60


def _time(value):
    return value.isoformat() if value is not None else ''


def _cell(key, value):
    if isinstance(value, datetime.datetime):
        return _time(value)
    if isinstance(value, float):
        return '%.3f' % value
    if isinstance(value, (list, tuple)):
        return ', '.join(str(v) for v in value)
    if value is None:
        return ''
    return str(value)


# Sub-command arguments share oslo.config's namespace with the options
# (``host``...): each filter argument gets a prefixed dest.
_FILTER_ARGS = ('service', 'host', 'detector', 'status', 'since', 'until',
                'min_score', 'instance_id', 'request_id', 'project_id')


def _filters(args):
    return {name: getattr(args, 'filter_' + name) for name in _FILTER_ARGS}


def _sort(values):
    keys, dirs = [], []
    for value in values or ():
        key, _sep, direction = value.partition(':')
        keys.append(key)
        dirs.append(direction or 'desc')
    return keys or None, dirs or None


def _dump_json(data):
    print(jsonutils.dumps(data, indent=2, sort_keys=True,
                          ensure_ascii=False))


def do_list(conf, args):
    """Print anomalies, newest first, as a table or JSON."""
    dbapi = db_api.get_instance(conf)
    keys, dirs = _sort(args.sort)
    try:
        anomalies = dbapi.anomaly_get_all(
            _filters(args), limit=args.limit, marker=args.marker,
            sort_keys=keys, sort_dirs=dirs)
    except db_exceptions.InvalidParameter as exc:
        print('logrca-manage anomaly list: %s' % exc, file=sys.stderr)
        return 2
    finally:
        dbapi.dispose()
    if args.format == 'json':
        _dump_json(anomalies)
        return 0
    table = prettytable.PrettyTable(LIST_COLUMNS)
    table.align = 'l'
    for anomaly in anomalies:
        row = [_cell(c, anomaly[c]) for c in LIST_COLUMNS]
        reason = row[-1]
        if len(reason) > REASON_WIDTH:
            row[-1] = reason[:REASON_WIDTH - 3] + '...'
        table.add_row(row)
    print(table)
    return 0


SHOW_FIELDS = ('uuid', 'status', 'detector', 'score', 'threshold',
               'reason', 'raised_at', 'start_time', 'end_time', 'service',
               'host', 'project_id', 'user_id', 'session_kind',
               'session_key', 'request_ids', 'instance_ids',
               'status_changed_by', 'status_changed_at', 'status_comment',
               'created_at')


def do_show(conf, args):
    """Print one anomaly with its evidence lines."""
    dbapi = db_api.get_instance(conf)
    try:
        anomaly = dbapi.anomaly_get(args.uuid)
    finally:
        dbapi.dispose()
    if anomaly is None:
        print('logrca-manage anomaly show: no anomaly %s' % args.uuid,
              file=sys.stderr)
        return 1
    if args.format == 'json':
        _dump_json(anomaly)
        return 0
    table = prettytable.PrettyTable(('Field', 'Value'))
    table.align = 'l'
    for field in SHOW_FIELDS:
        table.add_row((field, _cell(field, anomaly[field])))
    print(table)
    print('Evidence (%d lines):' % len(anomaly['evidence']))
    for line in anomaly['evidence']:
        print('  %s %s %s %s%s: %s' % (
            _time(line['timestamp']) or '-', line['stream'],
            line['level'] or '-', line['logger'] or '-',
            ' [%s]' % line['request_id'] if line['request_id'] else '',
            line['message']))
    return 0


def do_purge(conf, args):
    """Delete anomalies raised more than --older-than days ago."""
    cutoff = (datetime.datetime.now(datetime.UTC)
              - datetime.timedelta(days=args.older_than))
    dbapi = db_api.get_instance(conf)
    try:
        deleted = dbapi.anomaly_purge(cutoff)
    finally:
        dbapi.dispose()
    print('Purged %d anomalies raised before %s' % (deleted,
                                                   cutoff.isoformat()))
    return 0


def _non_negative(value):
    number = float(value)
    if number < 0:
        raise ValueError(value)
    return number


def add_parsers(subparsers):
    """Add ``anomaly list``, ``anomaly show`` and ``anomaly purge``."""
    parser = subparsers.add_parser(
        'anomaly', help='Read and purge stored anomalies.')
    commands = parser.add_subparsers(title='anomaly commands')

    lister = commands.add_parser('list', help='List anomalies.')
    for name in ('service', 'host', 'detector', 'instance-id',
                 'request-id', 'project-id'):
        lister.add_argument('--' + name,
                            dest='filter_' + name.replace('-', '_'),
                            help='Only this %s.' % name.replace('-', ' '))
    lister.add_argument('--status', dest='filter_status', choices=(
        'new', 'acknowledged', 'resolved', 'false_positive'))
    lister.add_argument('--since', dest='filter_since',
                        help='Raised at or after (ISO 8601, UTC if no '
                             'offset).')
    lister.add_argument('--until', dest='filter_until',
                        help='Raised before (ISO 8601, UTC if no offset).')
    lister.add_argument('--min-score', dest='filter_min_score', type=float,
                        help='Score at least this.')
    lister.add_argument('--limit', type=int, default=50,
                        help='At most this many (default 50).')
    lister.add_argument('--marker', help='Uuid of the last anomaly of the '
                                         'previous page.')
    lister.add_argument('--sort', action='append', metavar='KEY[:DIR]',
                        help='Sort key and direction (asc/desc); repeat '
                             'for several. Default raised_at:desc.')
    lister.add_argument('--format', choices=('table', 'json'),
                        default='table')
    lister.set_defaults(func=do_list)

    show = commands.add_parser('show',
                               help='Show an anomaly with its evidence.')
    show.add_argument('uuid')
    show.add_argument('--format', choices=('table', 'json'),
                      default='table')
    show.set_defaults(func=do_show)

    purge = commands.add_parser(
        'purge', help='Delete old anomalies with their evidence.')
    purge.add_argument('--older-than', type=_non_negative, required=True,
                       metavar='DAYS',
                       help='Delete anomalies raised more than DAYS ago.')
    purge.set_defaults(func=do_purge)
