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

"""Options of the DEFAULT group."""

import socket

from oslo_config import cfg

opts = [
    cfg.StrOpt('host', default=socket.gethostname(),
               sample_default='<hostname>',
               help='Name of this node, used in RPC server names and as the '
                    'host of records whose log line names none.'),
    cfg.StrOpt('state_path', default='$pybasedir/state',
               sample_default='/var/lib/logrca',
               help='Directory where logrca keeps its state: read offsets, '
                    'journal cursors, template state and the embedded '
                    'database.'),
    cfg.StrOpt('pybasedir', default='.',
               sample_default='<current directory>',
               help='Base directory used to resolve relative paths.'),
]


def register_opts(conf):
    conf.register_opts(opts)


def list_opts():
    return [('DEFAULT', opts)]
