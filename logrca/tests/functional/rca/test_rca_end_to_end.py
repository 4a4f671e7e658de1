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

"""End-to-end RCA: evaluation on a small folder, explain via the database.
"""

import contextlib
import io
import json
import os
import tempfile
import unittest

from logrca.cmd import manage as manage_cmd
from logrca.conductor import explainer as explainer_mod
from logrca.conductor import manager as conductor_manager
from logrca.db import api as db_api
from logrca.db import migration
from logrca.evaluation import rca as rca_eval
from logrca.rca import service
from logrca.tests.unit.evaluation import fixtures
from logrca.tests.unit.rca import scenario as sc

SITE = '/usr/lib/python2.7/site-packages'


def _failure_run(base, req):
    tb = [
        'Traceback (most recent call last):',
        '  File "%s/nova/compute/manager.py", line 1852, in '
        '_do_build_and_run_instance' % SITE,
        '  File "%s/nova/compute/manager.py", line 2128, in '
        '_build_and_run_instance' % SITE,
        '  File "%s/oslo_utils/excutils.py", line 220, in __exit__' % SITE,
        "TypeError: 'NoneType' object is not iterable"]
    head = fixtures.line(base + ':03.000', 'ERROR',
                         'Instance failed to spawn', req=req)
    prefix = head.split(' Instance failed')[0]
    compute = [
        fixtures.line(base + ':00.000', 'INFO', 'Starting instance',
                      req=req),
        head] + ['%s %s' % (prefix, t) for t in tb]
    return {1: {'nova/nova-compute.log.bzip2.out': compute},
            2: {'nova/nova-compute.log.bzip2.out': compute[:1]}}


class TestEvaluateRCA(unittest.TestCase):

    def test_train_test_document(self):
        with tempfile.TemporaryDirectory() as tmp:
            train = fixtures.write_folder(os.path.join(tmp, 'train'), [
                {'campaign': 'Nova', 'id': 1, 'r1': 'FAILURE',
                 'r2': 'NO_FAILURE', 'logs': _failure_run('03:20', 1)}])
            test = fixtures.write_folder(os.path.join(tmp, 'test'), [
                {'campaign': 'Nova', 'id': 2, 'r1': 'FAILURE',
                 'r2': 'NO_FAILURE', 'logs': _failure_run('04:20', 2)},
                {'campaign': 'Nova', 'id': 3, 'r1': 'FAILURE',
                 'r2': 'NO_FAILURE', 'logs': {1: {
                     'nova/nova-compute.log.bzip2.out': [fixtures.line(
                         '05:00:00.000', 'INFO', 'quiet',
                         logger='nova.virt.driver')]}}}])
            conf = sc.make_conf()
            doc = rca_eval.evaluate(
                conf, 'grounded', test_path=test, train_path=train,
                detector='baseline', cache_dir=os.path.join(tmp, 'cache'),
                progress=False, resamples=20,
                detector_models=os.path.join(tmp, 'models'))
            # An untrained driver leaves no model to keep.
            self.assertFalse(os.path.exists(os.path.join(tmp, 'models')))
            self.assertEqual(2, manage_cmd.main([
                'evaluate', 'rca', '--detector-model', tmp,
                '--detector-models', tmp, '--cv', test, '--output',
                os.path.join(tmp, 'x.json')]))
        for key in rca_eval.FIGURES + ('reading_effort', 'latency_s',
                                       'seen_location', 'unseen_location',
                                       'baselines', 'runs', 'per_run',
                                       'per_campaign', 'kb_retrieval'):
            self.assertIn(key, doc)
        self.assertEqual(2, doc['runs'])
        self.assertEqual(1, doc['detected'])
        # The detected run is right, the silent one wrong on every figure.
        self.assertEqual(0.5, doc['module_top1'])
        self.assertEqual(0.5, doc['evidence_hit_rate'])
        # Only the run with a traceback names the faulty module at all.
        self.assertEqual({'named_in_run': 0.5, 'module_in_suspects': 0.5},
                         doc['ceiling'])
        self.assertEqual(0.5, doc['per_campaign']['Nova']['module_top3'])
        self.assertEqual(0.5, doc['baselines']['deepest_frame']
                         ['module_top1'])
        self.assertEqual(2, doc['kb_retrieval']['runs'])
        self.assertTrue(doc['seen_location']['runs'])
        self.assertIn('ci95', doc)
        runs = list(doc['per_run'].values())
        self.assertTrue(all('Test_' in r['test'] for r in runs))
        # No dataset path or test name reached the explanations.
        detected = [r for r in runs if r['detected']][0]
        self.assertEqual('nova/compute/manager.py',
                         detected['suspects'][0][0])
        json.dumps(doc, default=str)


    def test_the_run_is_answered_by_its_first_anomaly(self):
        # A later consequence explained with more confidence does not
        # replace the first symptom's explanation.
        first = type('Exp', (), {'confidence': 0.2})()
        later = type('Exp', (), {'confidence': 0.9})()
        self.assertIs(first, rca_eval.choose([first, later]))
        self.assertIsNone(rca_eval.choose([]))


class TestExplainStored(unittest.TestCase):

    def setUp(self):
        tmp = tempfile.TemporaryDirectory()
        self.addCleanup(tmp.cleanup)
        self.url = 'sqlite:///%s' % os.path.join(tmp.name, 'db.sqlite')
        self.config = os.path.join(tmp.name, 'logrca.conf')
        with open(self.config, 'w') as f:
            f.write('[DEFAULT]\nstate_path = %s\n[database]\n'
                    'connection = %s\n' % (tmp.name, self.url))
        self.conf = sc.make_conf()
        self.conf.set_override('connection', self.url, group='database')
        self.conf.set_override('kb_path', os.path.join(tmp.name, 'kb'),
                               group='rca')
        migration.upgrade(self.conf)
        self.dbapi = db_api.get_instance(self.conf)
        self.addCleanup(self.dbapi.dispose)
        recs = sc.boot_failure()
        self.anomaly = sc.anomaly_for(recs)
        evidence_cls = type(self.anomaly.evidence[0])
        self.anomaly.evidence += [evidence_cls.from_record(r) for r in recs
                                  if r.lineno in (30, 40)]
        conductor_manager.ConductorManager(
            self.conf, self.dbapi).store_anomalies(
                {}, [self.anomaly.to_dict()])

    def test_explain_command_computes_and_stores(self):
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            rc = manage_cmd.main(['--config-file', self.config, 'explain',
                                  self.anomaly.uuid])
        self.assertEqual(0, rc)
        text = out.getvalue()
        self.assertIn('nova/virt/libvirt/driver.py', text)
        self.assertIn('Failed operation: instance boot', text)
        stored = self.dbapi.explanation_get(self.anomaly.uuid)
        self.assertEqual('grounded', stored['driver'])
        self.assertEqual('nova/virt/libvirt/driver.py',
                         stored['body']['suspects'][0]['module'])
        with contextlib.redirect_stderr(io.StringIO()):
            self.assertEqual(1, manage_cmd.main([
                '--config-file', self.config, 'explain', 'no-such-id']))

    def test_anomalies_around_it_join_the_context(self):
        # Two minutes later the guest cannot get its keys from the
        # metadata service (an anomaly of its own): what the user saw fail
        # is reaching the instance. Another project's refused key pair at
        # the same time is not this incident's.
        def later(lineno, message, project):
            rec = sc.record(150.0, 'nova-api', 'INFO',
                            'nova.metadata.wsgi.server', message,
                            request_id='req-%d' % lineno,
                            project_id=project, lineno=lineno)
            return type(self.anomaly)(
                detector='deeplog', score=9.0, reason='API request refused',
                session_key=('request', rec.request_id),
                start_time=rec.timestamp, end_time=rec.timestamp,
                raised_at=rec.timestamp, service='nova-api',
                project_id=project, request_ids=[rec.request_id],
                evidence=[type(self.anomaly.evidence[0]).from_record(rec)])
        metadata = later(
            91, '10.0.0.5,10.0.20.46 "GET /2009-04-04/meta-data/public-keys/'
            ' HTTP/1.1" status: 500 len: 195', sc.PROJECT)
        keypair = later(
            92, '10.0.20.46 "POST /v2.1/os-keypairs HTTP/1.1" status: 400 '
            'len: 80', sc.OTHER_PROJECT)
        keypair.start_time = keypair.end_time = keypair.raised_at = \
            metadata.raised_at - 1.0
        before = service.get_explanation(self.conf, self.anomaly.uuid,
                                         dbapi=self.dbapi)
        self.assertEqual('instance boot', before['operation'])
        conductor_manager.ConductorManager(
            self.conf, self.dbapi).store_anomalies(
                {}, [metadata.to_dict(), keypair.to_dict()])
        records = service.incident_records(self.conf, self.dbapi,
                                           self.anomaly)
        self.assertIn(91, [r.lineno for r in records])
        self.assertNotIn(92, [r.lineno for r in records])
        after = service.get_explanation(self.conf, self.anomaly.uuid,
                                        dbapi=self.dbapi, refresh=True)
        self.assertEqual('instance connectivity', after['operation'])
        self.assertIn(91, [e['lineno'] for e in after['evidence']])
        # Beyond the outcome horizon it is another incident.
        self.conf.set_override('outcome_horizon', 10.0, group='rca')
        again = service.get_explanation(self.conf, self.anomaly.uuid,
                                        dbapi=self.dbapi, refresh=True)
        self.assertEqual('instance boot', again['operation'])

    def test_an_accepted_create_that_failed_decides_over_a_later_attach(
            self):
        # Far from the boot failure: the user's volume create was
        # accepted, then Cinder's scheduler failed its flow under the
        # create's request id (one anomaly); two minutes later the attach
        # of that volume is refused (another anomaly). Explaining the
        # refused attach, stored evidence of both says the create failed.
        evidence_cls = type(self.anomaly.evidence[0])

        def anomaly(ts, stream, level, logger, message, rid, lineno):
            rec = sc.record(ts, stream, level, logger, message,
                            request_id=rid, project_id=sc.PROJECT,
                            lineno=lineno)
            return rec, type(self.anomaly)(
                detector='deeplog', score=9.0, reason='unusual',
                session_key=('request', rid), start_time=rec.timestamp,
                end_time=rec.timestamp, raised_at=rec.timestamp,
                service=stream, project_id=sc.PROJECT, request_ids=[rid],
                evidence=[evidence_cls.from_record(rec)])

        call, create = anomaly(
            5000.0, 'cinder-api', 'INFO', 'eventlet.wsgi.server',
            '10.0.20.46 "POST /v2/p/volumes HTTP/1.1" status: 202 len: 80',
            'req-create', 201)
        error, _unused = anomaly(
            5000.4, 'cinder-scheduler', 'ERROR',
            'cinder.scheduler.flows.create_volume',
            "Failed to run task: AttributeError: 'NoneType' object has no "
            "attribute 'get'", 'req-create', 202)
        create.evidence.append(evidence_cls.from_record(error))
        _unused, attach = anomaly(
            5120.0, 'nova-api', 'INFO', 'nova.osapi_compute.wsgi.server',
            '10.0.20.46 "POST /v2.1/p/servers/s/os-volume_attachments '
            'HTTP/1.1" status: 500 len: 80', 'req-attach', 203)
        manager = conductor_manager.ConductorManager(self.conf, self.dbapi)
        manager.store_anomalies({}, [attach.to_dict()])
        alone = service.get_explanation(self.conf, attach.uuid,
                                        dbapi=self.dbapi)
        self.assertEqual('volume attach', alone['operation'])
        manager.store_anomalies({}, [create.to_dict()])
        joined = service.get_explanation(self.conf, attach.uuid,
                                         dbapi=self.dbapi, refresh=True)
        self.assertEqual('volume create', joined['operation'])
        cited = {e['lineno'] for e in joined['evidence']}
        self.assertTrue({201, 202} <= cited)
        self.assertNotEqual('volume create', service.get_explanation(
            self.conf, self.anomaly.uuid, dbapi=self.dbapi)['operation'])

    def test_the_conductor_explains_the_incident_again(self):
        explainer = explainer_mod.Explainer(self.conf, self.dbapi)
        explainer.start()
        self.addCleanup(explainer.stop)
        explainer.submit([self.anomaly.uuid])
        explainer.join()
        first = self.dbapi.explanation_get(self.anomaly.uuid)['body']
        self.assertEqual('instance boot', first['operation'])
        rec = sc.record(150.0, 'nova-api', 'INFO',
                        'nova.metadata.wsgi.server',
                        '10.0.0.5,10.0.20.46 "GET /2009-04-04/meta-data/'
                        'public-keys/ HTTP/1.1" status: 500 len: 195',
                        request_id='req-91', project_id=sc.PROJECT,
                        lineno=91)
        later = type(self.anomaly)(
            detector='deeplog', score=9.0, reason='API request refused',
            session_key=('request', 'req-91'), start_time=rec.timestamp,
            end_time=rec.timestamp, raised_at=rec.timestamp,
            service='nova-api', project_id=sc.PROJECT,
            request_ids=['req-91'],
            evidence=[type(self.anomaly.evidence[0]).from_record(rec)])
        conductor_manager.ConductorManager(
            self.conf, self.dbapi, explainer=explainer).store_anomalies(
                {}, [later.to_dict()])
        explainer.join()
        first = self.dbapi.explanation_get(self.anomaly.uuid)['body']
        self.assertEqual('instance connectivity', first['operation'])
        self.assertIsNotNone(self.dbapi.explanation_get(later.uuid))
        # The later anomaly is the first of no earlier incident.
        self.assertIsNone(explainer.refresh_incident(self.anomaly.uuid))

    def test_project_reader_never_sees_other_projects_lines(self):
        admin = service.get_explanation(self.conf, self.anomaly.uuid,
                                        dbapi=self.dbapi)
        self.assertIn('secret-other-project-line', json.dumps(admin))
        reader = service.get_explanation(self.conf, self.anomaly.uuid,
                                         dbapi=self.dbapi,
                                         project_id=sc.PROJECT)
        self.assertNotIn('secret-other-project-line', json.dumps(reader))
        self.assertGreaterEqual(reader['redacted_lines'], 1)
        for claim in reader['suspects'] + reader['chain']:
            self.assertTrue(claim['citations'])


class TestKbBuild(unittest.TestCase):

    def test_kb_build_command(self):
        from logrca.rca import kb as kb_mod
        with tempfile.TemporaryDirectory() as tmp:
            docs = os.path.join(tmp, 'docs', 'nova')
            os.makedirs(docs)
            with open(os.path.join(docs, 'ts.rst'), 'w') as f:
                f.write('Instance errors\n===============\n\nWhen an '
                        'instance fails to spawn, read the nova-compute '
                        'log and the instance fault record first.\n')
            queries = os.path.join(tmp, 'q.jsonl')
            with open(queries, 'w') as f:
                f.write(json.dumps({'launchpad_bug': 7, 'query':
                                    'message:"Instance failed to spawn"'})
                        + '\n')
            train = fixtures.write_folder(os.path.join(tmp, 'train'), [
                {'campaign': 'Nova', 'id': 1, 'r1': 'FAILURE',
                 'r2': 'NO_FAILURE', 'logs': _failure_run('03:20', 1)}])
            out = os.path.join(tmp, 'kb')
            config = os.path.join(tmp, 'logrca.conf')
            with open(config, 'w') as f:
                f.write('[DEFAULT]\nstate_path = %s\n' % tmp)
            stdout = io.StringIO()
            env = dict(os.environ, LOGRCA_EVAL_CACHE=os.path.join(
                tmp, 'cache'))
            old = os.environ.copy()
            os.environ.update(env)
            try:
                with contextlib.redirect_stdout(stdout):
                    rc = manage_cmd.main([
                        '--config-file', config, 'kb', 'build', '--docs',
                        os.path.join(tmp, 'docs'), '--queries', queries,
                        '--train', train, '--no-feedback', '--output',
                        out])
            finally:
                os.environ.clear()
                os.environ.update(old)
            self.assertEqual(0, rc)
            self.assertIn('doc 1, failure 1, signature 1', stdout.getvalue())
            kb = kb_mod.KnowledgeBase.load(out)
            failure = [e for e in kb.entries if e.kind == 'failure'][0]
            self.assertEqual('nova/compute/manager.py', failure.module)
            # Past failures name no dataset path or test.
            self.assertNotIn('Test_', json.dumps(failure.to_dict()))
            hit = kb.search('Instance failed to spawn TypeError', k=1,
                            kinds=('failure',))
            self.assertEqual(failure.id, hit[0][0].id)
