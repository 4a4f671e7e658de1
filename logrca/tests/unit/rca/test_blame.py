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

import unittest

from logrca.rca import blame
from logrca.rca import kb as kb_mod
from logrca.tests.unit.rca import scenario as sc

RPC = 'nova/rpc.py'
CONDUCTOR = 'nova/conductor/api.py'
COMPUTE = 'nova/compute/manager.py'


class TestBlameModel(unittest.TestCase):

    def model(self):
        return blame.BlameModel(smoothing=1.0).fit([
            ([RPC, CONDUCTOR, COMPUTE], CONDUCTOR),
            ([RPC, 'nova/conductor/rpcapi.py', CONDUCTOR], CONDUCTOR),
            ([RPC, COMPUTE], COMPUTE),
            ([COMPUTE, 'nova/api/openstack/compute/servers.py'], COMPUTE),
            (['nova/virt/libvirt/driver.py'], 'nova/objects/instance.py'),
        ])

    def test_a_carrier_module_is_passed_over_for_its_caller(self):
        model = self.model()
        self.assertEqual(3, model.seen[RPC])
        self.assertEqual(0, model.faulty[RPC])
        ranked = model.rank([RPC, CONDUCTOR, COMPUTE])
        self.assertEqual(CONDUCTOR, ranked[0][0])
        self.assertEqual(RPC, ranked[-1][0])

    def test_unknown_modules_follow_the_positional_base_rate(self):
        model = self.model()
        # Of 5 tracebacks, the fault was at position 0 once, at 1 twice,
        # at 2 once, and in none of the frames once.
        self.assertAlmostEqual(1 / 5, model.base_rate(0))
        self.assertAlmostEqual(2 / 5, model.base_rate(1))
        self.assertAlmostEqual(1 / 5, model.base_rate(2))
        ranked = model.rank(['nova/a.py', 'nova/b.py'])
        self.assertEqual(['nova/b.py', 'nova/a.py'], [m for m, _, _ in ranked])
        self.assertAlmostEqual(2 / 5, ranked[0][1])

    def test_repeated_modules_count_once_deepest_first(self):
        self.assertEqual([RPC, CONDUCTOR], blame.distinct_modules(
            [(RPC, 'a'), (RPC, 'b'), (CONDUCTOR, 'c'), (RPC, 'd')]))

    def test_empty_model_is_false(self):
        self.assertFalse(blame.BlameModel())
        self.assertFalse(blame.BlameModel().fit([([], COMPUTE),
                                                 ([RPC], None)]))
        self.assertTrue(self.model())

    def test_from_entries_uses_recorded_frames(self):
        entry = kb_mod.failure_entry(
            'past-1', sc.boot_failure(), COMPUTE, '_build_and_run_instance',
            'instance boot')
        # Distinct project modules of the first traceback, deepest first.
        self.assertEqual(['nova/virt/libvirt/driver.py', COMPUTE],
                         entry.frames)
        model = blame.BlameModel.from_entries([entry, kb_mod.Entry(
            id='doc:x', kind='doc', title='t', text='x')])
        self.assertEqual(1, model.tracebacks)
        self.assertEqual(1, model.faulty[COMPUTE])
