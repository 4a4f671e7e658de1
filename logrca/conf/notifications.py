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

"""Options of the [notifications] group: what the conductor sends out."""

from oslo_config import cfg

GROUP = cfg.OptGroup(
    'notifications', title='Outbound notification options',
    help='Versioned oslo.messaging notifications and webhooks the conductor '
         'sends when an anomaly is stored and when its explanation is '
         'ready. The oslo.messaging notifications are sent only when '
         '[oslo_messaging_notifications] driver is set (e.g. messagingv2), '
         'on the transport of [oslo_messaging_notifications] transport_url '
         '(default: the RPC transport).')

opts = [
    cfg.ListOpt('versioned_notifications_topics',
                default=['versioned_notifications'],
                help='Topics the versioned notifications are sent on.'),
    cfg.IntOpt('evidence_lines', default=3, min=0,
               help='Evidence lines (already masked) included in the '
                    'payload of anomaly.create; 0 sends none.'),
    cfg.ListOpt('webhook_urls', default=[], secret=True,
                help='URLs that receive every notification as an HTTP '
                     'POST of a JSON document. Empty disables webhooks.'),
    cfg.FloatOpt('webhook_timeout', default=5.0, min=0.1,
                 help='Seconds to wait for a webhook to connect and to '
                      'answer, per attempt.'),
    cfg.IntOpt('webhook_retries', default=3, min=0,
               help='Retries of a webhook POST after a connection error, a '
                    'timeout or an answer of 429, 500, 502, 503 or 504.'),
    cfg.FloatOpt('webhook_retry_backoff', default=0.5, min=0,
                 help='Backoff factor between webhook retries: the retries '
                      'wait backoff, 2 x backoff, 4 x backoff, ... seconds.'),
    cfg.StrOpt('webhook_secret', secret=True,
               help='When set, each webhook POST carries the header '
                    'X-Logrca-Signature: sha256=<HMAC-SHA256 of the body '
                    'with this key, hex>.'),
    cfg.StrOpt('webhook_ca_file',
               help='CA bundle to verify HTTPS webhook servers with '
                    '(default: the system CAs).'),
    cfg.IntOpt('webhook_workers', default=2, min=1,
               help='Threads that send webhooks, so a slow receiver never '
                    'delays storing anomalies.'),
]


def register_opts(conf):
    conf.register_group(GROUP)
    conf.register_opts(opts, group=GROUP)


def list_opts():
    return [(GROUP, opts)]
