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


"""Client side of the conductor RPC API."""

import oslo_messaging
from oslo_log import log

LOG = log.getLogger(__name__)


def register_messaging_opts(conf):
    """Register on ``conf`` the oslo.messaging options it forgets.

    oslo.messaging 18 reads ``[oslo_messaging_tracing]`` and
    ``[oslo_messaging_metrics]`` from the conf it is given on every call,
    but registers those options on the global ``cfg.CONF`` only: with
    logrca's own ConfigOpts every ``call`` would fail with NoSuchOptError.
    """
    try:
        from oslo_messaging._metrics import client as metrics
        from oslo_messaging._tracing import client as tracing
    except ImportError:  # pragma: no cover - other oslo.messaging versions
        return
    conf.register_opts(tracing.oslo_messaging_tracing,
                       group='oslo_messaging_tracing')
    conf.register_opts(metrics.oslo_messaging_metrics,
                       group='oslo_messaging_metrics')


def get_rpc_transport(conf):
    """The RPC transport of ``conf`` (``transport_url``), ready to use."""
    register_messaging_opts(conf)
    return oslo_messaging.get_rpc_transport(conf)


class ConductorAPI:
    """Client side of the conductor RPC API.

    API version history:

    * 1.0 - Initial version: ``store_anomalies``.
    * 1.1 - ``explain_anomaly``.
    """

    RPC_API_VERSION = '1.1'

    def __init__(self, conf, transport=None, timeout=None):
        self.conf = conf
        register_messaging_opts(conf)
        self._own_transport = transport is None
        if transport is None:
            transport = get_rpc_transport(conf)
        self.transport = transport
        target = oslo_messaging.Target(topic=conf.conductor.topic,
                                       version=self.RPC_API_VERSION)
        self.client = oslo_messaging.get_rpc_client(
            transport, target, version_cap=self.RPC_API_VERSION,
            timeout=timeout)

    def store_anomalies(self, ctxt, anomalies):
        """Store anomaly dicts; return the uuids newly stored.

        A ``call``, not a ``cast``: when it returns, the conductor has
        committed them, and the caller may commit its read offsets or
        acknowledge the notifications they came from. On a timeout or a
        lost conductor it raises; the caller sends the same anomalies again
        (storing is idempotent).

        :param ctxt: request context (a dict or an oslo.context object).
        :param anomalies: list of ``Anomaly.to_dict()`` dicts.
        """
        cctxt = self.client.prepare(version='1.0')
        return cctxt.call(ctxt, 'store_anomalies', anomalies=anomalies)

    def explain_anomaly(self, ctxt, anomaly_id, refresh=False):
        """The explanation document of a stored anomaly, or None.

        The conductor computes it with its RCA driver if it has none yet
        (or ``refresh``); the document is not redacted for any project.
        """
        cctxt = self.client.prepare(version='1.1')
        return cctxt.call(ctxt, 'explain_anomaly', anomaly_id=anomaly_id,
                          refresh=refresh)

    def cleanup(self):
        """Release the transport, when this client made it."""
        if self._own_transport:
            self.transport.cleanup()
