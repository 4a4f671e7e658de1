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

"""Automatic retention: the conductor purges old anomalies periodically."""

import collections
import datetime

from oslo_db import exception as db_exc
from oslo_log import log
from oslo_service import loopingcall
from oslo_utils import timeutils

LOG = log.getLogger(__name__)


class RetentionTask:
    """Delete anomalies older than ``[conductor] retention_days``.

    Evidence and explanations go with their anomaly (the database API's
    ``anomaly_purge``); operators' conversations not updated for as long
    go too (``conversation_purge``): they quote questions and answers
    about anomalies that are gone. Runs every ``[conductor]
    retention_interval`` seconds on an oslo.service looping call; a
    database error is logged and counted, and the next run tries again.

    :param conf: the ConfigOpts.
    :param dbapi: a :class:`logrca.db.api.Connection`.
    """

    def __init__(self, conf, dbapi):
        self.conf = conf
        self.dbapi = dbapi
        #: runs, purged (anomalies) and failed runs so far.
        self.counters = collections.Counter()
        self._timer = None

    @property
    def enabled(self):
        return self.conf.conductor.retention_days > 0

    def cutoff(self, now=None):
        """Anomalies raised before this naive UTC datetime are purged."""
        now = now or timeutils.utcnow()
        return now - datetime.timedelta(
            days=self.conf.conductor.retention_days)

    def run_once(self, now=None):
        """Purge once; return the number of anomalies deleted."""
        if not self.enabled:
            return 0
        cutoff = self.cutoff(now)
        self.counters['runs'] += 1
        try:
            deleted = self.dbapi.anomaly_purge(cutoff)
        except db_exc.DBError as exc:
            self.counters['failed'] += 1
            LOG.error('Retention: purging anomalies raised before %s '
                      'failed, will retry in %d s: %s', cutoff,
                      self.conf.conductor.retention_interval, exc)
            return 0
        self.counters['purged'] += deleted
        if deleted:
            LOG.info('Retention: purged %d anomalies raised before %s '
                     '(retention_days=%d)', deleted, cutoff,
                     self.conf.conductor.retention_days)
        self._purge_conversations(cutoff)
        return deleted

    def _purge_conversations(self, cutoff):
        """Delete conversations last updated before ``cutoff``."""
        try:
            deleted = self.dbapi.conversation_purge(cutoff)
        except db_exc.DBError as exc:
            self.counters['failed'] += 1
            LOG.error('Retention: purging conversations not updated since '
                      '%s failed, will retry: %s', cutoff, exc)
            return
        self.counters['conversations_purged'] += deleted
        if deleted:
            LOG.info('Retention: purged %d conversations not updated since '
                     '%s', deleted, cutoff)

    def start(self):
        """Start the periodic purge; a no-op when retention is off."""
        if not self.enabled or self._timer is not None:
            return
        interval = self.conf.conductor.retention_interval
        self._timer = loopingcall.FixedIntervalLoopingCall(self.run_once)
        # The first purge waits a little, so that a starting conductor
        # serves RPC before it runs a long delete.
        self._timer.start(interval=interval,
                          initial_delay=min(interval, 60))
        LOG.info('Retention: anomalies older than %d days are purged every '
                 '%d s', self.conf.conductor.retention_days, interval)

    def stop(self):
        """Stop the periodic purge and wait for a running one to end."""
        timer, self._timer = self._timer, None
        if timer is not None:
            timer.stop()
            timer.wait()
