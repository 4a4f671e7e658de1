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

"""The conductor's explainer: RCA drivers explain stored anomalies."""

import queue
import threading

from oslo_log import log

from logrca.rca import base as rca_base
from logrca.rca import service as rca_service

LOG = log.getLogger(__name__)

# Anomalies waiting for an explanation; beyond this the oldest wait for an
# operator to ask (an explanation is also computed on demand).
QUEUE_SIZE = 1000


class Explainer:
    """Explains anomalies with the configured RCA driver, once each.

    The knowledge base, the driver (with the MiniLM encoder of the
    grounded driver) and the agent's trained model of normal behaviour,
    when there is one (the missing step of a context), are loaded on first
    use and kept. New anomalies are explained in a background thread, so
    storing never waits for RCA; an explanation asked for before its turn
    is computed at once. Each new
    explanation is stored and announced (``anomaly.explanation.ready``);
    a new anomaly also has the first anomaly of its incident explained
    again (:meth:`refresh_incident`).

    :param conf: the ConfigOpts.
    :param dbapi: a :class:`logrca.db.api.Connection`.
    :param notifier: optional :class:`logrca.conductor.notifier.Notifier`.
    """

    def __init__(self, conf, dbapi, notifier=None):
        self.conf = conf
        self.dbapi = dbapi
        self.notifier = notifier
        self._lock = threading.Lock()
        self._driver = None
        self._kb = None
        self._normal = None
        self._queue = queue.Queue(maxsize=QUEUE_SIZE)
        self._thread = None

    def _load(self):
        with self._lock:
            if self._driver is None:
                self._kb = rca_service.load_kb(self.conf)
                self._normal = rca_service.load_normal_model(self.conf)
                self._driver = rca_base.load_driver(self.conf, kb=self._kb)
        return self._driver

    def explain(self, anomaly_id, refresh=False):
        """The explanation document of a stored anomaly (computed if need be).

        :raises logrca.rca.service.NotFound: no such anomaly.
        :raises logrca.rca.base.RCAError: it cannot be explained.
        """
        stored = None if refresh else self.dbapi.explanation_get(anomaly_id)
        if stored is not None and stored.get('body'):
            return stored['body']
        driver = self._load()
        body = rca_service.get_explanation(
            self.conf, anomaly_id, driver=driver, refresh=True,
            dbapi=self.dbapi, kb=self._kb, normal_model=self._normal)
        if self.notifier is not None:
            row = self.dbapi.anomaly_get(anomaly_id)
            if row is not None:
                self.notifier.explanation_ready(
                    rca_service.anomaly_from_db(row), body)
        return body

    def submit(self, anomaly_ids):
        """Queue newly stored anomalies for explanation (never blocks)."""
        if self._thread is None:
            return
        for anomaly_id in anomaly_ids:
            try:
                self._queue.put_nowait(anomaly_id)
            except queue.Full:
                LOG.warning('Explanation queue full; %s will be explained '
                            'when asked for', anomaly_id)

    def start(self):
        """Start explaining queued anomalies in a background thread."""
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._run, name='logrca-explainer', daemon=True)
            self._thread.start()

    def stop(self):
        """Stop the background thread after the anomaly in hand."""
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join(timeout=60)
            self._thread = None

    def join(self):
        """Wait until every queued anomaly is explained (tests, shutdown)."""
        self._queue.join()

    def refresh_incident(self, anomaly_id):
        """Explain again the first anomaly of the incident ``anomaly_id``
        joins, when its explanation is stored already.

        An explanation reads the evidence of the anomalies around it
        (:func:`logrca.rca.service.incident_records`), and the call the
        users saw refused often comes minutes after the first symptom: the
        first anomaly raised within ``[rca] context_after`` +
        ``outcome_horizon`` before this one (of its project, or of none)
        is explained again with it. Only that one, so that a burst of
        anomalies costs one more explanation each. Returns its id, or
        None.
        """
        row = self.dbapi.anomaly_get(anomaly_id)
        if row is None:
            return None
        anomaly = rca_service.anomaly_from_db(row)
        if anomaly.raised_at is None:
            return None
        rca = self.conf.rca
        filters = {'since': anomaly.raised_at - rca.context_after
                   - rca.outcome_horizon, 'until': anomaly.raised_at}
        if anomaly.project_id:
            filters['project_id_or_null'] = anomaly.project_id
        first = self.dbapi.anomaly_get_all(
            filters=filters, limit=1, sort_keys=['raised_at'],
            sort_dirs=['asc'])
        if not first or first[0]['uuid'] == anomaly_id:
            return None
        earlier = first[0]['uuid']
        if self.dbapi.explanation_get(earlier) is None:
            return None
        self.explain(earlier, refresh=True)
        return earlier

    def _run(self):
        while True:
            anomaly_id = self._queue.get()
            try:
                if anomaly_id is None:
                    return
                self.explain(anomaly_id)
                self.refresh_incident(anomaly_id)
            except Exception:  # keep explaining the others
                LOG.exception('Cannot explain anomaly %s', anomaly_id)
            finally:
                self._queue.task_done()
