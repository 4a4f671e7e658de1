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

"""Builders of small folders laid out like the fault-injection dataset."""

import io
import os
import pathlib
import tarfile

from logrca.tests import services

COLUMNS = ('TEST', 'FAULT_TYPE', 'COMPONENT', 'CLASS', 'FUNCTION',
           'FAULT_POINT', 'ROUND_1', 'ASSERTION_R1', 'API_R1', 'ROUND_2',
           'ASSERTION_R2', 'API_R2')
TABLES = {'Nova': 'nova.tsv', 'Cinder': 'cinder.tsv',
          'Neutron': 'neutron.tsv'}
REQ = 'req-75a12c6d-df58-46c2-b64a-5b4bc15%05d'


def shared_data(name):
    """Path of a shared data folder; skip (fail under CI) when absent."""
    root = os.environ.get('LOGRCA_SHARED_DATA') or str(
        pathlib.Path(__file__).resolve().parents[4] / '..' / 'shared'
        / 'data')
    path = os.path.join(root, name)
    if not os.path.isdir(path):
        services.unavailable('shared data %s not found (set '
                             'LOGRCA_SHARED_DATA)' % path)
    return path


def line(clock, level, message, logger='nova.compute.manager', req=1,
         pid=1867, day='2018-06-26'):
    """One oslo.log line at ``day clock`` (``clock`` is HH:MM:SS.mmm)."""
    ctx = (REQ % req) + ' - - - - -' if req else '-'
    return '%s %s %d %s %s [%s] %s' % (day, clock, pid, level, logger, ctx,
                                       message)


def write_folder(root, tests):
    """Write a dataset folder; return its path.

    :param tests: list of dicts with ``campaign``, ``id``, ``r1``, ``r2``
        (``FAILURE``/``NO_FAILURE``), ``logs`` (round -> {path below
        ``logs/round_<n>/``: list of lines}) and optional ``trigger``
        (trigger_log text).
    """
    root = pathlib.Path(root)
    (root / 'logs').mkdir(parents=True, exist_ok=True)
    campaigns = sorted({t['campaign'] for t in tests})
    for campaign in campaigns:
        rows = ['\t'.join(COLUMNS)]
        for t in tests:
            if t['campaign'] != campaign:
                continue
            row = dict.fromkeys(COLUMNS, '')
            row.update(TEST='Test_%d' % t['id'], ROUND_1=t['r1'],
                       ROUND_2=t['r2'], COMPONENT='/nova/compute/manager.py')
            rows.append('\t'.join(row[c] for c in COLUMNS))
        (root / TABLES[campaign]).write_text('\n'.join(rows) + '\n')
        for round_ in (1, 2):
            members = []
            for t in tests:
                if t['campaign'] != campaign:
                    continue
                prefix = '%s/Test_%d/' % (campaign, t['id'])
                if round_ == 1:
                    members.append((prefix + 'fip_info.data',
                                    'FAULT TYPE: X\n'))
                    if t.get('trigger') is not None:
                        members.append((prefix + 'logs/round_1/trigger_log',
                                        t['trigger']))
                    members.append((
                        prefix + 'logs/round_1/foreground_wl/'
                        'openstack_demo_workload-1.err.log.bzip2.out',
                        'API ERROR: openstack server create\n'))
                for rel, lines in t['logs'].get(round_, {}).items():
                    members.append((prefix + 'logs/round_%d/%s'
                                    % (round_, rel),
                                    ''.join(x + '\n' for x in lines)))
            # Like the source: ordered by service and file, then by test.
            members.sort(key=lambda m: (m[0].split('/', 2)[2], m[0]))
            path = root / 'logs' / ('%s-round_%d.tar.xz'
                                    % (campaign, round_))
            with tarfile.open(path, 'w:xz') as tar:
                for name, text in members:
                    data = text.encode()
                    info = tarfile.TarInfo(name)
                    info.size = len(data)
                    tar.addfile(info, io.BytesIO(data))
    return str(root)


def standard_tests():
    """Five Nova tests covering every label and timing case.

    - 1: failure, ERROR after activation (detected by the error rule,
      delay 4 s); round 2 clean.
    - 2: failure, ERROR before activation only (pre-activation alarm,
      missed); round 2 has an ERROR (false alarm).
    - 3: silent failure (no ERROR at all); round 2 clean.
    - 5: no failure in round 1 (latent, ERROR after activation), round 2
      clean; epoch trigger.
    - 6: failure in both rounds (round 2 left out), no trigger_log.
    """
    def run(errors_at=(), base='03:20'):
        compute = [line(base + ':00.000', 'INFO', 'Starting instance'),
                   line(base + ':05.000', 'DEBUG', 'Lock acquired', req=2)]
        for clock in errors_at:
            compute.append(line(clock, 'ERROR', 'Instance failed to spawn',
                                req=3))
        compute.append(line(base + ':30.000', 'INFO', 'Took 3.1 seconds'))
        api = [line(base + ':01.000', 'INFO', 'GET /v2.1/servers',
                    logger='nova.osapi_compute.wsgi.server', req=4),
               line(base + ':02.500', 'INFO', 'volume created',
                    logger='cinder.api', req=5)]
        return {'nova/nova-compute.log.bzip2.out': compute,
                'nova/nova-api.log.bzip2.out': api[:1],
                'cinder/api.log.bzip2.out': api[1:]}

    trig = '2018-06-26 03:20:10.000000 [manager.pyc]: Injection activated!\n'
    return [
        {'campaign': 'Nova', 'id': 1, 'r1': 'FAILURE', 'r2': 'NO_FAILURE',
         'trigger': trig,
         'logs': {1: run(['03:20:14.000']), 2: run()}},
        {'campaign': 'Nova', 'id': 2, 'r1': 'FAILURE', 'r2': 'NO_FAILURE',
         'trigger': trig,
         'logs': {1: run(['03:20:04.000']), 2: run(['03:20:20.000'])}},
        {'campaign': 'Nova', 'id': 3, 'r1': 'FAILURE', 'r2': 'NO_FAILURE',
         'trigger': trig, 'logs': {1: run(), 2: run()}},
        # 1529983212 is 2018-06-26 03:20:12 on the logs' clock (UTC-4).
        {'campaign': 'Nova', 'id': 5, 'r1': 'NO_FAILURE', 'r2': 'NO_FAILURE',
         'trigger': '1529997612.0 [api.pyc]: Injection activated!\n',
         'logs': {1: run(['03:20:20.000']), 2: run()}},
        {'campaign': 'Nova', 'id': 6, 'r1': 'FAILURE', 'r2': 'FAILURE',
         'trigger': None,
         'logs': {1: run(['03:20:20.000']), 2: run(['03:20:20.000'])}},
    ]
