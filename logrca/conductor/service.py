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


"""The conductor service: an RPC server that stores anomalies."""

import oslo_messaging
from oslo_log import log
from oslo_service import service

from logrca.conductor import explainer as explainer_mod
from logrca.conductor import manager as manager_mod
from logrca.conductor import notifier as notifier_mod
from logrca.conductor import retention
from logrca.conductor import rpcapi
from logrca.db import api as db_api
from logrca.db import exceptions as db_exceptions
from logrca.db import migration

LOG = log.getLogger(__name__)


def check_schema(conf):
    """Make sure the database schema is current before serving.

    The embedded SQLite database is created or upgraded here; a shared
    database (MariaDB, PostgreSQL) is upgraded by the operator with
    ``logrca-manage db sync``, never behind their back.

    :raises SchemaNotCurrent: when a shared database is not at head.
    """
    dbapi = db_api.get_instance(conf)
    try:
        backend = dbapi.get_engine().dialect.name
        current = migration.version(conf, engine=dbapi.get_engine())
        head = migration.head()
        if current == head:
            return
        if backend == 'sqlite':
            LOG.info('Upgrading the SQLite database from %s to %s',
                     current, head)
            migration.upgrade(conf, engine=dbapi.get_engine())
            return
        raise db_exceptions.SchemaNotCurrent(
            'database schema is at %s, logrca needs %s: run "logrca-manage '
            'db sync"' % (current, head))
    finally:
        dbapi.dispose()


class ConductorService(service.Service):
    """Serve :class:`~logrca.conductor.manager.ConductorManager` over RPC.

    Connections (database, broker) are opened in :meth:`start`, in the
    worker process, never in the parent that forks it.
    """

    def __init__(self, conf):
        super().__init__()
        self.conf = conf
        self.dbapi = None
        self.manager = None
        self.rpcserver = None
        self.transport = None
        self.notifier = None
        self.retention = None
        self.explainer = None

    def start(self):
        super().start()
        self.dbapi = db_api.get_instance(self.conf)
        rpcapi.register_messaging_opts(self.conf)
        self.notifier = notifier_mod.Notifier(self.conf)
        self.explainer = None
        if self.conf.conductor.explain_on_store:
            self.explainer = explainer_mod.Explainer(
                self.conf, self.dbapi, self.notifier)
            self.explainer.start()
        self.manager = manager_mod.ConductorManager(
            self.conf, self.dbapi, notifier=self.notifier,
            explainer=self.explainer)
        self.transport = rpcapi.get_rpc_transport(self.conf)
        target = oslo_messaging.Target(topic=self.conf.conductor.topic,
                                       server=self.conf.host)
        self.rpcserver = oslo_messaging.get_rpc_server(
            self.transport, target, [self.manager],
            access_policy=oslo_messaging.DefaultRPCAccessPolicy)
        self.rpcserver.start()
        self.retention = retention.RetentionTask(self.conf, self.dbapi)
        self.retention.start()
        LOG.info('Conductor %s serving topic %s', self.conf.host,
                 self.conf.conductor.topic)

    def stop(self, graceful=True):
        if self.retention is not None:
            self.retention.stop()
        if self.rpcserver is not None:
            self.rpcserver.stop()
            self.rpcserver.wait()
            self.rpcserver = None
        if self.transport is not None:
            self.transport.cleanup()
            self.transport = None
        if self.explainer is not None:
            self.explainer.stop()
        if self.notifier is not None:
            self.notifier.close()
        if self.dbapi is not None:
            self.dbapi.dispose()
        if self.manager is not None:
            LOG.info('Conductor stopped; anomalies: %s',
                     dict(self.manager.counters))
        super().stop(graceful=graceful)
