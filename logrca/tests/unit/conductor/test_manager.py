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


"""Unit tests of the conductor manager and its RPC client (fake transport)."""

import oslo_messaging
import pytest

from logrca.conductor import manager as manager_mod
from logrca.conductor import rpcapi
from logrca.tests.functional.db import base


class RecordingNotifier:
    """Stands in for the Notifier: records what it is told."""

    def __init__(self):
        self.announced = []

    def anomalies_stored(self, anomalies):
        self.announced.extend(a.uuid for a in anomalies)


@pytest.fixture
def dbapi():
    with base.migrated_database('sqlite') as connection:
        yield connection


def test_manager_stores_valid_and_counts_malformed(dbapi):
    notifier = RecordingNotifier()
    manager = manager_mod.ConductorManager(dbapi.conf, dbapi,
                                           notifier=notifier)
    good = [base.make_anomaly(i, service='unit').to_dict() for i in range(3)]
    bad = [{'detector': 'x'}, 42, dict(good[0], score='NaN?'),
           dict(good[1], evidence=[{'nope': 1}])]
    stored = manager.store_anomalies({}, good + bad)
    assert sorted(stored) == sorted(a['uuid'] for a in good)
    assert manager.counters['malformed'] == 4
    assert manager.counters['stored'] == 3
    assert sorted(notifier.announced) == sorted(stored)
    # A redelivery stores and announces nothing.
    assert manager.store_anomalies({}, good) == []
    assert manager.counters['duplicate'] == 3
    assert len(notifier.announced) == 3
    assert manager.store_anomalies({}, 'garbage') == []
    assert manager.counters['malformed'] == 5


def test_rpc_round_trip_on_fake_transport(dbapi):
    conf = dbapi.conf
    conf.set_override('topic', 'unit-conductor', group='conductor')
    rpcapi.register_messaging_opts(conf)
    transport = oslo_messaging.get_rpc_transport(conf, url='fake:')
    manager = manager_mod.ConductorManager(conf, dbapi)
    server = oslo_messaging.get_rpc_server(
        transport, oslo_messaging.Target(topic='unit-conductor',
                                         server='h1'),
        [manager], access_policy=oslo_messaging.DefaultRPCAccessPolicy)
    server.start()
    try:
        api = rpcapi.ConductorAPI(conf, transport=transport, timeout=5)
        anomalies = [base.make_anomaly(i, service='fake').to_dict()
                     for i in range(2)]
        assert sorted(api.store_anomalies({}, anomalies)) == sorted(
            a['uuid'] for a in anomalies)
        assert api.store_anomalies({}, anomalies) == []
        assert dbapi.anomaly_count({'service': 'fake'}) == 2
        # The client never sends a version above its cap...
        with pytest.raises(oslo_messaging.RPCVersionCapError):
            api.client.prepare(version='1.99').call(
                {}, 'store_anomalies', anomalies=[])
        # ...and the server refuses a version it does not know.
        uncapped = oslo_messaging.get_rpc_client(
            transport, oslo_messaging.Target(topic='unit-conductor',
                                             version='2.0'), timeout=5)
        with pytest.raises(oslo_messaging.UnsupportedVersion):
            uncapped.call({}, 'store_anomalies', anomalies=[])
    finally:
        server.stop()
        server.wait()
        transport.cleanup()
