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

"""Options of the [agent] group: what the detector agent follows."""

from oslo_config import cfg

GROUP = cfg.OptGroup('agent', title='Detector agent options')

opts = [
    cfg.ListOpt('log_files', default=[],
                help='Glob patterns of oslo.log files to follow, e.g. '
                     '``/var/log/nova/*.log``. New files matching a pattern '
                     'are picked up while the agent runs.'),
    cfg.ListOpt('journal_units', default=[],
                help='systemd units (e.g. devstack@n-cpu) or syslog '
                     'identifiers whose journal entries are followed.'),
    cfg.StrOpt('journal_directory',
               help='Read the journal from this directory instead of the '
                    'system journal (journalctl --directory).'),
    cfg.StrOpt('follow_from', default='end', choices=('end', 'beginning'),
               help='Where to start reading a log file that exists when the '
                    'agent starts for the first time and has no saved read '
                    'offset. Files that appear later (rotation, new '
                    'services) are always read from their beginning.'),
    cfg.ListOpt('journal_files', default=[],
                help='Read these journal files (journalctl --file; globs '
                     'allowed) instead of the system journal.'),
    cfg.FloatOpt('poll_interval', default=1.0, min=0.05,
                 help='Seconds between checks of followed files for new '
                      'lines, rotation and truncation.'),
    cfg.IntOpt('max_line_length', default=65536, min=256,
               help='Longest log line kept whole, in bytes; a longer line is '
                    'cut, kept as an unparsed record and counted.'),
    cfg.BoolOpt('notifications', default=True,
                help='Listen for oslo.messaging notifications.'),
    cfg.ListOpt('notification_topics',
                default=['notifications', 'versioned_notifications'],
                help='Notification topics to listen on.'),
    cfg.StrOpt('notification_pool', default='logrca',
               help='Listener pool name. A pool receives its own copy of '
                    'each notification; agents that share a pool share the '
                    'work. Empty means no pool (messages are shared '
                    'round-robin with every other consumer of the topic).'),
    cfg.ListOpt('notification_exchanges',
                default=['nova', 'cinder', 'neutron', 'glance', 'heat',
                         'keystone'],
                help='Exchanges to listen on, in addition to the default '
                     'control exchange: each service publishes its '
                     'notifications on its own exchange.'),
    cfg.ListOpt('detectors', default=['baseline'],
                help='Detector drivers (stevedore namespace '
                     'logrca.detectors) the agent scores with.'),
    cfg.IntOpt('session_window', default=300, min=1,
               help='Seconds of log time after which a session (request, '
                    'instance or service window) with no new event is '
                    'closed.'),
    cfg.IntOpt('send_batch_size', default=50, min=1,
               help='Anomalies sent to the conductor in one RPC call.'),
]


def register_opts(conf):
    # logrca.conf.register_opts() has given conf a group of its own first.
    conf.register_group(GROUP)
    conf.register_opts(opts, group=GROUP)


def list_opts():
    return [(GROUP, opts)]
