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

"""Options of the [api] group."""

from oslo_config import cfg

GROUP = cfg.OptGroup('api', title='REST API options')

opts = [
    cfg.BoolOpt('explain_via_conductor', default=True,
                help='Ask the conductor over RPC for an explanation that is '
                     'not stored yet (needs transport_url); otherwise, and '
                     'when the conductor does not answer in time, the API '
                     'returns a plain summary of the evidence.'),
    cfg.IntOpt('explain_timeout', default=20, min=1,
               help='Seconds the API waits for the conductor to explain an '
                    'anomaly.'),
    cfg.HostAddressOpt('host', default='127.0.0.1',
                       help='Address logrca-api listens on (development '
                            'server; use uwsgi or gunicorn in production).'),
    cfg.PortOpt('port', default=9753,
                help='Port logrca-api listens on.'),
    cfg.IntOpt('max_limit', default=1000, min=1,
               help='Largest page size a client may ask for.'),
    cfg.StrOpt('operators_role', default='admin',
               help='Role that, besides admin, may see anomalies that '
                    'belong to no project (service-level faults).'),
    cfg.BoolOpt('auth_enabled', default=True,
                help='Validate Keystone tokens (keystonemiddleware). Only '
                     'turn this off for local development.'),
    cfg.IntOpt('default_limit', default=50, min=1,
               help='Page size of list requests that give no limit '
                    '(capped at max_limit).'),
    cfg.IntOpt('max_request_body_size', default=16384, min=1,
               help='Largest request body, in bytes, the API accepts; '
                    'larger bodies get 413.'),
]


def register_opts(conf):
    conf.register_group(GROUP)
    conf.register_opts(opts, group=GROUP)


def list_opts():
    return [(GROUP, opts)]
