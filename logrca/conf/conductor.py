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

"""Options of the [conductor] group."""

from oslo_config import cfg

GROUP = cfg.OptGroup('conductor', title='Conductor options')

opts = [
    cfg.BoolOpt('explain_on_store', default=True,
                help='Explain each new anomaly with the RCA driver in the '
                     'background as soon as it is stored (otherwise an '
                     'explanation is computed when first asked for).'),
    cfg.StrOpt('topic', default='logrca-conductor',
               help='RPC topic the conductor listens on.'),
    cfg.IntOpt('max_evidence_lines', default=50, min=1,
               help='Evidence lines stored with one anomaly.'),
    cfg.IntOpt('max_evidence_chars', default=2 * 1024 * 1024, min=1024,
               help='Characters of one evidence line stored; a longer '
                    'line is cut and marked "[truncated]". Keep it under '
                    '4 MiB on MySQL/MariaDB (MEDIUMTEXT holds 16 MiB '
                    'bytes, max_allowed_packet is often 16 MiB).'),
    cfg.IntOpt('retention_days', default=0, min=0,
               help='Delete anomalies (with their evidence and '
                    'explanations) raised more than this many days ago, '
                    'and operators\' conversations not updated for as '
                    'long, automatically, every retention_interval '
                    'seconds. 0 '
                    'keeps them forever; "logrca-manage anomaly purge" '
                    'purges by hand.'),
    cfg.IntOpt('retention_interval', default=3600, min=1,
               help='Seconds between two automatic purges when '
                    'retention_days is set.'),
]


def register_opts(conf):
    conf.register_group(GROUP)
    conf.register_opts(opts, group=GROUP)


def list_opts():
    return [(GROUP, opts)]
