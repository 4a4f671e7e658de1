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

"""Tests of code-location normalisation."""

import unittest

from logrca.rca import locations
from logrca.tests.unit.rca import scenario


class TestLocations(unittest.TestCase):

    def test_paths_loggers_and_pyc_mean_the_same_module(self):
        want = 'nova/compute/manager.py'
        for path in ('/usr/lib/python2.7/site-packages/nova/compute/'
                     'manager.pyc', '/nova/compute/manager.py',
                     'nova/compute/manager.py',
                     '/opt/stack/nova/nova/compute/manager.py'):
            self.assertEqual(want, locations.normalise_path(path), path)
        self.assertEqual(want, locations.logger_module(
            'nova.compute.manager'))
        self.assertIsNone(locations.logger_module('keystonemiddleware'))
        self.assertEqual('nova/compute', locations.package_of(want))

    def test_function_is_cut_at_plus(self):
        self.assertEqual('do_attach_volume', locations.normalise_function(
            'do_attach_volume+4920;8'))

    def test_frames_deepest_last_and_debug_location(self):
        frames = locations.frames(scenario.TRACEBACK)
        self.assertEqual(('nova/compute/manager.py',
                          '_do_build_and_run_instance', 1852), frames[0])
        self.assertEqual('oslo_utils/excutils.py', frames[-1][0])
        self.assertFalse(locations.is_project(frames[-1][0]))
        self.assertEqual(
            ('nova/virt/libvirt/driver.py', '_create_image', 3100),
            locations.debug_location('_create_image /usr/lib/python2.7/'
                                     'site-packages/nova/virt/libvirt/'
                                     'driver.pyc:3100'))

    def test_names_location(self):
        mod = 'nova/compute/manager.py'
        self.assertTrue(locations.names_location(
            'ERROR nova.compute.manager [req-1] x', mod))
        self.assertFalse(locations.names_location(
            'ERROR nova.compute.manager_utils x', mod))
        self.assertTrue(locations.names_location(
            'File ".../nova/compute/manager.pyc", line 3', mod))
        self.assertTrue(locations.names_location(
            'in _build_and_run_instance', 'x/y.py',
            '_build_and_run_instance'))
        self.assertFalse(locations.names_location(
            'in _build_and_run_instance_x', 'x/y.py',
            '_build_and_run_instance'))
