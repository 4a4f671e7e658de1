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

"""Options of the [rca] group."""

from oslo_config import cfg

GROUP = cfg.OptGroup('rca', title='Root-cause analysis options')

opts = [
    cfg.StrOpt('driver', default='grounded',
               help='RCA driver (stevedore namespace logrca.rca).'),
    cfg.StrOpt('kb_path', default='$state_path/kb',
               help='Folder of the knowledge-base index written by '
                    '"logrca-manage kb build".'),
    cfg.StrOpt('docs_path',
               help='Folder of operator troubleshooting docs (RST) '
                    'indexed by "kb build".'),
    cfg.StrOpt('queries_path',
               help='elastic-recheck queries (JSON lines with '
                    'launchpad_bug and query) indexed by "kb build".'),
    cfg.FloatOpt('context_before', default=60.0, min=0.0,
                 help='Log seconds of context gathered before an '
                      'anomaly\'s first evidence.'),
    cfg.FloatOpt('context_after', default=30.0, min=0.0,
                 help='Log seconds of context gathered after an anomaly '
                      'was raised.'),
    cfg.FloatOpt('context_lookback', default=300.0, min=0.0,
                 help='Log seconds looked back, before the context '
                      'window, for the first ERROR record: when one is '
                      'there, the window opens at it (an anomaly raised '
                      'on a consequence, such as a refused API call or a '
                      'missing step, can come minutes after the error '
                      'where the failure started). 0 switches it off.'),
    cfg.FloatOpt('outcome_horizon', default=300.0, min=0.0,
                 help='Log seconds looked at, after the context window, '
                      'for the API calls refused to users: the first '
                      'refused call whose path tells its operation names '
                      'the failed operation (users see a failure a '
                      'minute or more after it starts). 0 switches it '
                      'off.'),
    cfg.IntOpt('context_max_records', default=200, min=10,
               help='Most related records kept as context.'),
    cfg.StrOpt('model_path',
               help='Local folder of a causal or seq2seq language model '
                    'for the "transformers" driver (never downloaded).'),
    cfg.IntOpt('max_new_tokens', default=256, min=1,
               help='Longest generated answer, in tokens.'),
    cfg.StrOpt('endpoint',
               help='Base URL of an OpenAI-compatible API for the '
                    '"openai" driver, e.g. http://127.0.0.1:8000/v1.'),
    cfg.StrOpt('model', default='default',
               help='Model name sent to the OpenAI-compatible API.'),
    cfg.StrOpt('api_key', secret=True,
               help='API key of the OpenAI-compatible endpoint.'),
    cfg.FloatOpt('timeout', default=30.0, min=0.1,
                 help='Timeout of one HTTP request, in seconds.'),
    cfg.IntOpt('retries', default=2, min=0,
               help='Retries of a failed HTTP request.'),
]


def register_opts(conf):
    conf.register_group(GROUP)
    conf.register_opts(opts, group=GROUP)


def list_opts():
    return [(GROUP, opts)]
