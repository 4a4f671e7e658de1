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


"""Helpers of the API tests: configuration, sample anomalies, a server."""

import os
import pathlib
import subprocess
import sys

import jsonschema
import yaml

from logrca import conf as logrca_conf
from logrca.detectors import anomaly as anomaly_mod
from logrca.tests import keystone_fixture

REQ = 'req-%08x-0000-4000-8000-%012x'


def make_conf(connection, auth_enabled=False, overrides=None):
    """A ConfigOpts for the API on ``connection``, no config files read."""
    conf = logrca_conf.new_conf()
    conf([], project='logrca', default_config_files=[])
    conf.set_override('connection', connection, group='database')
    conf.set_override('auth_enabled', auth_enabled, group='api')
    # No conductor runs behind these tests: answer from the database only
    # (the conductor path is tested in functional/conductor).
    conf.set_override('explain_via_conductor', False, group='api')
    for (group, name), value in (overrides or {}).items():
        conf.set_override(name, value, group=group)
    return conf


def make_anomaly(n, project_id, evidence_projects=(), score=1.0,
                 service='nova-compute', host='cmp1', detector='baseline',
                 raised_at=1767225600.0, levels=None):
    """An anomaly with one evidence line per item of evidence_projects."""
    evidence = []
    for i, line_project in enumerate(evidence_projects):
        evidence.append(anomaly_mod.Evidence(
            timestamp=raised_at - 10 + i, stream=service,
            level=(levels[i] if levels else
                   ('ERROR' if i == len(evidence_projects) - 1
                    else 'INFO')),
            logger='nova.compute.manager',
            message='line %d of anomaly %d (project %s)'
                    % (i, n, line_project),
            request_id=REQ % (n, i), project_id=line_project,
            lineno=100 * n + i))
    return anomaly_mod.Anomaly(
        detector=detector, score=score, reason='anomaly %d' % n,
        session_key=('request', REQ % (n, 0)), start_time=raised_at - 10,
        end_time=raised_at, raised_at=raised_at, service=service, host=host,
        project_id=project_id, evidence=evidence)


class APIServer:
    """``logrca.wsgi.api:application`` served by werkzeug in a subprocess.

    The subprocess reads its configuration from ``LOGRCA_CONFIG_FILE``, as a
    uwsgi or gunicorn deployment does.
    """

    def __init__(self, config_text, workdir):
        self.workdir = workdir
        self.port = keystone_fixture.free_port()
        self.url = 'http://127.0.0.1:%d' % self.port
        self.config_file = os.path.join(workdir, 'logrca.conf')
        with open(self.config_file, 'w') as f:
            f.write(config_text)
        self._process = None

    def start(self):
        env = {k: v for k, v in os.environ.items()
               if not k.startswith('OS_')}
        env['LOGRCA_CONFIG_FILE'] = self.config_file
        log_file = os.path.join(self.workdir, 'api.out')
        self._out = open(log_file, 'w')
        self._process = subprocess.Popen(
            [sys.executable, '-c',
             'import sys; sys.argv = sys.argv[:1]\n'
             'from werkzeug import serving\n'
             'from logrca.wsgi import api\n'
             'serving.make_server("127.0.0.1", %d, api.application,'
             ' threaded=True).serve_forever()' % self.port],
            env=env, stdout=self._out, stderr=subprocess.STDOUT)
        keystone_fixture.wait_for_http(self.url + '/healthcheck',
                                       self._process, log_file=log_file)
        return self

    def stop(self):
        if self._process is not None:
            self._process.terminate()
            try:
                self._process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
            self._process = None
            self._out.close()


OPENAPI_PATH = (pathlib.Path(__file__).resolve().parents[4]
                / 'doc' / 'api' / 'openapi.yaml')


class OpenAPIDocument:
    """The committed OpenAPI document, to check responses against.

    OpenAPI 3.1 schemas are JSON Schema 2020-12, so jsonschema validates
    them; ``$ref``s resolve against the whole document.
    """

    def __init__(self, path=OPENAPI_PATH):
        with open(path) as f:
            self.document = yaml.safe_load(f)

    def _resolve(self, item):
        while isinstance(item, dict) and '$ref' in item:
            node = self.document
            for part in item['$ref'].lstrip('#/').split('/'):
                node = node[part]
            item = node
        return item

    def check(self, method, template, response):
        """Assert that ``response`` is one the document allows.

        :param template: the path as written in the document, e.g.
            ``/v1/anomalies/{anomaly_id}``.
        """
        operation = self.document['paths'][template][method.lower()]
        status = str(response.status_code)
        assert status in operation['responses'], (
            '%s %s: status %s is not documented' % (method, template,
                                                    status))
        spec = self._resolve(operation['responses'][status])
        media = response.headers.get('Content-Type', '').split(';')[0]
        assert media in spec['content'], (
            '%s %s %s: content type %s is not documented'
            % (method, template, status, media))
        schema = dict(spec['content'][media]['schema'])
        schema['components'] = self.document['components']
        body = (response.get_json() if media == 'application/json'
                else response.get_data(as_text=True))
        jsonschema.validate(body, schema,
                            cls=jsonschema.Draft202012Validator,
                            format_checker=jsonschema.FormatChecker())
        for name, header in spec.get('headers', {}).items():
            header = self._resolve(header)
            assert name in response.headers, name
            jsonschema.validate(response.headers[name], header['schema'])
        return body
