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

"""Benchmark: resident memory of the agent with the learned models loaded.

The same loop as ``tools/bench_agent_memory.py`` (the real
``logrca.agent.service.Agent`` follows one file per service while the
shared fault-injection service logs are appended to them), but the agent
scores with ``[agent] detectors`` (default ``deeplog, logbert,
autoencoder``) whose artifacts it loads by configuration from
``[detectors] model_dir``. Artifacts come from ``--model-dir``; those
missing are trained first, in a separate ``logrca-manage detector train``
process per driver (so training memory is not counted), on the normal runs
of the ``--train-tests`` lowest test ids of each campaign. The agent's resident
set size (VmRSS) is printed once the models are loaded and after every
``--every`` lines.

    .venv/bin/python tools/bench_agent_models.py [--lines 1000000]
        [--model-dir DIR] [--train-tests 20] [--epochs 2]
"""

import logrca.cmd  # noqa: F401,I001  (threading backend first)

import argparse
import os
import pathlib
import shutil
import subprocess
import sys
import tempfile
import time

import bench_agent_memory as mem

from logrca.agent import service
from logrca.conductor import manager
from logrca.db import api as db_api
from logrca.db import migration
from logrca.evaluation import dataset

DRIVERS = ('deeplog', 'logbert', 'autoencoder')


def train(args, model_dir):
    """Train each driver in its own process into ``model_dir/<driver>``."""
    data = dataset.Dataset(str(args.data))
    tests = []
    for campaign in data.campaigns:
        keys = sorted(data.test_keys(campaign), key=lambda k: k.test_id)
        tests.extend(str(k) for k in keys[:args.train_tests])
    manage = pathlib.Path(sys.executable).with_name('logrca-manage')
    for driver in args.drivers:
        if (model_dir / driver / 'metadata.json').exists():
            continue
        started = time.monotonic()
        cmd = [str(manage), 'detector', 'train', '--driver', driver,
               '--data', str(args.data), '--tests', *tests,
               '--output', str(model_dir / driver), '--epochs',
               str(args.epochs), '--no-progress']
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
        print('trained %s on %d tests in %.0f s'
              % (driver, len(tests), time.monotonic() - started),
              flush=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument('--lines', type=int, default=1_000_000)
    parser.add_argument('--every', type=int, default=250_000)
    parser.add_argument('--data', type=pathlib.Path,
                        default=mem.DATA / 'dessertlab-openstack-fault-'
                                           'injection')
    parser.add_argument('--model-dir', type=pathlib.Path, default=None,
                        help='Directory with one trained artifact per '
                             'driver; those missing are trained into it '
                             'first (default: a new temporary one).')
    parser.add_argument('--drivers', nargs='+', default=list(DRIVERS))
    parser.add_argument('--train-tests', type=int, default=20,
                        help='Tests per campaign to train on (lowest ids).')
    parser.add_argument('--epochs', type=int, default=2)
    args = parser.parse_args()
    work = pathlib.Path(tempfile.mkdtemp(prefix='logrca-bench-models-'))
    try:
        model_dir = args.model_dir or work / 'models'
        train(args, model_dir)
        conf = mem.agent_conf(work)
        conf.set_override('detectors', list(args.drivers), 'agent')
        conf.set_override('model_dir', str(model_dir), 'detectors')
        conf.set_override('device', 'cpu', 'detectors')
        migration.upgrade(conf)
        print('start: rss %.1f MiB' % mem.rss_mib(), flush=True)
        conductor = manager.ConductorManager(conf, db_api.get_instance(conf))
        agent = service.Agent(conf, conductor)
        loaded = mem.rss_mib()
        print('agent with %s loaded from %s: rss %.1f MiB'
              % (', '.join(args.drivers), model_dir, loaded), flush=True)
        start = time.monotonic()
        samples = [(0, loaded)]
        for written, _cpu in mem.follow_logs(agent, work / 'logs', args.data,
                                             args.lines, args.every):
            elapsed = time.monotonic() - start
            samples.append((written, mem.rss_mib()))
            print('%9d lines: rss %.1f MiB, %.0f lines/s, agent %s'
                  % (written, samples[-1][1], written / elapsed,
                     dict(agent.stats)), flush=True)
        agent.close()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print('RSS with models loaded: %.1f MiB; after %d lines: %.1f MiB; '
          'max %.1f MiB (cpus: %d)'
          % (loaded, samples[-1][0], samples[-1][1],
             max(s[1] for s in samples), os.cpu_count()))
    return 0


if __name__ == '__main__':
    sys.exit(main())
