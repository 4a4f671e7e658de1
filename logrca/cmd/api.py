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

"""logrca-api: the REST API on a development WSGI server."""

import sys

from oslo_config import cfg
from oslo_log import log
from werkzeug import serving

from logrca import conf as logrca_conf
from logrca.api import app as api_app

LOG = log.getLogger(__name__)


def main(argv=None):
    """Serve the API on ``[api] host``:``[api] port`` (development only).

    Production deployments serve :mod:`logrca.wsgi.api` with uwsgi or
    gunicorn instead.
    """
    conf = cfg.ConfigOpts()
    logrca_conf.register_opts(conf)
    log.register_options(conf)
    argv = sys.argv[1:] if argv is None else argv
    conf(argv, project='logrca', prog='logrca-api')
    log.setup(conf, 'logrca')
    application = api_app.make_app(conf)
    LOG.info('logrca-api (development server) on http://%s:%s/',
             conf.api.host, conf.api.port)
    serving.run_simple(conf.api.host, conf.api.port, application,
                       threaded=True, use_reloader=False)
    return 0


if __name__ == '__main__':
    sys.exit(main())
