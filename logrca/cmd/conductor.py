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


"""logrca-conductor: store the anomalies agents send over RPC."""

import sys

from oslo_config import cfg
from oslo_log import log
from oslo_service import service

from logrca import conf as logrca_conf
from logrca.conductor import service as conductor_service
from logrca.db import exceptions as db_exceptions

LOG = log.getLogger(__name__)


def main(argv=None):
    """Run the conductor until SIGTERM/SIGINT."""
    conf = cfg.ConfigOpts()
    logrca_conf.register_opts(conf)
    log.register_options(conf)
    argv = sys.argv[1:] if argv is None else argv
    conf(argv, project='logrca', prog='logrca-conductor')
    log.setup(conf, 'logrca')
    try:
        conductor_service.check_schema(conf)
    except db_exceptions.SchemaNotCurrent as exc:
        LOG.error('%s', exc)
        return 1
    launcher = service.launch(conf, conductor_service.ConductorService(conf),
                              restart_method='mutate')
    return launcher.wait()


if __name__ == '__main__':
    sys.exit(main())
