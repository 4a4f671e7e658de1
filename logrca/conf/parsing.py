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

"""Options of the [parsing] group: template mining."""

from oslo_config import cfg

GROUP = cfg.OptGroup('parsing', title='Log parsing options')

opts = [
    cfg.StrOpt('driver', default='shape',
               help='Template miner (stevedore namespace logrca.parsers).'),
    cfg.FloatOpt('similarity_threshold', default=0.5, min=0.0, max=1.0,
                 help='Drain similarity threshold for joining a cluster.'),
    cfg.IntOpt('depth', default=4, min=3,
               help='Drain parse tree depth.'),
]


def register_opts(conf):
    conf.register_group(GROUP)
    conf.register_opts(opts, group=GROUP)


def list_opts():
    return [(GROUP, opts)]
