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

"""Configuration options of logrca, one module per group."""

from oslo_config import cfg

from logrca.conf import agent
from logrca.conf import api
from logrca.conf import conductor
from logrca.conf import database
from logrca.conf import default
from logrca.conf import detectors
from logrca.conf import notifications
from logrca.conf import parsing
from logrca.conf import rca

_MODULES = (default, agent, api, conductor, database, detectors, parsing, rca,
            notifications)


def register_opts(conf):
    """Register every logrca option on ``conf``."""
    for module in _MODULES:
        group = getattr(module, 'GROUP', None)
        if group is not None:
            # ConfigOpts.register_group() keeps a shallow copy of the
            # group, whose option dict (and so every set_override) would be
            # shared by all ConfigOpts made in one process: give each its
            # own group first; the module's register_group() then finds it.
            conf.register_group(cfg.OptGroup(
                group.name, title=group.title, help=group.help))
        module.register_opts(conf)


def list_opts():
    """Return ``(group, options)`` pairs for the sample generator."""
    result = []
    for module in _MODULES:
        result.extend(module.list_opts())
    return result


def new_conf():
    """Return a fresh ConfigOpts with every logrca option registered."""
    conf = cfg.ConfigOpts()
    register_opts(conf)
    return conf
