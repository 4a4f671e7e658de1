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

"""Tests of the failed operation read from log evidence."""

import unittest

from logrca.rca import operations
from logrca.tests.unit.rca import scenario as sc

L3_TRACEBACK = [
    'Traceback (most recent call last):',
    '  File "%s/neutron/agent/l3/router_info.py", line 421, in '
    'internal_network_added' % sc.SITE,
    "TypeError: _internal_network_added() takes at least 8 arguments",
]


def l3_agent_errors():
    """A router the L3 agent fails to wire for a new instance."""
    return [
        sc.record(0.0, 'neutron-l3-agent', 'ERROR',
                  'neutron.agent.l3.router_info', 'TypeError',
                  extra=L3_TRACEBACK, lineno=1),
        sc.record(0.1, 'neutron-l3-agent', 'ERROR', 'neutron.agent.l3.agent',
                  'Failed to process compatible router: r-1: TypeError',
                  lineno=2),
    ]


class TestInfer(unittest.TestCase):

    def test_agent_only_errors_mean_the_boot_failed(self):
        records = l3_agent_errors()
        self.assertTrue(operations.agents_only(records))
        operation, scores, backing = operations.infer(records)
        self.assertEqual(operations.BOOT, operation)
        self.assertNotIn(operations.NETWORK, scores)
        self.assertEqual(records, backing)

    def test_a_failed_network_call_is_network_setup(self):
        records = l3_agent_errors() + [
            sc.record(0.2, 'neutron-server', 'ERROR',
                      'neutron.pecan_wsgi.hooks.translation',
                      'POST failed creating subnet', lineno=3),
            sc.record(0.3, 'neutron-server', 'INFO',
                      'neutron.wsgi', '10.0.0.1 "POST /v2.0/subnets '
                      'HTTP/1.1" status: 500  len: 368', lineno=4),
        ]
        self.assertFalse(operations.agents_only(
            [r for r in records if r.is_error]))
        operation, _scores, backing = operations.infer(records)
        self.assertEqual(operations.NETWORK, operation)
        self.assertIn(records[-1], backing)

    def test_the_first_refused_call_decides_over_error_words(self):
        # The Neutron agents' errors say network (they wire the instance),
        # and there are more of them; the user's refused call is a boot.
        records = l3_agent_errors() + [
            sc.record(0.2, 'neutron-server', 'ERROR',
                      'neutron.plugins.ml2.managers',
                      'Mechanism driver openvswitch failed in bind_port: '
                      'subnet router segment', lineno=3),
            sc.record(0.4, 'nova-api', 'INFO',
                      'nova.osapi_compute.wsgi.server',
                      '10.0.0.1 "POST /v2.1/p/servers/s-1/action HTTP/1.1" '
                      'status: 400 len: 120', lineno=4),
        ]
        operation, scores, backing = operations.infer(records)
        self.assertEqual(operations.BOOT, operation)
        self.assertGreater(scores[operations.NETWORK]
                           + scores[operations.CONNECTIVITY], 0.0)
        self.assertEqual([records[-1]], backing[:1])

    def test_an_ambiguous_volume_action_only_votes(self):
        # POST /volumes/<id>/action is an attach step or a property set at
        # create time: the errors' words decide.
        records = [
            sc.record(0.0, 'cinder-api', 'INFO', 'cinder.api.openstack.wsgi',
                      '10.0.0.1 "POST /v2/p/volumes/v-1/action HTTP/1.1" '
                      'status: 400 len: 80', lineno=1),
        ] + [sc.record(0.1 * n, 'cinder-volume', 'ERROR',
                       'cinder.volume.flows.manager.create_volume',
                       'create_volume failed: volume_type lvm No valid '
                       'backend', lineno=1 + n) for n in range(1, 6)]
        self.assertEqual([False], [d for _r, _o, d, _w in
                                   operations.failed_requests(records)])
        operation, _scores, _backing = operations.infer(records)
        self.assertEqual(operations.VOLUME_CREATE, operation)
        # The same errors after an attach call refused: that call decides.
        records[0] = sc.record(
            0.0, 'nova-api', 'INFO', 'nova.osapi_compute.wsgi.server',
            '10.0.0.1 "POST /v2.1/p/servers/s/os-volume_attachments '
            'HTTP/1.1" status: 500 len: 80', lineno=1)
        operation, _scores, _backing = operations.infer(records)
        self.assertEqual(operations.VOLUME_ATTACH, operation)

    def test_a_call_refused_for_a_failed_resource_names_its_operation(self):
        # The workload attaches the volume it asked for; the volume never
        # became available, so both APIs refuse the attach with 400 and
        # say why under the call's request id.
        req_nova, req_cinder = 'req-n', 'req-c'
        records = [
            sc.record(0.0, 'cinder-volume', 'ERROR', 'cinder.volume.api',
                      'Volume status must be available to reserve, but the '
                      'status is error.', request_id=req_cinder, lineno=1),
            sc.record(0.1, 'cinder-api', 'INFO', 'eventlet.wsgi.server',
                      '10.0.0.1 "POST /v2/p/volumes/v-1/action HTTP/1.1" '
                      'status: 400 len: 80', request_id=req_cinder,
                      lineno=2),
            sc.record(0.2, 'nova-api', 'INFO', 'nova.api.openstack.wsgi',
                      'HTTP exception thrown: Invalid input received: '
                      'Invalid volume: Volume status must be available to '
                      'reserve, but the status is error. (HTTP 400)',
                      request_id=req_nova, lineno=3),
            sc.record(0.3, 'nova-api', 'INFO',
                      'nova.osapi_compute.wsgi.server',
                      '10.0.0.1 "POST /v2.1/p/servers/s/os-volume_attachments'
                      ' HTTP/1.1" status: 400 len: 80', request_id=req_nova,
                      lineno=4),
        ]
        got = operations.failed_requests(records)
        self.assertEqual([(operations.VOLUME_CREATE, True, records[0]),
                          (operations.VOLUME_CREATE, True, records[2])],
                         [(o, d, w) for _r, o, d, w in got])
        operation, _scores, backing = operations.infer(records)
        self.assertEqual(operations.VOLUME_CREATE, operation)
        # The reason is cited before the refused call.
        self.assertEqual(records[:2], backing[:2])
        # Without the reasons the attach call decides.
        operation, _scores, _backing = operations.infer(records[1::2])
        self.assertEqual(operations.VOLUME_ATTACH, operation)
        # A server action refused while the server is in vm_state error:
        # the boot failed.
        refused = [
            sc.record(0.0, 'nova-api', 'INFO', 'nova.api.openstack.wsgi',
                      "HTTP exception thrown: Cannot 'reboot' instance s "
                      'while it is in vm_state error', request_id='req-x',
                      lineno=5),
            sc.record(0.1, 'nova-api', 'INFO',
                      'nova.osapi_compute.wsgi.server',
                      '10.0.0.1 "POST /v2.1/p/servers/s/action '
                      'HTTP/1.1" status: 409 len: 80', request_id='req-x',
                      lineno=6)]
        self.assertEqual(operations.BOOT, operations.infer(refused)[0])
        # A volume still being created minutes later: the create failed;
        # a volume already attached elsewhere tells nothing of the kind.
        records[0].message = records[0].message.replace(
            'status is error', 'status is creating')
        self.assertEqual(operations.VOLUME_CREATE,
                         operations.infer(records[:2])[0])
        records[0].message = records[0].message.replace(
            'status is creating', 'status is in-use')
        self.assertEqual([False], [d for _r, _o, d, _w in
                                   operations.failed_requests(records[:2])])

    def test_a_refused_poll_belongs_to_the_volume_operation_in_progress(
            self):
        # The volume was created (its list answered 200) and attached
        # (the attach was accepted); listing the volumes then fails: the
        # user waits for the attach, not the create.
        def access(ts, stream, line, project=sc.PROJECT):
            return sc.record(ts, stream, 'INFO', 'eventlet.wsgi.server',
                             '10.0.0.1 "%s HTTP/1.1" %s' % line,
                             project_id=project, lineno=int(ts))

        created = access(1.0, 'cinder-api',
                         ('POST /v2/p/volumes', 'status: 202'))
        listed = access(10.0, 'cinder-api',
                        ('GET /v2/p/volumes/detail', 'status: 200'))
        attach = access(40.0, 'nova-api',
                        ('POST /v2.1/p/servers/s/os-volume_attachments',
                         'status: 200'))
        refused = access(60.0, 'cinder-api',
                         ('GET /v2/p/volumes/detail', 'status: 400'))
        action = access(61.0, 'cinder-api',
                        ('POST /v2/p/volumes/v/action', 'status: 500'))
        history = [created, listed, attach]
        self.assertEqual([(40.0 + sc.T0, sc.PROJECT)],
                         operations.attaches_accepted(history + [refused]))
        # Cinder's own attachments API starts an attach too.
        v3 = access(40.0, 'cinder-api', ('POST /v3/p/attachments',
                                         'status: 200'))
        self.assertEqual(operations.VOLUME_ATTACH,
                         operations.accepted_call(v3))
        self.assertIsNone(operations.accepted_call(refused))
        got = operations.failed_requests([refused, action], history)
        self.assertEqual([(operations.VOLUME_ATTACH, True)] * 2,
                         [(o, d) for _r, o, d, _w in got])
        self.assertEqual(operations.VOLUME_ATTACH, operations.infer(
            [refused], history=history)[0])
        # Without the history, a refused list is the create's (its route)
        # and a refused action only votes.
        self.assertEqual([(operations.VOLUME_CREATE, True),
                          (operations.VOLUME_ATTACH, False)],
                         [(o, d) for _r, o, d, _w in
                          operations.failed_requests([refused, action])])
        # An attach in flight is logged after its volume actions: a
        # refused action before any accepted attach only votes.
        self.assertEqual([False], [d for _r, _o, d, _w in
                                   operations.failed_requests(
                                       [action], [created, listed])])
        # Before the attach was asked for, the create is in progress.
        early = access(20.0, 'cinder-api',
                       ('GET /v2/p/volumes/detail', 'status: 500'))
        self.assertEqual(operations.VOLUME_CREATE, operations.infer(
            [early], history=history)[0])
        # Another project's attach says nothing about this project's poll.
        theirs = access(40.0, 'nova-api',
                        ('POST /v2.1/q/servers/s/os-volume_attachments',
                         'status: 200'), project=sc.OTHER_PROJECT)
        self.assertEqual(operations.VOLUME_CREATE, operations.infer(
            [refused], history=[created, listed, theirs])[0])
        # A refused attach never started one.
        failed = access(40.0, 'nova-api',
                        ('POST /v2.1/p/servers/s/os-volume_attachments',
                         'status: 500'))
        self.assertEqual(operations.VOLUME_CREATE, operations.infer(
            [refused], history=[created, failed])[0])

    def test_an_accepted_call_whose_work_failed_comes_first(self):
        # The create was accepted (202), then the scheduler failed its
        # flow under the create's request id; two minutes later the
        # user's attach of that volume is refused. The create failed.
        create = sc.record(0.0, 'cinder-api', 'INFO', 'eventlet.wsgi.server',
                           '10.0.0.1 "POST /v2/p/volumes HTTP/1.1" '
                           'status: 202', request_id='req-create',
                           project_id=sc.PROJECT, lineno=1)
        failed = sc.record(0.4, 'cinder-scheduler', 'ERROR',
                           'cinder.scheduler.flows.create_volume',
                           "Failed to run task: AttributeError: 'NoneType' "
                           "object has no attribute 'get'",
                           request_id='req-create', lineno=2)
        attach = sc.record(120.0, 'nova-api', 'INFO',
                           'nova.osapi_compute.wsgi.server',
                           '10.0.0.1 "POST /v2.1/p/servers/s/'
                           'os-volume_attachments HTTP/1.1" status: 500',
                           request_id='req-attach', lineno=3)
        self.assertEqual([(failed, operations.VOLUME_CREATE, create)],
                         operations.async_failures([failed, attach],
                                                   history=[create]))
        operation, _scores, backing = operations.infer(
            [failed, attach], history=[create])
        self.assertEqual(operations.VOLUME_CREATE, operation)
        self.assertEqual([failed, create], backing[:2])
        # Without the error under the create's request, the refused
        # attach decides; an error of another request is not the create's.
        other = sc.record(0.4, 'cinder-scheduler', 'ERROR',
                          'cinder.scheduler.manager', 'Failed',
                          request_id='req-other', lineno=2)
        for records in ([attach], [other, attach]):
            self.assertEqual(operations.VOLUME_ATTACH, operations.infer(
                records, history=[create])[0])
        # A refused call before the accepted call's error still decides.
        early = sc.record(-5.0, 'nova-api', 'INFO',
                          'nova.osapi_compute.wsgi.server',
                          '10.0.0.1 "POST /v2.1/p/servers HTTP/1.1" '
                          'status: 500', request_id='req-boot', lineno=0)
        self.assertEqual(operations.BOOT, operations.infer(
            [early, failed, attach], history=[create])[0])

    def test_routes(self):
        self.assertEqual(operations.VOLUME_ATTACH, operations.route(
            'POST', '/v2.1/p/servers/s/os-volume_attachments'))
        self.assertEqual(operations.BOOT,
                         operations.route('POST', '/v2.1/p/servers'))
        self.assertIsNone(operations.route('GET', '/v2.0/networks'))
        # An attach refused for the server's state: it never booted.
        attach = '/v2.1/p/servers/s/os-volume_attachments'
        self.assertEqual(operations.BOOT,
                         operations.route('POST', attach, 409))
        self.assertEqual(operations.VOLUME_ATTACH,
                         operations.route('POST', attach, 500))
        # The guest booted and its metadata request failed.
        self.assertEqual(operations.CONNECTIVITY, operations.route(
            'GET', '/2009-04-04/meta-data/instance-id', 404))
        self.assertIsNone(operations.route('GET', '/2009-04-04/user-data',
                                           404))
        # Nova creates the ports of the instance it boots.
        for path in ('/v2.0/ports', '/v2.0/ports.json',
                     '/v2.0/ports/p-1/bindings'):
            self.assertEqual(operations.BOOT,
                             operations.route('POST', path, 500))
        self.assertEqual(operations.NETWORK,
                         operations.route('POST', '/v2.0/networks', 500))
        self.assertFalse(operations.agents_only([]))
