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

"""WSGI entry of the API: ``application`` for uwsgi, gunicorn, mod_wsgi.

Configuration files come from ``LOGRCA_CONFIG_FILE`` (several may be given,
separated by commas) or else oslo.config's defaults
(``/etc/logrca/logrca.conf``, ...). Example::

    gunicorn --workers 4 --threads 8 -b 0.0.0.0:9753 logrca.wsgi.api
    uwsgi --http :9753 --module logrca.wsgi.api:application \\
        --processes 4 --threads 8
"""

import os

from oslo_log import log

from logrca import conf as logrca_conf
from logrca.api import app as api_app

LOG = log.getLogger(__name__)

CONFIG_ENV = 'LOGRCA_CONFIG_FILE'


def init_application(environ=None):
    """Build conf from the environment and return the WSGI application."""
    environ = os.environ if environ is None else environ
    conf = logrca_conf.new_conf()
    log.register_options(conf)
    files = [f for f in environ.get(CONFIG_ENV, '').split(',') if f]
    # No command line: the WSGI server owns sys.argv.
    conf([], project='logrca', prog='logrca-api',
         default_config_files=files or None)
    log.setup(conf, 'logrca')
    LOG.info('logrca API configured from %s',
             ', '.join(conf.config_file) or 'defaults')
    return api_app.make_app(conf)


application = init_application()
