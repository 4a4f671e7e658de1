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

"""Drain3 template miner with OpenStack-aware masking."""

import os
import tempfile

from drain3 import file_persistence
from drain3 import masking as drain_masking
from drain3 import template_miner
from drain3 import template_miner_config
from oslo_log import log

from logrca.parsing import base
from logrca.parsing import masks

LOG = log.getLogger(__name__)


def make_config(conf):
    """A Drain3 configuration from the ``[parsing]`` options.

    Every variable kind of :data:`logrca.parsing.masks.MASKS` is masked as
    ``<*>``, so templates use one placeholder like the Loghub ground truth.
    """
    config = template_miner_config.TemplateMinerConfig()
    config.drain_sim_th = conf.parsing.similarity_threshold
    config.drain_depth = conf.parsing.depth
    config.masking_instructions = [
        drain_masking.MaskingInstruction(pattern, '*')
        for _name, pattern in masks.MASKS]
    config.mask_prefix = '<'
    config.mask_suffix = '>'
    config.snapshot_compress_state = True
    return config


class Drain3Parser(base.TemplateMiner):
    """Templates mined by Drain3 (the maintained Drain library)."""

    def __init__(self, conf):
        super().__init__(conf)
        self._config = make_config(conf)
        self._miner = template_miner.TemplateMiner(config=self._config)

    def add(self, message):
        result = self._miner.add_log_message(message)
        template = result['template_mined']
        return (result['cluster_id'], template,
                self._miner.get_parameter_list(template, message))

    def match(self, message):
        cluster = self._miner.match(message, full_search_strategy='fallback')
        if cluster is None:
            return None
        template = cluster.get_template()
        return (cluster.cluster_id, template,
                self._miner.get_parameter_list(template, message))

    @property
    def templates(self):
        return {cluster.cluster_id: cluster.get_template()
                for cluster in self._miner.drain.clusters}

    def save_state(self, path):
        # Drain3 serialises its own state; write it next to the target and
        # rename, so a crash never leaves half a state file.
        folder = os.path.dirname(os.path.abspath(path))
        fd, tmp = tempfile.mkstemp(dir=folder, prefix='.drain3-')
        os.close(fd)
        try:
            self._miner.persistence_handler = (
                file_persistence.FilePersistence(tmp))
            self._miner.save_state('logrca save_state')
            os.replace(tmp, path)
        finally:
            self._miner.persistence_handler = None
            if os.path.exists(tmp):
                os.unlink(tmp)

    def load_state(self, path):
        self._miner.persistence_handler = file_persistence.FilePersistence(
            path)
        try:
            self._miner.load_state()
        finally:
            self._miner.persistence_handler = None
        LOG.info('Loaded %d Drain3 templates from %s',
                 len(self._miner.drain.clusters), path)
