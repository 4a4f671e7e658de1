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

"""Base class of template miners and their stevedore loader."""

import abc

from oslo_log import log
from stevedore import driver

LOG = log.getLogger(__name__)

NAMESPACE = 'logrca.parsers'

# The placeholder for a variable part in templates.
WILDCARD = '<*>'


class TemplateMiner(metaclass=abc.ABCMeta):
    """Learns message templates from log messages.

    A template is the constant text of a message with :data:`WILDCARD` for
    its variable parts; its id is a small integer that never changes once
    given, also across :meth:`save_state` and :meth:`load_state`, so
    detectors can keep statistics by template id over restarts.

    :param conf: the oslo.config ``ConfigOpts`` with the ``[parsing]``
        options registered.
    """

    def __init__(self, conf):
        self.conf = conf

    @abc.abstractmethod
    def add(self, message):
        """Learn from ``message``; return ``(template_id, template, params)``.

        ``params`` are the variable parts of the message, in order.
        """

    @abc.abstractmethod
    def match(self, message):
        """Like :meth:`add` without learning; None when no template fits."""

    @abc.abstractmethod
    def save_state(self, path):
        """Write the learned templates to ``path`` (replaced atomically)."""

    @abc.abstractmethod
    def load_state(self, path):
        """Replace the learned templates by those saved at ``path``."""

    @property
    @abc.abstractmethod
    def templates(self):
        """A dict from template id to template text."""


def load_miner(conf, name=None):
    """Load the template miner named by ``[parsing] driver`` (or ``name``)."""
    name = name or conf.parsing.driver
    LOG.debug('Loading template miner %s', name)
    mgr = driver.DriverManager(NAMESPACE, name, invoke_on_load=True,
                               invoke_args=(conf,))
    return mgr.driver
