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

"""Options of the [detectors] group."""

from oslo_config import cfg

GROUP = cfg.OptGroup('detectors', title='Anomaly detector options')

opts = [
    cfg.StrOpt('model_dir', default='$state_path/models',
               help='Directory holding one sub-directory of trained '
                    'artifacts per learned detector driver.'),
    cfg.StrOpt('device', default='auto', choices=['auto', 'cpu', 'cuda'],
               help='Torch device for learned detectors; auto picks CUDA '
                    'when present.'),
    cfg.IntOpt('cpu_threads', default=1, min=0,
               help='Torch threads of the learned detectors on the CPU '
                    '(0: torch\'s default, one per core). The agent scores '
                    'one record at a time: more threads do not help such '
                    'small models and, when other processes use the cores, '
                    'make each call hundreds of times slower.'),
    cfg.IntOpt('error_burst_count', default=1, min=1,
               help='Baseline: ERROR or CRITICAL records of one session that '
                    'raise an anomaly.'),
    cfg.BoolOpt('new_template_alarm', default=False,
                help='Baseline: raise an anomaly for a WARNING or worse '
                     'record whose template was never seen before.'),
    cfg.ListOpt('ensemble_members', default=['deeplog', 'autoencoder'],
                help='Detector drivers the ensemble driver combines; an '
                     'anomaly of any member is raised.'),
    cfg.ListOpt('disabled_families', default=['timing', 'flow'],
                help='Score families of the learned detectors that never '
                     'raise: ``rarity`` (INFO-or-worse templates rare in '
                     'normal logs), ``expectation`` (steps that normally '
                     'follow in the same period of activity are missing), '
                     '``sequence`` (LSTM or BERT key prediction), '
                     '``timing`` (DeepLog parameter model), ``flow`` '
                     '(DeepLog: a session idle after a step that is '
                     'normally followed), ``sphere`` (LogBERT '
                     'hypersphere), ``reconstruction`` (autoencoder). '
                     'Timing and flow are off by default: each is '
                     'calibrated on a few validation runs only and costs '
                     'more false alarms than it adds detections on the '
                     'fault-injection data; set an empty list to use '
                     'every family.'),
    cfg.BoolOpt('deeplog_parameters', default=True,
                help='DeepLog: train and use the parameter (timing) model; '
                     'false for the ablation without it.'),
    cfg.BoolOpt('logbert_vhm', default=True,
                help='LogBERT: train with the hypersphere (VHM) objective '
                     'and score the hypersphere distance; false for the '
                     'ablation without it.'),
]


def register_opts(conf):
    conf.register_group(GROUP)
    conf.register_opts(opts, group=GROUP)


def list_opts():
    return [(GROUP, opts)]
