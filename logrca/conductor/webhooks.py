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

"""Webhooks: POST each outbound notification to configured URLs."""

import collections
import hashlib
import hmac
import threading
import urllib.parse
from concurrent import futures

import requests
from oslo_log import log
from oslo_serialization import jsonutils
from requests import adapters
from urllib3.util import retry as urllib3_retry

LOG = log.getLogger(__name__)

SIGNATURE_HEADER = 'X-Logrca-Signature'
EVENT_HEADER = 'X-Logrca-Event'
# Answers worth another try: rate limiting and server-side failures.
RETRY_STATUSES = (429, 500, 502, 503, 504)


def redact_url(url):
    """``scheme://host[:port]`` of a URL: hooks often carry tokens."""
    try:
        parts = urllib.parse.urlsplit(url)
        host = parts.hostname or '?'
        port = ':%d' % parts.port if parts.port else ''
    except ValueError:
        return '<malformed URL>'
    return '%s://%s%s/...' % (parts.scheme or '?', host, port)


def sign(secret, body):
    """The value of the signature header for ``body`` (bytes)."""
    digest = hmac.new(secret.encode('utf-8'), body, hashlib.sha256)
    return 'sha256=' + digest.hexdigest()


class WebhookSender:
    """Send JSON documents to the webhook URLs of ``[notifications]``.

    Sending happens on a small thread pool, so a slow or dead receiver
    never delays the conductor. Retries, their backoff and timeouts are
    urllib3's (through a requests adapter), not hand-written.

    ``counters`` counts ``webhook_sent``, ``webhook_failed`` (after the
    retries) and ``webhook_bad_url``.
    """

    def __init__(self, conf):
        self.conf = conf
        group = conf.notifications
        self.urls = []
        self.counters = collections.Counter()
        self._lock = threading.Lock()
        for url in group.webhook_urls:
            scheme = urllib.parse.urlsplit(url).scheme.lower()
            if scheme not in ('http', 'https'):
                LOG.error('Ignoring webhook URL %s: only http and https '
                          'are supported', redact_url(url))
                self._count('webhook_bad_url')
                continue
            self.urls.append(url)
        self.timeout = group.webhook_timeout
        self.secret = group.webhook_secret
        self.verify = group.webhook_ca_file or True
        self._retry = urllib3_retry.Retry(
            total=group.webhook_retries, connect=group.webhook_retries,
            read=group.webhook_retries, status=group.webhook_retries,
            backoff_factor=group.webhook_retry_backoff,
            status_forcelist=RETRY_STATUSES,
            allowed_methods=frozenset(['POST']),
            respect_retry_after_header=True, raise_on_status=False)
        self._local = threading.local()
        self._pool = None
        self._futures = set()

    def _count(self, name):
        with self._lock:
            self.counters[name] += 1

    @property
    def enabled(self):
        return bool(self.urls)

    def _session(self):
        # requests sessions are not documented as thread-safe: one per
        # sending thread.
        session = getattr(self._local, 'session', None)
        if session is None:
            session = requests.Session()
            adapter = adapters.HTTPAdapter(max_retries=self._retry)
            session.mount('http://', adapter)
            session.mount('https://', adapter)
            self._local.session = session
        return session

    def post(self, url, event_type, document):
        """POST ``document`` to ``url`` now; return True when accepted."""
        body = jsonutils.dump_as_bytes(document)
        headers = {'Content-Type': 'application/json',
                   EVENT_HEADER: event_type}
        if self.secret:
            headers[SIGNATURE_HEADER] = sign(self.secret, body)
        try:
            response = self._session().post(
                url, data=body, headers=headers,
                timeout=(self.timeout, self.timeout), verify=self.verify)
        except requests.RequestException as exc:
            LOG.error('Webhook %s for %s failed after %d retries: %s',
                      redact_url(url), event_type,
                      self._retry.total, type(exc).__name__)
            self._count('webhook_failed')
            return False
        if not response.ok:
            LOG.error('Webhook %s answered %d to %s after %d retries',
                      redact_url(url), response.status_code, event_type,
                      self._retry.total)
            self._count('webhook_failed')
            return False
        LOG.debug('Webhook %s accepted %s', redact_url(url), event_type)
        self._count('webhook_sent')
        return True

    def send(self, event_type, document):
        """Queue ``document`` for every URL; return the futures."""
        if not self.urls:
            return []
        with self._lock:
            if self._pool is None:
                self._pool = futures.ThreadPoolExecutor(
                    max_workers=self.conf.notifications.webhook_workers,
                    thread_name_prefix='logrca-webhook')
            queued = [self._pool.submit(self.post, url, event_type, document)
                      for url in self.urls]
            self._futures.update(queued)
        for future in queued:
            future.add_done_callback(self._forget)
        return queued

    def _forget(self, future):
        with self._lock:
            self._futures.discard(future)

    def wait(self, timeout=None):
        """Wait until every queued POST is done; return False on timeout."""
        with self._lock:
            pending = list(self._futures)
        _done, not_done = futures.wait(pending, timeout=timeout)
        return not not_done

    def close(self, wait=True):
        """Stop the sending threads (after the queued POSTs when ``wait``)."""
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=wait, cancel_futures=not wait)
