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

"""Conductor manager: the RPC endpoint that stores anomalies."""

import collections

import oslo_messaging
from oslo_log import log

from logrca.detectors import anomaly as anomaly_mod

LOG = log.getLogger(__name__)


class ConductorManager:
    """RPC endpoint of the conductor; the only writer of anomalies.

    :param conf: the ConfigOpts.
    :param dbapi: a :class:`logrca.db.api.Connection`.
    :param notifier: optional :class:`logrca.conductor.notifier.Notifier`,
        told about each anomaly stored for the first time.
    """

    # Keep in step with logrca.conductor.rpcapi.ConductorAPI.RPC_API_VERSION.
    target = oslo_messaging.Target(version='1.1')

    def __init__(self, conf, dbapi, notifier=None, explainer=None):
        self.conf = conf
        self.dbapi = dbapi
        self.notifier = notifier
        #: optional :class:`logrca.conductor.explainer.Explainer`.
        self.explainer = explainer
        #: received, stored, duplicate and malformed anomalies so far.
        self.counters = collections.Counter()

    def store_anomalies(self, ctxt, anomalies):
        """Store anomaly dicts; return the uuids newly stored.

        Malformed anomalies are logged, counted and dropped; the others are
        stored. Anomalies stored before (a redelivery) are skipped. A
        database error propagates, so that the caller retries the call.
        """
        if not isinstance(anomalies, (list, tuple)):
            LOG.error('store_anomalies: expected a list of anomalies, got '
                      '%s; ignored', type(anomalies).__name__)
            self.counters['malformed'] += 1
            return []
        valid = []
        for position, data in enumerate(anomalies):
            self.counters['received'] += 1
            try:
                if not isinstance(data, dict):
                    raise ValueError('not a dict but %s'
                                     % type(data).__name__)
                anomaly = anomaly_mod.Anomaly.from_dict(data)
                self.dbapi.check_anomaly(anomaly)
            except (ValueError, TypeError) as exc:
                self.counters['malformed'] += 1
                LOG.error('Dropping malformed anomaly %d of %d (detector '
                          '%s): %s', position + 1, len(anomalies),
                          data.get('detector') if isinstance(data, dict)
                          else None, exc)
                continue
            valid.append(anomaly)
        stored = self.dbapi.store_anomalies(valid) if valid else []
        self.counters['stored'] += len(stored)
        self.counters['duplicate'] += len(valid) - len(stored)
        if len(stored) != len(valid):
            LOG.debug('%d of %d anomalies were stored already',
                      len(valid) - len(stored), len(valid))
        if stored and self.notifier is not None:
            new = set(stored)
            # Only after the commit, and only for the first delivery: a
            # redelivered anomaly is not announced twice.
            self.notifier.anomalies_stored(
                [a for a in valid if a.uuid in new])
        if stored and self.explainer is not None:
            self.explainer.submit(stored)
        return stored

    def explain_anomaly(self, ctxt, anomaly_id, refresh=False):
        """The explanation document of a stored anomaly (RPC 1.1).

        Computed now if it was not yet. Returns None when the anomaly does
        not exist; the caller redacts it for its reader's project.
        """
        if self.explainer is None:
            from logrca.conductor import explainer as explainer_mod
            self.explainer = explainer_mod.Explainer(
                self.conf, self.dbapi, self.notifier)
        try:
            return self.explainer.explain(anomaly_id, refresh=bool(refresh))
        except LookupError:
            return None
