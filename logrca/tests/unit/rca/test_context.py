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

"""Tests of context enrichment and the project filter."""

import unittest

from logrca.parsing import records as records_mod
from logrca.rca import context
from logrca.tests.unit.rca import scenario as sc


class TestBufferSource(unittest.TestCase):

    def test_window_is_bounded_and_ordered(self):
        recs = sc.boot_failure()
        source = context.BufferSource(recs, maxlen=4)
        self.assertEqual(4, len(source))
        got = source.window(sc.T0 + 2.0, sc.T0 + 2.6)
        self.assertEqual([22, 30, 40], [r.lineno for r in got])


class TestGather(unittest.TestCase):

    def setUp(self):
        self.recs = sc.boot_failure()
        self.source = context.BufferSource(self.recs)
        self.anomaly = sc.anomaly_for(self.recs)

    def test_related_first_error_traceback(self):
        ctx = context.gather(self.anomaly, self.source)
        self.assertEqual('Instance failed to spawn',
                         ctx.first_error.message.split('] ')[1])
        self.assertIs(ctx.traceback, ctx.first_error)
        self.assertIn(sc.REQ_COMPUTE, ctx.request_ids)
        self.assertIn(sc.INSTANCE, ctx.instance_ids)
        ranked = ctx.ranked()
        # The anomaly's own evidence line ranks first.
        self.assertIs(ranked[0][0], ctx.first_error)
        # The other project's line is ranked below every related line.
        scores = {r.lineno: s for r, s in ranked}
        self.assertLess(scores[30], scores[21])

    def test_bounded(self):
        many = [sc.record(i * 0.01, 'nova-api', 'INFO', 'nova.api', 'x%d' % i,
                          lineno=100 + i) for i in range(500)]
        source = context.BufferSource(sorted(
            many + self.recs, key=lambda r: r.timestamp))
        ctx = context.gather(self.anomaly, source, max_records=25)
        self.assertEqual(25, len(ctx.records))
        self.assertIn(ctx.first_error, ctx.records)
        self.assertEqual(sorted(r.timestamp for r in ctx.records),
                         [r.timestamp for r in ctx.records])

    def test_the_window_opens_at_an_earlier_error(self):
        # The anomaly was raised on a consequence two minutes after the
        # error where the failure started.
        onset = sc.record(-120.0, 'nova-conductor', 'ERROR',
                          'nova.conductor.manager',
                          'Failed to schedule instances: Exception',
                          lineno=5)
        older = sc.record(-400.0, 'nova-conductor', 'ERROR',
                          'nova.conductor.manager', 'an old error',
                          lineno=4)
        source = context.BufferSource([older, onset] + self.recs)
        ctx = context.gather(self.anomaly, source)
        self.assertIn(onset, ctx.window)
        self.assertIn(onset, ctx.records)
        self.assertNotIn(older, ctx.window)
        ctx = context.gather(self.anomaly, source, lookback=0)
        self.assertNotIn(onset, ctx.window)
        # Without an earlier error the window is as before.
        plain = context.gather(self.anomaly, self.source)
        self.assertEqual(self.recs[0], plain.window[0])

    def test_the_window_opens_at_a_warning_with_a_traceback(self):
        # An exception the service survived, logged at WARNING with its
        # traceback of project code, is where the failure shows first.
        tb = ['Traceback (most recent call last):',
              '  File "%s/nova/db/sqlalchemy/api.py", line 2790, in '
              '_instance_update' % sc.SITE,
              'TypeError: _instance_metadata_update_in_place() takes '
              'exactly 5 arguments (4 given)']
        warned = sc.record(-100.0, 'nova-compute', 'WARNING',
                           'nova.compute.manager',
                           'Failed to revert task state for instance.',
                           extra=tb, lineno=5)
        plain = sc.record(-90.0, 'nova-compute', 'WARNING',
                          'nova.compute.manager', 'Slow heartbeat',
                          lineno=6)
        library = sc.record(-80.0, 'nova-compute', 'WARNING',
                            'oslo_messaging.server', 'Retrying',
                            extra=['Traceback (most recent call last):',
                                   '  File "%s/eventlet/hubs/hub.py", '
                                   'line 1, in switch' % sc.SITE],
                            lineno=7)
        ctx = context.gather(self.anomaly, context.BufferSource(
            [warned, plain, library] + self.recs))
        self.assertIn(warned, ctx.window)
        for quiet in ([plain], [library], [plain, library]):
            ctx = context.gather(self.anomaly, context.BufferSource(
                quiet + self.recs))
            self.assertEqual(self.recs[0], ctx.window[0])

    def test_outcome_holds_the_calls_refused_after_the_window(self):
        def access(ts, path, status, project=sc.PROJECT, lineno=0):
            return sc.record(ts, 'nova-api', 'INFO', 'nova.api.openstack',
                             '10.0.20.46 "POST %s HTTP/1.1" status: %d '
                             'len: 368' % (path, status),
                             project_id=project, lineno=lineno)
        attach = '/v2.1/servers/%s/os-volume_attachments' % sc.INSTANCE
        refused = access(120.0, attach, 400, lineno=90)
        ok = access(100.0, attach, 200, lineno=91)
        other = access(110.0, '/v2.1/os-keypairs', 500,
                       project=sc.OTHER_PROJECT, lineno=92)
        late = access(900.0, attach, 500, lineno=93)
        source = context.BufferSource(self.recs + [ok, other, refused, late])
        ctx = context.gather(self.anomaly, source)
        # Refused, after the window, within the horizon, this project's.
        self.assertEqual([refused], ctx.outcome)
        self.assertNotIn(refused, ctx.window)
        self.assertEqual([], context.gather(self.anomaly, source,
                                            horizon=0).outcome)
        self.assertEqual([refused, late], context.gather(
            self.anomaly, source, horizon=1000).outcome)

    def test_outcome_keeps_the_reasons_of_the_refused_requests(self):
        def line(ts, level, message, request_id, lineno):
            return sc.record(ts, 'cinder-api', level, 'cinder.volume.api',
                             message, request_id=request_id,
                             project_id=sc.PROJECT, lineno=lineno)
        reason = line(119.0, 'ERROR', 'Volume status must be available to '
                      'reserve, but the status is error.', 'req-a', 80)
        debug = line(119.5, 'DEBUG', 'Acquired lock', 'req-a', 81)
        refused = line(120.0, 'INFO', '10.0.0.1 "POST /v2/p/volumes/v/action'
                       ' HTTP/1.1" status: 400 len: 80', 'req-a', 82)
        other = line(121.0, 'INFO', 'Volume info retrieved successfully.',
                     'req-b', 83)
        source = context.BufferSource(
            self.recs + [reason, debug, refused, other])
        ctx = context.gather(self.anomaly, source)
        self.assertEqual([reason, refused], ctx.outcome)

    def test_missing_step_from_model_of_normal(self):
        class Normal:
            def next_template(self, records):
                return 'Took <*> seconds to spawn the instance'
        ctx = context.gather(self.anomaly, self.source,
                             normal_model=Normal())
        self.assertEqual('Took <*> seconds to spawn the instance',
                         ctx.missing_step)

    def test_notifications_are_related(self):
        note = sc.record(2.1, 'notifications', 'INFO', None,
                         'compute.instance.create.error', sc.REQ_COMPUTE,
                         sc.PROJECT, sc.INSTANCE, lineno=1)
        note.kind = records_mod.NOTIFICATION
        source = context.BufferSource(sorted(
            self.recs + [note], key=lambda r: r.timestamp))
        ctx = context.gather(self.anomaly, source)
        self.assertEqual([note], ctx.notifications)


class TestProjectFilter(unittest.TestCase):

    def test_other_projects_lines_are_never_shown(self):
        recs = sc.boot_failure()
        shown = context.filter_for_project(recs, sc.PROJECT)
        self.assertTrue(shown)
        for r in shown:
            self.assertIn(r.project_id, (None, sc.PROJECT))
            self.assertNotIn('secret-other-project-line', r.message)
        # An admin (no project) sees everything.
        self.assertEqual(len(recs), len(context.filter_for_project(
            recs, None)))

    def test_instance_of_another_project_is_hidden(self):
        owner = sc.record(0, 'nova-compute', 'INFO', 'nova.compute.manager',
                          'x', project_id=sc.OTHER_PROJECT,
                          instance_id=sc.OTHER_INSTANCE)
        orphan = sc.record(1, 'nova-compute', 'INFO', 'nova.compute.manager',
                           'periodic task', instance_id=sc.OTHER_INSTANCE)
        self.assertEqual([], context.filter_for_project([owner, orphan],
                                                         sc.PROJECT))
