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

"""A small, realistic failure scenario shared by the RCA unit tests."""

from oslo_config import cfg

from logrca import conf as logrca_conf
from logrca.detectors import anomaly as anomaly_mod
from logrca.parsing import records as records_mod

T0 = 1530000000.0
PROJECT = '26773a1c7926427a8bb239916edf9c6d'
OTHER_PROJECT = '99999999999999999999999999999999'
INSTANCE = '8b2c1f0e-6a55-4b1e-9d43-3f2f1d6c7a10'
OTHER_INSTANCE = '11111111-2222-3333-4444-555555555555'
REQ_API = 'req-5dabbeb2-c39a-4305-ae03-df6c76f546a8'
REQ_COMPUTE = 'req-7e539fc3-dce5-40ce-a2c8-2fcd2a2cb553'
SITE = '/usr/lib/python2.7/site-packages'

TRACEBACK = [
    'Traceback (most recent call last):',
    '  File "%s/nova/compute/manager.py", line 1852, in '
    '_do_build_and_run_instance' % SITE,
    '    filter_properties, request_spec)',
    '  File "%s/nova/compute/manager.py", line 2128, in '
    '_build_and_run_instance' % SITE,
    '    block_device_info=block_device_info)',
    '  File "%s/nova/virt/libvirt/driver.py", line 3023, in spawn' % SITE,
    '    block_device_info=block_device_info)',
    '  File "%s/nova/virt/libvirt/driver.py", line 3936, in '
    '_get_ephemeral_devices' % SITE,
    '    for eph in driver.block_device_info_get_ephemerals(bdi):',
    '  File "%s/oslo_utils/excutils.py", line 220, in __exit__' % SITE,
    "TypeError: 'NoneType' object is not iterable",
]


def make_conf(**rca):
    conf = cfg.ConfigOpts()
    logrca_conf.register_opts(conf)
    conf([], project='logrca')
    for key, value in rca.items():
        conf.set_override(key, value, group='rca')
    return conf


def record(ts, stream, level, logger, message, request_id=None,
           project_id=None, instance_id=None, extra=None, lineno=0,
           location=None):
    return records_mod.LogRecord(
        stream=stream, timestamp=T0 + ts, level=level, logger=logger,
        message=message, request_id=request_id, project_id=project_id,
        instance_id=instance_id, extra=list(extra or []), lineno=lineno,
        location=location, host='compute-1')


def boot_failure(injection=None):
    """Records of a failed instance boot across nova-api and nova-compute.

    :param injection: text added to one log line (prompt injection test).
    """
    recs = [
        record(0.0, 'nova-api', 'INFO', 'nova.osapi_compute.wsgi.server',
               '10.0.20.46 "GET /v2.1/servers HTTP/1.1" status: 200',
               REQ_API, PROJECT, lineno=10),
        record(1.0, 'nova-compute', 'DEBUG', 'nova.compute.manager',
               'Starting instance...', REQ_COMPUTE, PROJECT, INSTANCE,
               lineno=20, location='_do_build_and_run_instance '
               '%s/nova/compute/manager.py:1790' % SITE),
        record(1.5, 'nova-compute', 'DEBUG', 'nova.virt.libvirt.driver',
               'Creating image', REQ_COMPUTE, PROJECT, INSTANCE, lineno=21,
               location='_create_image %s/nova/virt/libvirt/driver.py:3100'
               % SITE),
        record(2.0, 'nova-compute', 'ERROR', 'nova.compute.manager',
               '[instance: %s] Instance failed to spawn' % INSTANCE,
               REQ_COMPUTE, PROJECT, INSTANCE, TRACEBACK, lineno=22),
        record(2.5, 'nova-compute', 'ERROR', 'nova.compute.manager',
               '[instance: %s] Build of instance aborted' % INSTANCE,
               REQ_COMPUTE, PROJECT, INSTANCE, lineno=40),
        # Another project's line, close in time, same host.
        record(2.2, 'nova-compute', 'WARNING', 'nova.compute.manager',
               '[instance: %s] secret-other-project-line' % OTHER_INSTANCE,
               'req-00000000-0000-0000-0000-000000000000', OTHER_PROJECT,
               OTHER_INSTANCE, lineno=30),
        record(3.0, 'nova-api', 'INFO', 'nova.osapi_compute.wsgi.server',
               '10.0.20.46 "GET /v2.1/%s/servers/%s HTTP/1.1" status: 200 '
               'password=hunter2' % (PROJECT, INSTANCE),
               REQ_API, PROJECT, lineno=11),
    ]
    if injection:
        recs[4].message += ' ' + injection
    recs.sort(key=lambda r: r.timestamp)
    return recs


def anomaly_for(records):
    errors = [r for r in records if r.is_error]
    return anomaly_mod.Anomaly(
        detector='baseline', score=1.0, reason='error burst',
        session_key=('request', REQ_COMPUTE),
        start_time=errors[0].timestamp, end_time=errors[-1].timestamp,
        raised_at=errors[0].timestamp, service='nova-compute',
        host='compute-1', project_id=PROJECT, request_ids=[REQ_COMPUTE],
        instance_ids=[INSTANCE],
        evidence=[anomaly_mod.Evidence.from_record(errors[0])])
