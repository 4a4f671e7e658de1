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

"""``openstack rca ask`` and ``openstack rca feedback create|list``."""

from osc_lib import exceptions
from osc_lib import utils
from osc_lib.cli import format_columns
from osc_lib.command import command

from logrca.osc.v1 import anomalies

ASK_FIELDS = ('answer', 'anomalies', 'citations', 'conversation_id',
              'query')
FEEDBACK_COLUMNS = ('id', 'verdict', 'module', 'function', 'operation',
                    'cause', 'comment', 'user_id', 'project_id',
                    'created_at')
FEEDBACK_HEADERS = ('ID', 'Verdict', 'Module', 'Function', 'Operation',
                    'Cause', 'Comment', 'User', 'Project', 'Created At')
FEEDBACK_FIELDS = ('id', 'anomaly_id') + FEEDBACK_COLUMNS[1:]

_FORMATTERS = {
    'anomalies': format_columns.ListColumn,
    'citations': format_columns.ListColumn,
    'query': anomalies.JSONColumn,
}


class Ask(command.ShowOne):
    """Ask a question about anomalies ("What caused the server outage?")."""

    def get_parser(self, prog_name):
        parser = super().get_parser(prog_name)
        parser.add_argument('question', metavar='<question>',
                            help='The question, in English')
        parser.add_argument('--conversation', metavar='<conversation-id>',
                            help='Follow up in this conversation (its ID '
                                 'is printed with every answer)')
        return parser

    def take_action(self, parsed_args):
        item = anomalies._client(self).questions.ask(
            parsed_args.question, parsed_args.conversation)
        fields = [f for f in ASK_FIELDS if f in item]
        return fields, utils.get_dict_properties(item, fields,
                                                 formatters=_FORMATTERS)


class CreateFeedback(command.ShowOne):
    """Confirm or correct the explained cause of an anomaly."""

    def get_parser(self, prog_name):
        parser = super().get_parser(prog_name)
        parser.add_argument('anomaly', metavar='<anomaly-id>',
                            help='Anomaly ID')
        verdict = parser.add_mutually_exclusive_group(required=True)
        verdict.add_argument('--confirm', action='store_true',
                             help='The explained top suspect was the cause')
        verdict.add_argument('--module', metavar='<module>',
                             help='The cause was in this module (path, '
                                  'e.g. nova/compute/manager.py)')
        verdict.add_argument('--cause', metavar='<text>',
                             help='The cause, in words (when no module '
                                  'is known)')
        parser.add_argument('--function', metavar='<function>',
                            help='Function of the cause (with --module)')
        parser.add_argument('--comment', metavar='<comment>',
                            help='Why (secrets are masked)')
        return parser

    def take_action(self, parsed_args):
        if parsed_args.confirm:
            if parsed_args.function:
                raise exceptions.CommandError('--function needs --module')
            verdict = 'confirmed'
        else:
            verdict = 'corrected'
        item = anomalies._client(self).feedback.create(
            parsed_args.anomaly, verdict, module=parsed_args.module,
            function=parsed_args.function, cause=parsed_args.cause,
            comment=parsed_args.comment)
        return FEEDBACK_FIELDS, utils.get_dict_properties(item,
                                                          FEEDBACK_FIELDS)


class ListFeedback(command.Lister):
    """List the feedback given on an anomaly, oldest first."""

    def get_parser(self, prog_name):
        parser = super().get_parser(prog_name)
        parser.add_argument('anomaly', metavar='<anomaly-id>',
                            help='Anomaly ID')
        return parser

    def take_action(self, parsed_args):
        items = anomalies._client(self).feedback.list(parsed_args.anomaly)
        return FEEDBACK_HEADERS, (utils.get_dict_properties(
            item, FEEDBACK_COLUMNS) for item in items)
