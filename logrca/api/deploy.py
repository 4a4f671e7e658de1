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

"""The middleware chain of the API, built in code (no paste).

From the outside in, a request passes:

1. ``HTTPProxyToWSGI`` -- honours ``X-Forwarded-*``/``Forwarded`` from a
   trusted proxy (``[oslo_middleware] enable_proxy_headers_parsing``);
2. ``RequestId`` -- gives every request an ``X-OpenStack-Request-ID``;
3. :class:`~logrca.api.errors.FaultWrapper` -- unexpected errors become a
   JSON 500;
4. ``CORS`` (``[cors]`` options);
5. a path dispatcher that answers ``/healthcheck`` (oslo.middleware,
   unauthenticated) and sends everything else on to
6. keystonemiddleware ``auth_token`` (``[keystone_authtoken]``), or, with
   ``[api] auth_enabled = false`` (development only), nothing;
7. the Flask application (:mod:`logrca.api.app`).
"""

from keystonemiddleware import auth_token
from oslo_log import log
from oslo_middleware import cors
from oslo_middleware import healthcheck
from oslo_middleware import http_proxy_to_wsgi
from oslo_middleware import request_id
from werkzeug.middleware import dispatcher

from logrca.api import errors
from logrca.api import microversion

LOG = log.getLogger(__name__)

HEALTHCHECK_PATH = '/healthcheck'

_API_HEADERS = ['X-Auth-Token', 'X-OpenStack-Request-ID',
                microversion.HEADER]


def set_cors_defaults():
    """Let browsers (Horizon) send and read logrca's headers."""
    cors.set_defaults(
        allow_headers=_API_HEADERS + ['Content-Type'],
        expose_headers=_API_HEADERS + ['Vary'],
        allow_methods=['GET', 'POST', 'PATCH', 'OPTIONS', 'HEAD'])


def deploy(conf, application):
    """Wrap the Flask ``application`` in the middleware chain.

    :param conf: the service's ConfigOpts (``[api]``,
        ``[keystone_authtoken]``, ``[cors]``, ``[healthcheck]``,
        ``[oslo_middleware]`` are read from it).
    :returns: the WSGI application to serve.
    """
    if conf.api.auth_enabled:
        # keystonemiddleware reads [keystone_authtoken] from this conf and,
        # without memcached_servers, caches validated tokens in process
        # (token_cache_time).
        application = auth_token.AuthProtocol(
            application, {'oslo_config_config': conf})
    else:
        LOG.warning('Keystone authentication is DISABLED ([api] '
                    'auth_enabled = false): identity headers are trusted '
                    'as sent. Never do this outside development.')
    application = dispatcher.DispatcherMiddleware(application, {
        HEALTHCHECK_PATH: healthcheck.Healthcheck(None, conf)})
    set_cors_defaults()
    application = cors.CORS(application, conf)
    application = errors.FaultWrapper(application)
    application = request_id.RequestId(application)
    application = http_proxy_to_wsgi.HTTPProxyToWSGI(application, conf)
    return application
