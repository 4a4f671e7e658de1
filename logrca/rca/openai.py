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

"""The ``openai`` RCA driver: any OpenAI-compatible chat endpoint.

Works with vLLM, Ollama, llama.cpp server or a hosted API:
``POST {[rca] endpoint}/chat/completions``, with ``[rca] timeout`` per
request and ``[rca] retries`` retries (with backoff) on connection errors
and 429/5xx answers. The prompt is masked before it leaves the process.
"""

import requests
from oslo_log import log
from requests import adapters
from urllib3.util import retry as retry_mod

from logrca.rca import base
from logrca.rca import prompting

LOG = log.getLogger(__name__)


class OpenAIDriver(prompting.LanguageModelDriver):
    """Narratives from an OpenAI-compatible HTTP endpoint."""

    name = 'openai'

    def __init__(self, conf, kb=None):
        super().__init__(conf, kb)
        self.endpoint = (conf.rca.endpoint or '').rstrip('/')
        self.model = conf.rca.model
        self.timeout = conf.rca.timeout
        self.max_tokens = conf.rca.max_new_tokens
        self.session = requests.Session()
        # urllib3's Retry does the retries with backoff (POST included).
        policy = retry_mod.Retry(
            total=conf.rca.retries, connect=conf.rca.retries,
            read=conf.rca.retries, backoff_factor=0.2,
            status_forcelist=(429, 500, 502, 503, 504),
            allowed_methods=None, raise_on_status=False)
        self.session.mount('http://', adapters.HTTPAdapter(
            max_retries=policy))
        self.session.mount('https://', adapters.HTTPAdapter(
            max_retries=policy))
        self.headers = {'Content-Type': 'application/json'}
        if conf.rca.api_key:
            self.headers['Authorization'] = 'Bearer %s' % conf.rca.api_key

    def generate(self, messages):
        if not self.endpoint:
            raise base.RCAError('no [rca] endpoint configured')
        url = self.endpoint + '/chat/completions'
        payload = {'model': self.model, 'messages': messages,
                   'temperature': 0, 'max_tokens': self.max_tokens}
        try:
            resp = self.session.post(url, json=payload,
                                     headers=self.headers,
                                     timeout=self.timeout)
        except requests.RequestException as exc:
            raise base.RCAError('endpoint %s unreachable: %s'
                                % (self.endpoint, exc)) from exc
        if resp.status_code != 200:
            raise base.RCAError('endpoint answered HTTP %d'
                                % resp.status_code)
        try:
            return resp.json()['choices'][0]['message']['content']
        except (ValueError, KeyError, IndexError, TypeError) as exc:
            raise base.RCAError('malformed answer from endpoint: %s'
                                % exc) from exc
