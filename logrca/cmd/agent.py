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

"""logrca-agent: follow logs, the journal and notifications; send anomalies."""

import sys

from oslo_config import cfg
from oslo_log import log
from oslo_service import service

from logrca import conf as logrca_conf
from logrca.agent import service as agent_service

LOG = log.getLogger(__name__)


def main(argv=None):
    """Run the agent until SIGTERM/SIGINT."""
    conf = cfg.ConfigOpts()
    logrca_conf.register_opts(conf)
    log.register_options(conf)
    argv = sys.argv[1:] if argv is None else argv
    conf(argv, project='logrca', prog='logrca-agent')
    log.setup(conf, 'logrca')
    launcher = service.launch(conf, agent_service.AgentService(conf),
                              restart_method='mutate')
    return launcher.wait()


if __name__ == '__main__':
    sys.exit(main())
