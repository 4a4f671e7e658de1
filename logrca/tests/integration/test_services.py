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

"""End to end over RabbitMQ: logrca-agent and logrca-conductor as services."""

import logrca.cmd  # noqa: F401,I001  (threading backend first)

import json
import os
import pathlib
import signal
import subprocess
import sys
import tarfile
import time
import uuid

import kombu
import oslo_messaging
import pytest
from oslo_context import context as oslo_context

from logrca import conf as logrca_conf
from logrca.agent import follow
from logrca.agent import pipeline
from logrca.conductor import rpcapi
from logrca.db import api as db_api
from logrca.db import migration
from logrca.detectors import baseline
from logrca.parsing import oslo_log
from logrca.tests import services

ROOT = pathlib.Path(__file__).resolve().parents[3]
DATA = pathlib.Path(os.environ.get('LOGRCA_SHARED_DATA',
                                   ROOT.parent / 'shared' / 'data'))
ARCHIVE = (DATA / 'dessertlab-openstack-fault-injection' / 'logs'
           / 'Cinder-round_1.tar.xz')
SAMPLES = DATA / 'nova-notification-samples'


def _real_failure_log():
    """The first service log with a traceback in the Cinder campaign."""
    if not ARCHIVE.exists():
        services.unavailable('shared data not found at %s' % ARCHIVE)
    with tarfile.open(ARCHIVE, 'r|xz') as tar:
        for member in tar:
            name = member.name
            if (not member.isfile() or '/foreground_wl/' in name
                    or not name.endswith('.out')):
                continue
            data = tar.extractfile(member).read()
            if b' ERROR ' in data and b'Traceback' in data:
                return follow.stream_name(name), data.splitlines(True)
    pytest.fail('no failure log found in %s' % ARCHIVE)


def _expected_uuids(conf, stream, lines):
    """What the same detector finds in the same lines, in one process."""
    pipe = pipeline.Pipeline(conf, None, [baseline.BaselineDetector(conf)])
    reader = oslo_log.RecordReader(stream)
    found = []
    for lineno, line in enumerate(lines, 1):
        for record in reader.feed(line, lineno):
            found += pipe.process(record)
    for record in reader.flush():
        found += pipe.process(record)
    return {a.uuid for a in found}


class Service:
    """A logrca service in a subprocess with its own session."""

    def __init__(self, module, config, log):
        self.log = log
        with open(log, 'ab') as out:
            self.process = subprocess.Popen(
                [sys.executable, '-m', module, '--config-file', str(config)],
                stdout=out, stderr=subprocess.STDOUT,
                start_new_session=True)

    def alive(self):
        return self.process.poll() is None

    def stop(self):
        if self.alive():
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(10)


def _wait_ready(conf, conductor, log, deadline=60):
    """Wait until the conductor answers RPC calls."""
    api = rpcapi.ConductorAPI(conf, timeout=2)
    try:
        end = time.monotonic() + deadline
        while time.monotonic() < end:
            assert conductor.alive(), log.read_text()[-3000:]
            try:
                api.store_anomalies({}, [])
                return
            except oslo_messaging.MessagingTimeout:
                continue
        pytest.fail('conductor not ready:\n%s' % log.read_text()[-3000:])
    finally:
        api.cleanup()


def _publish_error(url, topic, sample):
    conf = logrca_conf.new_conf()
    conf([], project='logrca', default_config_files=[])
    transport = oslo_messaging.get_notification_transport(conf, url=url)

    class Serializer(oslo_messaging.NoOpSerializer):
        def serialize_context(self, context):
            return context.to_dict()

    notifier = oslo_messaging.Notifier(
        transport, publisher_id=sample['publisher_id'],
        driver='messagingv2', topics=[topic], serializer=Serializer())
    ctxt = oslo_context.RequestContext(
        request_id='req-%s' % uuid.uuid4(), project_id='proj-e2e',
        user_id='user-e2e')
    notifier.error(ctxt, sample['event_type'], sample['payload'])
    transport.cleanup()
    return ctxt


def test_agent_and_conductor_store_log_and_notification_anomalies(
        tmp_path):
    url = services.require_rabbit()
    stream, lines = _real_failure_log()
    suffix = uuid.uuid4().hex[:10]
    rpc_topic = 'logrca-e2e-%s' % suffix
    note_topic = 'logrca_e2e_notes_%s' % suffix
    pool = 'logrca-e2e-%s' % suffix
    logs = tmp_path / 'logs'
    logs.mkdir()
    db_url = 'sqlite:///%s' % (tmp_path / 'logrca.sqlite')
    config = tmp_path / 'logrca.conf'
    config.write_text(
        '[DEFAULT]\nhost = e2e\nstate_path = %s\ntransport_url = %s\n'
        '[database]\nconnection = %s\n'
        '[conductor]\ntopic = %s\n'
        '[agent]\nlog_files = %s/*.log\nfollow_from = beginning\n'
        'poll_interval = 0.2\nnotification_topics = %s\n'
        'notification_pool = %s\ndetectors = baseline\n'
        % (tmp_path / 'state', url, db_url, rpc_topic, logs, note_topic,
           pool))
    conf = logrca_conf.new_conf()
    conf(['--config-file', str(config)], project='logrca',
         default_config_files=[])
    migration.upgrade(conf)
    expected = _expected_uuids(conf, stream, lines)
    assert expected, 'the real failure log must raise anomalies'

    conductor = Service('logrca.cmd.conductor', config,
                        tmp_path / 'conductor.log')
    agent = None
    dbapi = db_api.get_instance(conf)
    try:
        _wait_ready(conf, conductor, tmp_path / 'conductor.log')
        agent = Service('logrca.cmd.agent', config, tmp_path / 'agent.log')
        time.sleep(3)  # let the listener bind its queue
        # The service log arrives in three appends, as a live service
        # writes it; the file's name gives the stream its service name.
        target = logs / ('%s.log' % stream)
        third = len(lines) // 3
        for chunk in (lines[:third], lines[third:2 * third],
                      lines[2 * third:]):
            with open(target, 'ab') as out:
                out.writelines(chunk)
            time.sleep(0.5)
        sample = json.loads((SAMPLES / 'instance-create-error.json')
                            .read_text())
        ctxt = _publish_error(url, note_topic, sample)

        deadline = time.monotonic() + 60
        stored = set()
        note = []
        while time.monotonic() < deadline:
            assert agent.alive(), (tmp_path / 'agent.log').read_text()[-3000:]
            assert conductor.alive(), (
                (tmp_path / 'conductor.log').read_text()[-3000:])
            rows = dbapi.anomaly_get_all({}, limit=1000, marker=None,
                                         sort_keys=None, sort_dirs=None)
            stored = {r['uuid'] for r in rows if r['service'] == stream}
            note = [r for r in rows if ctxt.request_id in
                    (r.get('request_ids') or [])]
            if expected <= stored and note:
                break
            time.sleep(1)
        assert stored == expected
        assert len(note) == 1
        shown = dbapi.anomaly_get(note[0]['uuid'])
        assert shown['project_id'] == 'proj-e2e'
        assert any('FlavorDiskTooSmall' in e['message']
                   for e in shown['evidence'])
    finally:
        if agent is not None:
            agent.stop()
        conductor.stop()
        dbapi.dispose()
        with kombu.Connection(url.replace('rabbit://', 'amqp://', 1)) as c:
            channel = c.channel()
            for name in (rpc_topic, '%s.e2e' % rpc_topic):
                try:
                    channel.queue_delete(name)
                except Exception:  # noqa: BLE001 - best effort clean-up
                    pass
