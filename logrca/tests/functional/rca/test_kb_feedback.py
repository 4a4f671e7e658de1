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


"""Operator feedback from the database becomes knowledge-base entries."""

import contextlib
import io
import os
import tempfile
import unittest
import uuid

from logrca.cmd import manage as manage_cmd
from logrca.conductor import manager as conductor_manager
from logrca.db import api as db_api
from logrca.db import migration
from logrca.rca import kb as kb_mod
from logrca.rca import service
from logrca.tests.unit.rca import scenario as sc


class TestKbBuildWithFeedback(unittest.TestCase):

    def setUp(self):
        tmp = tempfile.TemporaryDirectory()
        self.addCleanup(tmp.cleanup)
        self.tmp = tmp.name
        url = 'sqlite:///%s' % os.path.join(self.tmp, 'db.sqlite')
        self.config = os.path.join(self.tmp, 'logrca.conf')
        with open(self.config, 'w') as f:
            f.write('[DEFAULT]\nstate_path = %s\n[database]\n'
                    'connection = %s\n' % (self.tmp, url))
        conf = sc.make_conf()
        conf.set_override('connection', url, group='database')
        migration.upgrade(conf)
        self.dbapi = db_api.get_instance(conf)
        self.addCleanup(self.dbapi.dispose)
        self.records = sc.boot_failure()
        self.anomaly = sc.anomaly_for(self.records)
        self.other = sc.anomaly_for(sc.boot_failure())
        self.other.uuid = str(uuid.uuid4())
        self.other.evidence[0].message = (
            'Failed to attach volume: iSCSI target portal unreachable')
        self.other.evidence[0].logger = 'cinder.volume.manager'
        conductor_manager.ConductorManager(conf, self.dbapi).store_anomalies(
            {}, [self.anomaly.to_dict(), self.other.to_dict()])
        self.docs = os.path.join(self.tmp, 'docs', 'nova')
        os.makedirs(self.docs)
        with open(os.path.join(self.docs, 'ts.rst'), 'w') as f:
            f.write('Instance errors\n===============\n\nRead the '
                    'nova-compute log first.\n')

    def _build(self, *extra):
        out = os.path.join(self.tmp, 'kb')
        stdout = io.StringIO()
        with contextlib.redirect_stdout(stdout):
            rc = manage_cmd.main([
                '--config-file', self.config, 'kb', 'build', '--docs',
                os.path.dirname(self.docs), '--queries',
                os.path.join(self.tmp, 'none'), '--output', out, *extra])
        self.assertEqual(0, rc)
        return kb_mod.KnowledgeBase.load(out), stdout.getvalue()

    def test_confirmed_and_corrected_causes_become_entries(self):
        # Corrected twice: the latest wins. A confirmation of the other.
        self.dbapi.feedback_create(self.anomaly.uuid, {
            'verdict': 'corrected', 'module': 'nova/compute/manager.py',
            'function': '_build_and_run_instance', 'operation': 'boot'})
        self.dbapi.feedback_create(self.anomaly.uuid, {
            'verdict': 'corrected', 'module': 'nova/scheduler/manager.py',
            'function': 'select_destinations', 'operation': 'boot',
            'cause': 'no valid host', 'comment': 'password=Sekret12345'})
        self.dbapi.feedback_create(self.other.uuid, {
            'verdict': 'confirmed', 'module': 'nova/virt/libvirt/driver.py',
            'function': 'spawn'})
        # Words only, no module: no entry (an entry needs a location).
        third = sc.anomaly_for(sc.boot_failure())
        third.uuid = str(uuid.uuid4())
        self.dbapi.store_anomalies([third])
        self.dbapi.feedback_create(third.uuid, {'verdict': 'corrected',
                                                'cause': 'cosmic ray'})
        kb, printed = self._build()
        self.assertIn('feedback 2', printed)
        entries = {e.id: e for e in kb.entries if e.kind == 'feedback'}
        self.assertEqual({'feedback:%s' % self.anomaly.uuid,
                          'feedback:%s' % self.other.uuid}, set(entries))
        corrected = entries['feedback:%s' % self.anomaly.uuid]
        self.assertEqual('nova/scheduler/manager.py', corrected.module)
        self.assertEqual('select_destinations', corrected.function)
        self.assertEqual('boot', corrected.operation)
        self.assertIn('no valid host', corrected.text)
        self.assertNotIn('Sekret12345', corrected.text)
        # The same failure seen again retrieves the operator's cause.
        query = kb_mod.signature(service.evidence_records(
            service.anomaly_from_db(self.dbapi.anomaly_get(
                self.anomaly.uuid))))
        self.assertTrue(query)
        hits = kb.search(query, k=1, kinds=('feedback',))
        self.assertEqual([corrected.id], [entry.id for entry, _s in hits])
        # --no-feedback leaves them out.
        kb, _printed = self._build('--no-feedback')
        self.assertFalse([e for e in kb.entries if e.kind == 'feedback'])
