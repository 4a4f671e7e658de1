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

"""``openstack rca anomaly list/show/set`` and ``openstack rca explain``."""

from cliff import columns
from openstackclient.identity import common as identity_common
from osc_lib import utils
from osc_lib.cli import format_columns
from osc_lib.command import command

STATUSES = ('new', 'acknowledged', 'resolved', 'false_positive')

LIST_COLUMNS = ('id', 'status', 'score', 'detector', 'service', 'host',
                'project_id', 'raised_at', 'reason')
LIST_HEADERS = ('ID', 'Status', 'Score', 'Detector', 'Service', 'Host',
                'Project', 'Raised At', 'Reason')
LONG_COLUMNS = LIST_COLUMNS + ('start_time', 'end_time', 'request_ids',
                               'instance_ids', 'status_changed_by',
                               'status_changed_at')
LONG_HEADERS = LIST_HEADERS + ('Start Time', 'End Time', 'Request IDs',
                               'Instance IDs', 'Status Changed By',
                               'Status Changed At')
SHOW_FIELDS = ('id', 'status', 'score', 'threshold', 'detector', 'reason',
               'service', 'host', 'project_id', 'user_id', 'session_key',
               'start_time', 'end_time', 'raised_at', 'request_ids',
               'instance_ids', 'status_changed_by', 'status_changed_at',
               'status_comment', 'created_at', 'updated_at', 'evidence',
               'evidence_hidden')
EXPLAIN_FIELDS = ('anomaly_id', 'source', 'summary', 'services',
                  'first_error', 'counts', 'driver', 'created_at', 'body')


class EvidenceColumn(columns.FormattableColumn):
    """Evidence lines: one text line each in tables, the list in JSON."""

    def human_readable(self):
        lines = []
        for line in self._value or ():
            message = (line.get('message') or '').splitlines()
            lines.append('%s %s %s %s' % (
                line.get('timestamp') or '-', line.get('stream') or '-',
                line.get('level') or '-', message[0] if message else ''))
        return '\n'.join(lines)

    def machine_readable(self):
        return list(self._value or ())


class JSONColumn(columns.FormattableColumn):
    """A nested document: ``key=value`` text in tables, as is in JSON."""

    def human_readable(self):
        value = self._value
        if value is None:
            return ''
        if isinstance(value, dict):
            return format_columns.DictColumn(value).human_readable()
        if isinstance(value, list):
            return format_columns.ListColumn(value).human_readable()
        return str(value)

    def machine_readable(self):
        return self._value


_FORMATTERS = {
    'request_ids': format_columns.ListColumn,
    'instance_ids': format_columns.ListColumn,
    'session_key': format_columns.ListColumn,
    'services': format_columns.ListColumn,
    'evidence': EvidenceColumn,
    'counts': JSONColumn,
    'first_error': JSONColumn,
    'body': JSONColumn,
}


def _client(cmd):
    return cmd.app.client_manager.logrca


def _show(item, fields):
    present = [f for f in fields if f in item]
    return present, utils.get_dict_properties(item, present,
                                              formatters=_FORMATTERS)


class ListAnomaly(command.Lister):
    """List anomalies (your project's unless --all-projects)."""

    def get_parser(self, prog_name):
        parser = super().get_parser(prog_name)
        for name, meta, text in (
                ('service', '<service>', 'service (log stream), '
                                         'e.g. nova-compute'),
                ('host', '<host>', 'host'),
                ('detector', '<detector>', 'detector driver'),
                ('since', '<time>', 'raised at or after this ISO 8601 '
                                    'time'),
                ('until', '<time>', 'raised before this ISO 8601 time'),
                ('instance-id', '<instance-id>', 'instance UUID'),
                ('request-id', '<request-id>', 'request id (req-...)')):
            parser.add_argument('--' + name, metavar=meta,
                                help='Only anomalies of this %s' % text)
        parser.add_argument('--min-score', metavar='<score>', type=float,
                            help='Only anomalies scoring at least this')
        parser.add_argument('--status', choices=STATUSES,
                            help='Only anomalies with this status')
        parser.add_argument('--project', metavar='<project>',
                            help='Anomalies of this project (name or ID); '
                                 'needs admin for another project than '
                                 'yours')
        identity_common.add_project_domain_option_to_parser(parser)
        parser.add_argument('--all-projects', action='store_true',
                            default=False,
                            help='Anomalies of every project (admin)')
        parser.add_argument('--limit', metavar='<limit>', type=int,
                            help='Page size')
        parser.add_argument('--marker', metavar='<anomaly-id>',
                            help='ID of the last anomaly of the previous '
                                 'page (a full page prints the next one '
                                 'on standard error)')
        parser.add_argument('--sort', metavar='<key>[:<asc|desc>]',
                            action='append',
                            help='Sort key and direction (repeatable), '
                                 'e.g. score:desc; default raised_at:desc')
        parser.add_argument('--long', action='store_true', default=False,
                            help='More columns')
        return parser

    def take_action(self, parsed_args):
        params = {
            'service': parsed_args.service, 'host': parsed_args.host,
            'detector': parsed_args.detector, 'since': parsed_args.since,
            'until': parsed_args.until, 'min_score': parsed_args.min_score,
            'status': parsed_args.status,
            'instance_id': parsed_args.instance_id,
            'request_id': parsed_args.request_id,
            'project_id': self._project_id(parsed_args),
            'limit': parsed_args.limit, 'marker': parsed_args.marker,
            'sort': ','.join(parsed_args.sort) if parsed_args.sort else None,
        }
        if parsed_args.all_projects:
            params['all_projects'] = 'true'
        items, next_marker = _client(self).anomalies.list(**params)
        if next_marker:
            # On standard error: -f json/yaml/value output stays the page.
            self.app.stderr.write('More anomalies: add --marker %s\n'
                                  % next_marker)
        fields, headers = ((LONG_COLUMNS, LONG_HEADERS) if parsed_args.long
                           else (LIST_COLUMNS, LIST_HEADERS))
        return headers, (utils.get_dict_properties(
            item, fields, formatters=_FORMATTERS) for item in items)


    def _project_id(self, parsed_args):
        """The ID of --project, given as a name or an ID.

        The token's own project needs no look-up (a reader may not list
        projects); other names are looked up in Keystone, and a value that
        cannot be looked up is taken for an ID.
        """
        value = parsed_args.project
        if value is None:
            return None
        auth_ref = self.app.client_manager.auth_ref
        domain = parsed_args.project_domain
        if value in (auth_ref.project_id, auth_ref.project_name) and (
                domain is None or domain in (auth_ref.project_domain_id,
                                             auth_ref.project_domain_name)):
            return auth_ref.project_id
        return identity_common.find_project(
            self.app.client_manager.identity, value, domain).id


class ShowAnomaly(command.ShowOne):
    """Show an anomaly with the evidence lines you may see."""

    def get_parser(self, prog_name):
        parser = super().get_parser(prog_name)
        parser.add_argument('anomaly', metavar='<anomaly-id>',
                            help='Anomaly ID')
        return parser

    def take_action(self, parsed_args):
        item = _client(self).anomalies.get(parsed_args.anomaly)
        return _show(item, SHOW_FIELDS)


class SetAnomaly(command.ShowOne):
    """Acknowledge, resolve or mark an anomaly as a false positive."""

    def get_parser(self, prog_name):
        parser = super().get_parser(prog_name)
        parser.add_argument('anomaly', metavar='<anomaly-id>',
                            help='Anomaly ID')
        parser.add_argument('--status', choices=STATUSES, required=True,
                            help='New status')
        parser.add_argument('--comment', metavar='<comment>',
                            help='Why (recorded with who and when)')
        return parser

    def take_action(self, parsed_args):
        item = _client(self).anomalies.update(
            parsed_args.anomaly, parsed_args.status, parsed_args.comment)
        return _show(item, SHOW_FIELDS)


class ExplainAnomaly(command.ShowOne):
    """Explain the root cause of an anomaly (or summarise its evidence)."""

    def get_parser(self, prog_name):
        parser = super().get_parser(prog_name)
        parser.add_argument('anomaly', metavar='<anomaly-id>',
                            help='Anomaly ID')
        return parser

    def take_action(self, parsed_args):
        item = _client(self).anomalies.explanation(parsed_args.anomaly)
        return _show(item, EXPLAIN_FIELDS)
