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

"""The Flask application of the REST API and its factory ``make_app``."""

import time

import flask
from oslo_context import context as oslo_context
from oslo_log import log
from werkzeug import exceptions as wexc

from logrca.api import deploy
from logrca.api import errors
from logrca.api import microversion
from logrca.api import policy
from logrca.api import versions
from logrca.api.v1 import anomalies
from logrca.api.v1 import feedback
from logrca.api.v1 import questions

LOG = log.getLogger(__name__)

EXTENSION = 'logrca'


class APIState:
    """What the request handlers need: conf, database, policy.

    Kept in ``app.extensions['logrca']``; the database API is opened on
    first use so that building the app never touches the database.
    """

    def __init__(self, conf, dbapi=None):
        self.conf = conf
        self._dbapi = dbapi
        self._conductor = None
        self.enforcer = policy.PolicyEnforcer(conf)

    @property
    def conductor(self):
        """An RPC client of the conductor, or None without a broker.

        The API never loads models: explanations not yet stored are asked
        of the conductor (``[api] explain_via_conductor``).
        """
        if self._conductor is None and self.conf.api.explain_via_conductor:
            import oslo_messaging

            from logrca.conductor import rpcapi
            # Parsing registers [DEFAULT] transport_url on this conf.
            oslo_messaging.TransportURL.parse(self.conf)
            self._conductor = False
            if self.conf.transport_url:
                self._conductor = rpcapi.ConductorAPI(
                    self.conf, timeout=self.conf.api.explain_timeout)
        return self._conductor or None

    @property
    def dbapi(self):
        if self._dbapi is None:
            # Imported here: the database layer is only needed to serve.
            from logrca.db import api as db_api
            self._dbapi = db_api.get_instance(self.conf)
        return self._dbapi


def state():
    """The :class:`APIState` of the current application."""
    return flask.current_app.extensions[EXTENSION]


def _json_error(status, title, detail, headers=None):
    request_id = flask.request.environ.get('openstack.request_id')
    response = flask.jsonify(errors.error_document(
        status, title, detail, request_id))
    response.status_code = status
    for name, value in headers or ():
        if name.lower() != 'content-type':
            response.headers[name] = value
    return response


def _before_request():
    flask.g.start = time.monotonic()
    flask.g.context = oslo_context.RequestContext.from_environ(
        flask.request.environ)
    try:
        flask.g.version = microversion.extract(flask.request.headers)
    except microversion.InvalidVersion as exc:
        flask.g.version = None
        return _json_error(400, 'Bad Request', str(exc))
    except microversion.UnsupportedVersion as exc:
        flask.g.version = None
        return _json_error(406, 'Not Acceptable', str(exc))
    return None


def _after_request(response):
    version = flask.g.get('version')
    response.headers[microversion.HEADER] = microversion.header_value(
        version or microversion.MIN_VERSION)
    response.vary.add(microversion.HEADER)
    LOG.info('%s %s %s %.1f ms', flask.request.method,
             flask.request.full_path.rstrip('?'), response.status_code,
             (time.monotonic() - flask.g.get('start', time.monotonic()))
             * 1000)
    return response


def _http_error(exc):
    return _json_error(exc.code or 500, exc.name, exc.description,
                       exc.get_headers())


def _unexpected_error(exc):
    LOG.error('Unexpected error serving %s %s', flask.request.method,
              flask.request.path, exc_info=exc)
    return _json_error(500, 'Internal Server Error',
                       'The server could not complete the request.')


def create_flask_app(conf, dbapi=None):
    """Build the bare Flask application (no middleware).

    :param conf: ConfigOpts with logrca's options registered.
    :param dbapi: a database API object; by default
        ``logrca.db.api.get_instance(conf)`` on first use.
    """
    app = flask.Flask('logrca.api')
    # Flask enforces the body limit (also for chunked bodies) and raises
    # 413, which the error handler below turns into JSON.
    app.config['MAX_CONTENT_LENGTH'] = conf.api.max_request_body_size
    app.json.sort_keys = False
    app.url_map.strict_slashes = False
    app.extensions[EXTENSION] = APIState(conf, dbapi)
    app.before_request(_before_request)
    app.after_request(_after_request)
    app.register_error_handler(wexc.HTTPException, _http_error)
    app.register_error_handler(Exception, _unexpected_error)
    app.register_blueprint(versions.blueprint)
    app.register_blueprint(anomalies.blueprint, url_prefix='/v1')
    app.register_blueprint(questions.blueprint, url_prefix='/v1')
    app.register_blueprint(feedback.blueprint, url_prefix='/v1')
    return app


def make_app(conf, dbapi=None):
    """Return the whole WSGI application: Flask app in its middleware."""
    return deploy.deploy(conf, create_flask_app(conf, dbapi))
