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

"""Shared helpers of the database tests: anomalies and a migrated DB."""

import contextlib

from logrca import conf as logrca_conf
from logrca.db import api as db_api
from logrca.db import migration
from logrca.detectors import anomaly as anomaly_mod
from logrca.tests import services

BASE_TIME = 1700000000.0


def make_conf(url):
    """A ConfigOpts whose [database] connection is ``url``."""
    conf = logrca_conf.new_conf()
    conf([], default_config_files=[])
    conf.set_override('connection', url, group='database')
    # Unreachable servers are detected before; do not wait 100 s on them.
    conf.set_override('max_retries', 1, group='database')
    return conf


@contextlib.contextmanager
def migrated_database(backend):
    """Yield a Connection to a new database at the head revision."""
    with services.temp_database(backend) as url:
        conf = make_conf(url)
        migration.upgrade(conf)
        dbapi = db_api.get_instance(conf)
        try:
            yield dbapi
        finally:
            dbapi.dispose()


def make_anomaly(n=0, lines=3, **kwargs):
    """An anomaly with ``lines`` evidence lines; ``n`` makes it distinct."""
    t0 = kwargs.pop('t0', BASE_TIME + n)
    request_id = kwargs.pop('request_id', 'req-%08d-0000-4000-8000-'
                            '000000000000' % n)
    instance_id = kwargs.pop('instance_id', None)
    evidence = [anomaly_mod.Evidence(
        timestamp=t0 + i * 0.000123, stream='nova-compute', level='ERROR',
        logger='nova.compute.manager',
        message='anomaly %d line %d of %s' % (n, i, kwargs.get('service')),
        request_id=request_id,
        project_id=kwargs.get('project_id'), instance_id=instance_id,
        template_id=i, lineno=100 + i) for i in range(lines)]
    values = dict(
        detector='baseline', score=1.0 + n, threshold=0.5,
        reason='error burst %d' % n, session_key=('request', request_id),
        start_time=t0, end_time=t0 + 1, raised_at=t0 + 1,
        service='nova-compute', host='compute-1', project_id=None,
        user_id=None, request_ids=[request_id],
        instance_ids=[instance_id] if instance_id else [],
        evidence=evidence)
    values.update(kwargs)
    return anomaly_mod.Anomaly(**values)
