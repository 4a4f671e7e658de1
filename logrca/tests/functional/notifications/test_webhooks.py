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

"""Webhooks against an HTTP server on loopback: retries, timeouts, HMAC."""

import hashlib
import hmac
import http.server
import json
import threading
import time

import pytest

from logrca import conf as logrca_conf
from logrca.conductor import notifier as notifier_mod
from logrca.conductor import webhooks
from logrca.tests.functional.notifications import test_notifications

SECRET = test_notifications.SECRET


class _Server(http.server.ThreadingHTTPServer):
    """Answers each POST with the next status of ``statuses``."""

    daemon_threads = True

    def __init__(self, statuses, delay=0.0):
        super().__init__(('127.0.0.1', 0), _Handler)
        self.statuses = list(statuses)
        self.delay = delay
        self.requests = []
        self.lock = threading.Lock()

    @property
    def url(self):
        return 'http://127.0.0.1:%d/hooks/T0KEN' % self.server_address[1]


class _Handler(http.server.BaseHTTPRequestHandler):
    def do_POST(self):  # noqa: N802 (http.server's naming)
        body = self.rfile.read(int(self.headers['Content-Length']))
        server = self.server
        with server.lock:
            server.requests.append((dict(self.headers), body))
            status = server.statuses.pop(0) if server.statuses else 200
        if server.delay:
            time.sleep(server.delay)
        self.send_response(status)
        self.send_header('Content-Length', '0')
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def server_factory():
    made = []

    def make(statuses=(), delay=0.0):
        server = _Server(statuses, delay)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        made.append(server)
        return server

    yield make
    for server in made:
        server.shutdown()
        server.server_close()


def _conf(urls, **overrides):
    conf = logrca_conf.new_conf()
    conf([], project='logrca')
    conf.set_override('host', 'ctl-1')
    conf.set_override('webhook_urls', urls, group='notifications')
    conf.set_override('webhook_retry_backoff', 0.0, group='notifications')
    for key, value in overrides.items():
        conf.set_override(key, value, group='notifications')
    return conf


def test_retries_on_500_then_delivers(server_factory):
    server = server_factory(statuses=[500, 503])
    conf = _conf([server.url], webhook_secret='k3y')
    notifier = notifier_mod.Notifier(conf)
    anomaly = test_notifications.make_anomaly()
    try:
        assert notifier.enabled and not notifier.messaging_enabled
        assert notifier.anomalies_stored([anomaly]) == 1
        assert notifier.webhooks.wait(timeout=20)
    finally:
        notifier.close()
    assert len(server.requests) == 3
    bodies = {body for _h, body in server.requests}
    assert len(bodies) == 1, 'every retry carries the same document'
    headers, body = server.requests[-1]
    document = json.loads(body)
    assert document['event_type'] == 'anomaly.create'
    assert document['publisher_id'] == 'logrca-conductor.ctl-1'
    assert document['priority'] == 'INFO'
    data = document['payload']['logrca_object.data']
    assert data['uuid'] == anomaly.uuid
    assert SECRET not in body.decode()
    assert headers['X-Logrca-Event'] == 'anomaly.create'
    expected = 'sha256=' + hmac.new(b'k3y', body, hashlib.sha256).hexdigest()
    assert headers['X-Logrca-Signature'] == expected
    assert notifier.webhooks.counters['webhook_sent'] == 1
    assert notifier.webhooks.counters['webhook_failed'] == 0


def test_gives_up_after_retries_and_counts(server_factory):
    server = server_factory(statuses=[500] * 10)
    good = server_factory()
    conf = _conf([server.url, good.url], webhook_retries=2)
    sender = webhooks.WebhookSender(conf)
    try:
        sender.send('anomaly.create', {'x': 1})
        assert sender.wait(timeout=20)
    finally:
        sender.close()
    assert len(server.requests) == 3  # the first try and two retries
    assert len(good.requests) == 1, 'a failing URL does not stop the others'
    assert sender.counters['webhook_failed'] == 1
    assert sender.counters['webhook_sent'] == 1


def test_timeout_is_bounded(server_factory):
    server = server_factory(delay=3.0)
    conf = _conf([server.url], webhook_retries=1, webhook_timeout=0.3)
    sender = webhooks.WebhookSender(conf)
    start = time.monotonic()
    try:
        assert sender.post(server.url, 'anomaly.create', {'x': 1}) is False
    finally:
        sender.close()
    assert time.monotonic() - start < 2.5
    assert len(server.requests) == 2
    assert sender.counters['webhook_failed'] == 1


def test_unreachable_url_fails_cleanly():
    conf = _conf(['http://127.0.0.1:9/nothing'], webhook_retries=1,
                 webhook_timeout=0.5)
    sender = webhooks.WebhookSender(conf)
    try:
        assert sender.post(sender.urls[0], 'anomaly.create', {}) is False
    finally:
        sender.close()
    assert sender.counters['webhook_failed'] == 1


def test_bad_scheme_is_refused_and_counted():
    conf = _conf(['ftp://example.org/x', 'file:///etc/passwd'])
    sender = webhooks.WebhookSender(conf)
    assert not sender.enabled
    assert sender.counters['webhook_bad_url'] == 2


def test_redact_url_hides_path_and_credentials():
    assert (webhooks.redact_url('https://u:pw@hooks.example.org:8443/T/B/X')
            == 'https://hooks.example.org:8443/...')
